// DEL (SPEC.md): idempotent. Succeeds when the netns is gone, when ADD half-failed, when called twice.
// The host veth is found by its derived name (deleting it removes the pod end too), then the
// masquerade entry and the IP are released.
//
// The plugin does all of it in one go (cmdDel). The node agent answers sooner (src/agent/cni-del.ts):
// detachHostVeth takes the veth down, which cuts the pod off at once (a few hundred µs), and the
// agent deletes the detached veths of many DELs in one request afterwards, then releases (releaseDel).
// Deleting a veth is what costs: the kernel waits an RCU grace period (~20 ms here) per request.
import { Handle } from '../netlink/handle.js';
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { ipamClient } from './ipam-client.js';
import { masqDelFor } from './masq-ops.js';
import { hostVethName } from './names.js';

const gone = (err: unknown) => (err as { code?: string }).code === 'ENODEV';

export function cmdDel(env: CniEnv, conf: NetConf): void {
  const host = Handle.open();
  try {
    const hostName = hostVethName(env.containerId, env.ifname);
    if (host.linkFind(hostName)) {
      try {
        host.linkDel(hostName);
      } catch (err) {
        // Gone in between (the pod netns was just destroyed, or a concurrent DEL): that is the goal.
        if (!gone(err)) throw err;
      }
    }
  } finally {
    host.close();
  }
  releaseDel(env, conf);
}

/**
 * The first half of a deferred DEL: the attachment's host veth (found by the caller, which also
 * journals its ifindex) down, so the pod end loses its carrier: no frame passes either way and its
 * IP answers nothing; and moved to `group` for a later `linkDelGroup`. false when the veth went in
 * between (the netns was destroyed, or another DEL).
 */
export function detachHostVeth(host: Handle, index: number, group: number): boolean {
  try {
    host.linkSet(index, { up: false, group });
  } catch (err) {
    if (gone(err)) return false;
    throw err;
  }
  return true;
}

/**
 * The last step of every DEL, once the veth is gone: the masquerade entry goes before the IP is
 * released, since once released another pod's ADD may take the IP, and its fresh entry for that IP
 * must not be removed by this DEL.
 */
export function releaseDel(env: CniEnv, conf: NetConf): void {
  if (conf.ipMasq) masqDelFor(env);
  ipamClient(conf, env).del();
}
