// Encoded answers from the index, reused: the handler's bytes for a question are a function of the
// index, the lowercased name, the type, the client's RD and CD bits, whether it sent OPT, the size
// limit (transport, the advertised EDNS size capped by ours), whether we forward, and whether the
// name was spelled all lowercase (a lowercase SOA or CNAME owner then compresses to a pointer at
// the question). A hit is those bytes with the query's id and the question's spelling (0x20 case)
// written in: the same bytes the handler would have made (test/unit/dns-answer-cache.test.ts
// compares the two). Only index answers are kept (not forwarded ones: Forwarder has its cache);
// cleared whenever the server gets a new index, so no answer outlives the state it came from.
//
// Kept per name (a Map keyed by the lowercased wire name, then a short list searched by a number
// coding the rest): a string key of all the parts cost a concatenation and a hash of it per
// query, a quarter of the hit path (measured). Bounded by entries and by bytes; eviction is LRU's
// usual stand-in, second chance (CLOCK) over names: the oldest name's answers go unless one was
// hit since eviction last passed it, then it moves to the end. A hit only sets a flag, where true
// LRU reorders the map on every hit (measured: ~8% of the server's time at its maximum rate).
import type { FastQuery } from './fast-parse.js';
import type { Transport } from './handler.js';
import type { RcodeName } from './wire.js';

export interface AnswerCacheOptions {
  /** At most this many answers (0: no cache). */
  maxEntries: number;
  /** At most about this many bytes of answers and keys (a fixed overhead counted per entry). */
  maxBytes: number;
}

export const DEFAULT_ANSWER_CACHE_OPTIONS: AnswerCacheOptions = { maxEntries: 50_000, maxBytes: 16 * 1024 * 1024 };

/** What an entry costs besides its bytes and name: the objects, the Map slot, the Buffer's header. */
const ENTRY_OVERHEAD = 200;

export interface CachedAnswer {
  bytes: Buffer;
  rcode: RcodeName;
  truncated: boolean;
  /** For the metrics: the question as first asked (the zone label does not depend on its case). */
  qname: string;
  qtype: string;
}

interface Entry extends CachedAnswer {
  code: number;
}

/** The answers to one lowercased name; used: one was hit since eviction last passed over it. */
interface NameEntries {
  entries: Entry[];
  used: boolean;
}

export interface AnswerCacheStats {
  hits: number;
  misses: number;
  stored: number;
  entries: number;
  bytes: number;
}

/**
 * Everything besides the index and the name that changes the response's bytes, as one number:
 * qtype (16 bits), RD and CD (0x110), OPT sent (1), spelled lowercase (2), forwarding (4), TCP (8),
 * the size limit (16 bits). Below 2^41: exact in a double.
 */
export function answerCode(q: FastQuery, transport: Transport, limit: number, forwarding: boolean): number {
  const bits = (q.flags & 0x0110) | (q.opt ? 1 : 0) | (q.lowercase ? 2 : 0) | (forwarding ? 4 : 0) | (transport === 'tcp' ? 8 : 0);
  return (q.qtype * 0x200 + bits) * 0x10000 + limit;
}

const costOf = (name: string, e: Entry) => e.bytes.length + name.length + ENTRY_OVERHEAD;

export class AnswerCache {
  private readonly names = new Map<string, NameEntries>();
  private count = 0;
  private size = 0;
  private counts = { hits: 0, misses: 0, stored: 0 };

  constructor(private readonly options: AnswerCacheOptions) {}

  get enabled(): boolean {
    return this.options.maxEntries > 0 && this.options.maxBytes > 0;
  }

  get stats(): AnswerCacheStats {
    return { ...this.counts, entries: this.count, bytes: this.size };
  }

  /** The cached answer made out to this query (its id, its spelling of the name), or undefined. */
  answer(q: FastQuery, code: number, query: Buffer): { bytes: Buffer; entry: CachedAnswer } | undefined {
    const group = this.names.get(q.lowerName);
    let entry: Entry | undefined;
    if (group) for (const e of group.entries) if (e.code === code) entry = e;
    if (!group || !entry) {
      this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    group.used = true;
    const bytes = Buffer.allocUnsafe(entry.bytes.length);
    entry.bytes.copy(bytes);
    bytes[0] = query[0];
    bytes[1] = query[1];
    query.copy(bytes, 12, 12, q.nameEnd);
    return { bytes, entry };
  }

  /**
   * Keeps the handler's answer to this query. Skipped (false) when its echoed question is not the
   * query's name byte for byte at offset 12, or its id is not the query's: a hit could not be made
   * out by patching those.
   */
  store(q: FastQuery, code: number, query: Buffer, answer: CachedAnswer): boolean {
    const b = answer.bytes;
    if (!this.enabled || b.length < q.nameEnd || b[0] !== query[0] || b[1] !== query[1] || b.compare(query, 12, q.nameEnd, 12, q.nameEnd) !== 0) return false;
    const entry: Entry = { ...answer, bytes: Buffer.from(b), code }; // a copy: the caller's buffer goes to the client
    const cost = costOf(q.lowerName, entry);
    if (cost > this.options.maxBytes) return false;
    const old = this.names.get(q.lowerName);
    const at = old ? old.entries.findIndex((e) => e.code === code) : -1;
    if (old && at >= 0) {
      this.size -= costOf(q.lowerName, old.entries[at]);
      this.count--;
      old.entries.splice(at, 1);
    }
    this.evictFor(cost);
    const group = this.names.get(q.lowerName);
    if (group) group.entries.push(entry);
    else this.names.set(q.lowerName, { entries: [entry], used: false });
    this.count++;
    this.size += cost;
    this.counts.stored++;
    return true;
  }

  clear(): void {
    this.names.clear();
    this.count = 0;
    this.size = 0;
  }

  /** Makes room for one more entry of `cost` bytes (ends: a pass clears every flag, hits set none meanwhile). */
  private evictFor(cost: number): void {
    while (this.count >= this.options.maxEntries || this.size + cost > this.options.maxBytes) {
      const [name, group] = this.names.entries().next().value as [string, NameEntries];
      this.names.delete(name);
      if (group.used) {
        group.used = false; // its second chance: to the end
        this.names.set(name, group);
        continue;
      }
      for (const e of group.entries) this.size -= costOf(name, e);
      this.count -= group.entries.length;
    }
  }
}
