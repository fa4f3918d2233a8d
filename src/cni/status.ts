// STATUS (SPEC.md 1.1.0): ready only when the config is usable (it parsed, so it is) and IPAM has a
// free address in every range set (built-in), or the delegated IPAM plugin says it is ready.
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { ipamClient } from './ipam-client.js';

export function cmdStatus(env: CniEnv, conf: NetConf): void {
  ipamClient(conf, env).status();
}
