// The forwarder's cache: bounded LRU (a Map's insertion order), keyed by lowercased name, type and
// class. Positive answers live for their smallest TTL, negative ones (NXDOMAIN, NODATA) for the
// SOA's min(TTL, MINIMUM) (RFC 2308 5); each capped. Entries give back their records with the
// TTLs aged. SERVFAIL and negative answers without an SOA are not kept.
import type { Answer, Question } from 'dns-packet';
import type { UpstreamAnswer } from './handler.js';
import type { CacheKind } from './metrics.js';

export interface CacheOptions {
  maxEntries: number; // default 10,000
  maxTtl: number; // seconds, cap on positive answers (default 300)
  maxNegativeTtl: number; // seconds, cap on negative ones (default 30: a new name shows soon)
}

export const DEFAULT_CACHE_OPTIONS: CacheOptions = { maxEntries: 10_000, maxTtl: 300, maxNegativeTtl: 30 };

interface Entry {
  answer: UpstreamAnswer;
  storedAt: number;
  expiresAt: number;
}

/** What the server's metrics hear of each lookup (coredns_cache_hits_total / misses_total). */
export interface CacheEvents {
  hit(kind: CacheKind): void;
  miss(): void;
}

export const cacheKey = (q: Question): string => `${q.name.toLowerCase().replace(/\.$/, '')}/${q.type}/${q.class ?? 'IN'}`;

const ttlOf = (r: Answer): number => ('ttl' in r && typeof r.ttl === 'number' ? r.ttl : 0);

/** Seconds this answer may be kept, 0 when it must not be. */
export function cacheLifetime(a: UpstreamAnswer, opts: CacheOptions): number {
  const records = [...a.answers, ...a.authorities, ...a.additionals].filter((r) => r.type !== 'OPT');
  if (a.rcode === 'NOERROR' && a.answers.length) return Math.min(opts.maxTtl, ...records.map(ttlOf));
  if (a.rcode !== 'NXDOMAIN' && a.rcode !== 'NOERROR') return 0;
  const soa = a.authorities.find((r) => r.type === 'SOA');
  if (!soa || soa.type !== 'SOA') return 0;
  return Math.min(opts.maxNegativeTtl, ttlOf(soa), soa.data.minimum ?? 0);
}

const aged = (records: Answer[], age: number): Answer[] => records.map((r) => (r.type === 'OPT' ? r : { ...r, ttl: Math.max(0, ttlOf(r) - age) }) as Answer);

export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly opts: CacheOptions = DEFAULT_CACHE_OPTIONS,
    private readonly now: () => number = Date.now,
    private readonly events?: CacheEvents,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(q: Question): UpstreamAnswer | undefined {
    const key = cacheKey(q);
    const e = this.entries.get(key);
    const now = this.now();
    if (!e || e.expiresAt <= now) {
      if (e) this.entries.delete(key);
      this.misses++;
      this.events?.miss();
      return undefined;
    }
    this.entries.delete(key); // move to the young end
    this.entries.set(key, e);
    this.hits++;
    // As CoreDNS: records are a success, NXDOMAIN and NODATA a denial (nothing else is kept).
    this.events?.hit(e.answer.rcode === 'NOERROR' && e.answer.answers.length > 0 ? 'success' : 'denial');
    const age = Math.floor((now - e.storedAt) / 1000);
    return { rcode: e.answer.rcode, answers: aged(e.answer.answers, age), authorities: aged(e.answer.authorities, age), additionals: aged(e.answer.additionals, age) };
  }

  put(q: Question, answer: UpstreamAnswer): void {
    const seconds = cacheLifetime(answer, this.opts);
    if (seconds <= 0) return;
    const key = cacheKey(q);
    this.entries.delete(key);
    const now = this.now();
    this.entries.set(key, { answer, storedAt: now, expiresAt: now + seconds * 1000 });
    while (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  clear(): void {
    this.entries.clear();
  }
}
