// Encoded answers from the index, reused: the handler's bytes for a question are a function of the
// index, the lowercased name, the type, the client's RD and CD bits, whether it sent OPT, the size
// limit (transport, the advertised EDNS size capped by ours), whether we forward, and whether the
// name was spelled all lowercase (a lowercase SOA or CNAME owner then compresses to a pointer at
// the question). A hit is those bytes with the query's id and the question's spelling (0x20 case)
// written in: the same bytes the handler would have made (test/unit/dns-answer-cache.test.ts
// compares the two). Only index answers are kept (not forwarded ones: Forwarder has its cache);
// cleared whenever the server gets a new index, so no answer outlives the state it came from.
// Bounded by entries and by bytes; least recently used goes first.
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

/** What an entry costs besides its bytes and key: the Map slot, the object, the Buffer's header. */
const ENTRY_OVERHEAD = 200;

export interface CachedAnswer {
  bytes: Buffer;
  rcode: RcodeName;
  truncated: boolean;
  /** For the metrics: the question as first asked (the zone label does not depend on its case). */
  qname: string;
  qtype: string;
}

export interface AnswerCacheStats {
  hits: number;
  misses: number;
  stored: number;
  entries: number;
  bytes: number;
}

/** The cache key: everything besides the index that changes the response's bytes. */
export function answerKey(q: FastQuery, transport: Transport, limit: number, forwarding: boolean): string {
  const bits = (q.flags & 0x0110) | (q.opt ? 1 : 0) | (q.lowercase ? 2 : 0) | (forwarding ? 4 : 0) | (transport === 'tcp' ? 8 : 0);
  return `${q.qtype}/${bits}/${limit}/${q.lowerName}`;
}

export class AnswerCache {
  private readonly entries = new Map<string, CachedAnswer>();
  private size = 0;
  private counts = { hits: 0, misses: 0, stored: 0 };

  constructor(private readonly options: AnswerCacheOptions) {}

  get enabled(): boolean {
    return this.options.maxEntries > 0 && this.options.maxBytes > 0;
  }

  get stats(): AnswerCacheStats {
    return { ...this.counts, entries: this.entries.size, bytes: this.size };
  }

  /** The cached answer made out to this query (its id, its spelling of the name), or undefined. */
  answer(key: string, query: Buffer, q: FastQuery): { bytes: Buffer; entry: CachedAnswer } | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    this.entries.delete(key); // most recently used last
    this.entries.set(key, entry);
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
  store(key: string, query: Buffer, q: FastQuery, answer: Omit<CachedAnswer, 'bytes'> & { bytes: Buffer }): boolean {
    const b = answer.bytes;
    if (!this.enabled || b.length < q.nameEnd || b[0] !== query[0] || b[1] !== query[1] || b.compare(query, 12, q.nameEnd, 12, q.nameEnd) !== 0) return false;
    const cost = b.length + key.length + ENTRY_OVERHEAD;
    if (cost > this.options.maxBytes) return false;
    const old = this.entries.get(key);
    if (old) this.drop(key, old);
    while (this.entries.size >= this.options.maxEntries || this.size + cost > this.options.maxBytes) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, CachedAnswer];
      this.drop(oldestKey, oldest);
    }
    this.entries.set(key, { ...answer, bytes: Buffer.from(b) }); // a copy: the caller's buffer goes to the client
    this.size += cost;
    this.counts.stored++;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.size = 0;
  }

  private drop(key: string, entry: CachedAnswer): void {
    this.entries.delete(key);
    this.size -= entry.bytes.length + key.length + ENTRY_OVERHEAD;
  }
}
