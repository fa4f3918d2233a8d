// Object names for per-service and per-endpoint chains and sets. Pure.
//
// A name is PREFIX + the first 8 hex digits of sha256(id): short enough to read in `nft list`,
// a valid nft identifier whatever the namespace/service/port names are, and stable across syncs
// (a partial sync only works if an unchanged service keeps its chain names). 32 bits collide
// with probability ~1% at 10,000 services, so on a collision every id sharing those 8 digits
// gets 16 instead; the outcome depends only on the set of ids, never on their order.
import { createHash } from 'node:crypto';
import { NftIRError } from './ir.js';

export function hashHex(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** PREFIX + hash for each id (ids are unique). */
export function allocateNames(prefix: string, ids: Iterable<string>): Map<string, string> {
  const unique = [...new Set(ids)];
  const byShort = new Map<string, number>();
  for (const id of unique) {
    const short = hashHex(id).slice(0, 8);
    byShort.set(short, (byShort.get(short) ?? 0) + 1);
  }
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const id of unique) {
    const full = hashHex(id);
    const name = prefix + ((byShort.get(full.slice(0, 8)) ?? 0) > 1 ? full.slice(0, 16) : full.slice(0, 8));
    if (taken.has(name)) throw new NftIRError(`nft: name collision on ${name} (sha256 prefix of 64 bits)`);
    taken.add(name);
    names.set(id, name);
  }
  return names;
}

/** The id an endpoint chain is named after: the service port key plus the endpoint address. */
export function endpointId(serviceKey: string, ip: string, port: number): string {
  return `${serviceKey} ${ip}:${port}`;
}

/**
 * The id an affinity set is named after. The timeout is part of it because nft cannot change
 * the timeout of an existing set: a new timeout makes a new set (and the old one goes stale).
 */
export function affinityId(serviceKey: string, ip: string, port: number, timeoutSeconds: number): string {
  return `${endpointId(serviceKey, ip, port)} ${timeoutSeconds}s`;
}
