// GC (SPEC.md 1.1.0): what this network owns and cni.dev/valid-attachments does not list goes: the
// host veths of its stale IPAM owners, their masquerade entries, then the reservations. Ownership
// comes from this network's IPAM state only (as the reference plugins do), never from the bridge:
// networks may share a bridge, and a veth on it may be another network's pod.
import { Handle } from '../netlink/handle.js';
import type { Link } from '../netlink/link.js';
import type { Owner } from '../ipam/types.js';
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { ipamClient } from './ipam-client.js';
import { masqGcFor } from './masq-ops.js';
import { hostVethName, isHostVethName } from './names.js';

export interface GcReport {
  released: Owner[];
  deletedLinks: string[];
}

/** A podwire host veth on this network's bridge, or on none (an ADD killed before enslaving it). */
function isOurVeth(link: Link, bridge: Link | undefined): boolean {
  if (link.kind !== 'veth' || !isHostVethName(link.name)) return false;
  return link.masterIndex === undefined || (bridge !== undefined && link.masterIndex === bridge.index);
}

/** Delete the host veths of these owners (deleting one removes its pod end too). */
function deleteHostVeths(conf: NetConf, owners: Owner[], keep: Set<string>): string[] {
  const doomed = new Set(owners.map((o) => hostVethName(o.containerId, o.ifname)).filter((n) => !keep.has(n)));
  const deleted: string[] = [];
  if (doomed.size === 0) return deleted;
  const host = Handle.open();
  try {
    const bridge = host.linkFind(conf.bridge);
    for (const link of host.linkList()) {
      if (!doomed.has(link.name) || !isOurVeth(link, bridge)) continue;
      try {
        host.linkDel(link.index);
        deleted.push(link.name);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENODEV') throw err;
      }
    }
  } finally {
    host.close();
  }
  return deleted;
}

export function cmdGc(env: CniEnv, conf: NetConf): GcReport {
  const valid = conf.validAttachments ?? [];
  const keep = new Set(valid.map((a) => hostVethName(a.containerId, a.ifname)));
  const ipam = ipamClient(conf, env);
  // Links first, reservations last: a GC killed half way leaves reservations that name the owners
  // of whatever is left, so the next GC finds it again.
  const deletedLinks = deleteHostVeths(conf, ipam.stale(valid), keep);
  // With the node agent masquerading (ipMasqByNode) no per-pod entry of this network is current:
  // any left from before go, whoever owned them.
  if (conf.ipMasq || conf.ipMasqByNode) masqGcFor(conf, conf.ipMasq ? valid : []);
  const released = ipam.gc(valid);
  return { released, deletedLinks };
}
