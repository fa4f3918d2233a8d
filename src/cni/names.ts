// Deterministic names: the host end of a pod's veth is derived from (containerId, ifname), so DEL,
// GC and a retried ADD always find it without any state file.
import { createHash } from 'node:crypto';

export const HOST_VETH_PREFIX = 'pw';

/** "pw" + 12 hex of sha256(containerId "/" ifname): 14 characters, within IFNAMSIZ. */
export function hostVethName(containerId: string, ifname: string): string {
  return HOST_VETH_PREFIX + createHash('sha256').update(`${containerId}/${ifname}`).digest('hex').slice(0, 12);
}

export const isHostVethName = (name: string): boolean => /^pw[0-9a-f]{12}$/.test(name);
