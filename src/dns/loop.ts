// Forwarding loops (coredns#2087: a node's resolv.conf names a loopback stub, 127.0.0.53, that
// forwards back to the cluster DNS). Two checks:
// - static: an upstream that is one of our own listen addresses (same IP and port, or a loopback
//   IP on our port while we listen on a wildcard address) is refused before any query;
// - probe (as CoreDNS's loop plugin): at start we ask each upstream HINFO for a random name under
//   LOOP_PROBE_SUFFIX; a probe that arrives back at us names the upstream that leads to ourselves,
//   which is then dropped. A loop through a path that drops our probe is not detected.
import { randomBytes } from 'node:crypto';
import { canonicalIp, isLoopback, isUnspecified, tryParseIp } from '../net/index.js';
import type { Upstream } from './resolv-conf.js';

export const LOOP_PROBE_SUFFIX = 'loop-probe.podwire.invalid';

export function probeName(): string {
  return `${randomBytes(8).toString('hex')}.${randomBytes(4).toString('hex')}.${LOOP_PROBE_SUFFIX}`;
}

/** Why `u` is one of our own listen addresses, or undefined when it is not. */
export function selfLoop(u: Upstream, listening: Upstream[]): string | undefined {
  const ip = tryParseIp(u.host);
  if (!ip) return undefined;
  for (const l of listening) {
    if (l.port !== u.port) continue;
    const lip = tryParseIp(l.host);
    if (!lip) continue;
    if (canonicalIp(l.host) === canonicalIp(u.host)) return `it is this server's own listen address ${u.host}:${u.port}`;
    if (isUnspecified(lip) && (isLoopback(ip) || isUnspecified(ip)) && lip.family === ip.family) return `this server listens on ${l.host}:${l.port}, which ${u.host}:${u.port} reaches`;
  }
  return undefined;
}
