// DEL (SPEC.md): idempotent. Succeeds when the netns is gone, when ADD half-failed, when called twice.
// The host veth is found by its derived name (deleting it removes the pod end too), then the IP and
// the masquerade entry are released.
import { Handle } from '../netlink/handle.js';
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { ipamClient } from './ipam-client.js';
import { masqDelFor } from './masq-ops.js';
import { hostVethName } from './names.js';
import { ipOf } from './host.js';

export function cmdDel(env: CniEnv, conf: NetConf): void {
  const host = Handle.open();
  try {
    const hostName = hostVethName(env.containerId, env.ifname);
    if (host.linkFind(hostName)) {
      try {
        host.linkDel(hostName);
      } catch (err) {
        // Gone in between (the pod netns was just destroyed, or a concurrent DEL): that is the goal.
        if ((err as { code?: string }).code !== 'ENODEV') throw err;
      }
    }
  } finally {
    host.close();
  }
  const released = ipamClient(conf, env).del();
  if (conf.ipMasq) {
    const ips = new Set([...released, ...(conf.prevResult?.ips ?? []).map((ip) => ipOf(ip.address))]);
    masqDelFor(conf, env, [...ips]);
  }
}
