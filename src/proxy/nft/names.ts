// Object names for per-service and per-endpoint chains and sets. No I/O.
//
// A name is PREFIX + the first 8 hex digits of sha256(id): short enough to read in `nft list`,
// a valid nft identifier whatever the namespace/service/port names are, and stable across syncs
// (a partial sync only works if an unchanged service keeps its chain names). 32 bits collide
// with probability ~1% at 10,000 services; the id that comes second gets 16 digits instead.
import { createHash } from 'node:crypto';
import { ProxyRenderError } from '../port-view.js';

export function hashHex(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/**
 * Names for ids, allocated one at a time and kept until released, so a partial sync can name a new
 * service without renaming any other. A name is PREFIX + 8 hex digits of sha256(id), or 16 when
 * those 8 are already taken by another id (then the later id gets the long form). A full render
 * allocates in sorted key order, so its names depend only on the set of ids.
 */
export class NameRegistry {
  private readonly byId = new Map<string, string>();
  private readonly taken = new Set<string>();

  name(prefix: string, id: string): string {
    const k = prefix + id;
    const have = this.byId.get(k);
    if (have !== undefined) return have;
    const full = hashHex(id);
    let name = prefix + full.slice(0, 8);
    if (this.taken.has(name)) name = prefix + full.slice(0, 16);
    if (this.taken.has(name)) throw new ProxyRenderError(`nft: name collision on ${name} (sha256 prefix of 64 bits)`);
    this.taken.add(name);
    this.byId.set(k, name);
    return name;
  }

  /** Forget the name of prefix+id (its object is gone). */
  release(prefix: string, id: string): void {
    const k = prefix + id;
    const name = this.byId.get(k);
    if (name === undefined) return;
    this.byId.delete(k);
    this.taken.delete(name);
  }

  get size(): number {
    return this.byId.size;
  }
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
