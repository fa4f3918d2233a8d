// Per-netns sysctls. Only net.* keys are namespaced by the kernel; every other key is global and
// would change the host, so they are refused.
import fs from 'node:fs';
import { NetnsError, NetnsRef, withNetns, type NetnsSpec } from './netns.js';

const KEY_RE = /^net\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_:@-]+)+$/;

function sysctlPath(key: string): string {
  if (!KEY_RE.test(key)) {
    throw new NetnsError(
      `sysctl key ${JSON.stringify(key)} refused: only net.* keys are per-netns (e.g. net.ipv4.ip_forward)`,
      'EINVAL',
    );
  }
  return '/proc/sys/' + key.split('.').join('/');
}

export function sysctlGet(ns: NetnsSpec | NetnsRef, key: string): string {
  const p = sysctlPath(key);
  return withNetns(ns, () => fs.readFileSync(p, 'utf8').trim());
}

export function sysctlSet(ns: NetnsSpec | NetnsRef, key: string, value: string | number): void {
  const p = sysctlPath(key);
  const text = String(value);
  if (/[\n\0]/.test(text)) throw new NetnsError(`sysctl ${key}: value must be a single line`, 'EINVAL');
  withNetns(ns, () => {
    try {
      fs.writeFileSync(p, text + '\n');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new NetnsError(`sysctl ${key}=${text} in ${typeof ns === 'string' ? ns : ns.path}: ${code}`, code);
    }
  });
}
