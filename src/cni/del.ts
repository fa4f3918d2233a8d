// DEL (SPEC.md): idempotent. Succeeds when the netns is gone, when ADD half-failed, when called twice.
// The host veth is found by its derived name (deleting it removes the pod end too), then the
// masquerade entry and the IP are released.
import { Handle } from '../netlink/handle.js';
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { ipamClient } from './ipam-client.js';
import { masqDelFor } from './masq-ops.js';
import { hostVethName } from './names.js';

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
  // The masquerade entry goes before the IP is released: once released, another pod's ADD may take
  // the IP, and its fresh entry for that IP must not be removed by this DEL.
  if (conf.ipMasq) masqDelFor(env);
  ipamClient(conf, env).del();
}
