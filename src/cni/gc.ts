// GC (SPEC.md 1.1.0): everything of this network not in cni.dev/valid-attachments goes: IP
// reservations, the host veths of released owners or on this network's bridge, masquerade entries.
import { Handle } from '../netlink/handle.js';
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

export function cmdGc(env: CniEnv, conf: NetConf): GcReport {
  const valid = conf.validAttachments ?? [];
  const keep = new Set(valid.map((a) => hostVethName(a.containerId, a.ifname)));
  if (conf.ipMasq) masqGcFor(conf, valid);
  const released = ipamClient(conf, env).gc(valid);
  const doomed = new Set(released.map((o) => hostVethName(o.containerId, o.ifname)).filter((n) => !keep.has(n)));
  const host = Handle.open();
  const deletedLinks: string[] = [];
  try {
    const bridge = host.linkFind(conf.bridge);
    for (const link of host.linkList()) {
      if (!isHostVethName(link.name) || keep.has(link.name)) continue;
      // Ours for certain: the veth of a released owner, or a podwire veth on this network's bridge.
      const onOurBridge = bridge !== undefined && link.masterIndex === bridge.index;
      if (!doomed.has(link.name) && !onOurBridge) continue;
      try {
        host.linkDel(link.index);
        deletedLinks.push(link.name);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENODEV') throw err;
      }
    }
  } finally {
    host.close();
  }
  return { released, deletedLinks };
}
