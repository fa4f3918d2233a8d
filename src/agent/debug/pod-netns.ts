// Finding a pod's network namespace on this node, for probes run from inside it (ping, trace,
// connectivity). The Pod's `podwire.io/netns` annotation (the CNI_NETNS the plugin was given)
// is tried first; otherwise every named netns (/run/netns, where ip netns, containerd and podman
// put theirs) is looked at. Either way the netns is only used when its eth0 holds the pod's IP,
// so a stale annotation or a reused path never sends a probe from the wrong place.
import fs from 'node:fs';
import path from 'node:path';
import { Handle } from '../../netlink/handle.js';
import { NETNS_RUN_DIR } from '../../netns/netns.js';

export const POD_IFNAME = 'eth0';

/** Whether the netns at `netnsPath` has `ip` on its eth0 (false when it cannot be opened). */
export function netnsHoldsIp(netnsPath: string, ip: string): boolean {
  let h: Handle | undefined;
  try {
    h = Handle.open({ netns: netnsPath });
    const eth = h.linkList().find((l) => l.name === POD_IFNAME);
    return eth !== undefined && h.addrList({ ifindex: eth.index }).some((a) => a.local === ip);
  } catch {
    return false;
  } finally {
    h?.close();
  }
}

/**
 * The path of the netns whose eth0 holds `ip`: `hint` (the Pod's annotation) when it checks out,
 * else the first named netns that does; undefined when none on this node does.
 */
export function findPodNetns(ip: string, hint?: string, runDir: string = NETNS_RUN_DIR): string | undefined {
  if (hint && path.isAbsolute(hint) && netnsHoldsIp(hint, ip)) return hint;
  let names: string[];
  try {
    names = fs.readdirSync(runDir);
  } catch {
    return undefined;
  }
  for (const name of names.sort()) {
    const p = path.join(runDir, name);
    if (p !== hint && netnsHoldsIp(p, ip)) return p;
  }
  return undefined;
}
