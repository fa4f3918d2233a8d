// Per-service and per-endpoint chain names, as kube-proxy's iptables mode makes them
// (servicePortChainName / servicePortEndpointChainName): PREFIX + the first 16 characters of
// the base32 encoding of sha256(id). 80 bits: stable across syncs, valid whatever the names in
// the key, and PODWIRE-SVC- + 16 = 28 characters, exactly iptables' longest chain name. Pure.
import { createHash } from 'node:crypto';
import { IptIRError } from './ir.js';

export const PREFIX = {
  /** Cluster traffic policy: every usable endpoint. */
  svc: 'PODWIRE-SVC-',
  /** Local traffic policy: this node's endpoints. */
  svl: 'PODWIRE-SVL-',
  /** NodePort, external IP and LB IP traffic: the external policy. */
  ext: 'PODWIRE-EXT-',
  /** One endpoint: hairpin mark, affinity record, DNAT. */
  sep: 'PODWIRE-SEP-',
} as const;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (Go's base32.StdEncoding), without padding: all we need is a prefix. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function chainName(prefix: string, id: string): string {
  return prefix + base32(createHash('sha256').update(id).digest()).slice(0, 16);
}

/** The id an endpoint chain is named after: the service port key plus the endpoint address. */
export function endpointId(serviceKey: string, ip: string, port: number): string {
  return `${serviceKey} ${ip}:${port}`;
}

/** Remembers every name handed out so that a (at 80 bits, improbable) collision fails loudly. */
export class ChainNames {
  private readonly byName = new Map<string, string>();

  get(prefix: string, id: string): string {
    const name = chainName(prefix, id);
    const seen = this.byName.get(name);
    if (seen !== undefined && seen !== id) throw new IptIRError(`iptables: chain name collision on ${name}: ${JSON.stringify(seen)} and ${JSON.stringify(id)}`);
    this.byName.set(name, id);
    return name;
  }
}
