// What the server reports for metrics: a plain interface of callbacks (no Prometheus here; the
// agent implements it with CoreDNS's metric names, src/agent/dns-metrics.ts). The values are
// ready to be labels and bounded: the query type is one of CoreDNS's monitored types or "other",
// the zone one of three, the rcode one of wire.ts's RCODE names. Without an observer the server
// makes none of these calls and reads no clock for them.
export type CacheKind = 'success' | 'denial';

/** One query the server took in, reported when its response was written (or it was dropped). */
export interface DnsQueryEvent {
  /** The listening address as CoreDNS's `server` label: `dns://127.0.0.1:53`, `dns://[::1]:53`. */
  server: string;
  /** `cluster.local.` (the cluster zone) for names under it, `.` for any other name (forwarded,
   * refused, PTR), `dropped` (CoreDNS's name, never a valid zone) when there was no usable question. */
  zone: string;
  proto: 'udp' | 'tcp';
  /** The client's address family (an IPv4-mapped IPv6 address is 4). */
  family: 4 | 6;
  /** See `qtypeLabel`. */
  type: string;
  requestBytes: number;
  /** The response's rcode and size in bytes; both absent when nothing was sent back (a drop). */
  rcode?: string;
  responseBytes?: number;
  /** From the packet's arrival in the server to its response being ready to write. */
  seconds: number;
}

export interface DnsObserver {
  query(e: DnsQueryEvent): void;
  /** A forwarded question answered from the cache: `success` (records) or `denial` (NXDOMAIN/NODATA). */
  cacheHit(server: string, kind: CacheKind): void;
  /** A forwarded question not in the cache (or expired there): it goes to an upstream. */
  cacheMiss(server: string): void;
  /** A query sent to an upstream (`ip:port`, `[v6]:port`): each question each upstream was asked, the loop probe included. */
  forwardRequest(to: string): void;
  /** An answer to our query from that upstream, with its rcode; `seconds` includes a retry over TCP after TC. */
  forwardResponse(to: string, rcode: string, seconds: number): void;
  /** A question answered SERVFAIL at once because `maxForwarding` questions were in flight. */
  forwardRejected(): void;
}

// CoreDNS's monitored query types (plugin/metrics/vars/monitor.go); any other is "other". dns-packet
// has no names for SVCB (64) and HTTPS (65).
const MONITORED_TYPES = new Set(['A', 'AAAA', 'CNAME', 'DNSKEY', 'DS', 'MX', 'NSEC3', 'NSEC', 'NS', 'PTR', 'RRSIG', 'SOA', 'SRV', 'TXT', 'HTTPS', 'SVCB', 'IXFR', 'AXFR', 'ANY']);
const UNNAMED_TYPES: Record<string, string> = { UNKNOWN_64: 'SVCB', UNKNOWN_65: 'HTTPS' };

/** A question's type (dns-packet's name) as a bounded label value. */
export function qtypeLabel(type: string | undefined): string {
  if (type === undefined) return 'other';
  const t = UNNAMED_TYPES[type] ?? type;
  return MONITORED_TYPES.has(t) ? t : 'other';
}

export const DROPPED_ZONE = 'dropped';

/**
 * The observer with each call guarded: a throwing observer is reported through onError and never
 * changes an answer (a throw inside the forwarder would otherwise turn a good answer into SERVFAIL).
 */
export function guardedObserver(o: DnsObserver, onError: (call: keyof DnsObserver, err: Error) => void): DnsObserver {
  const guard = (call: keyof DnsObserver, f: () => void): void => {
    try {
      f();
    } catch (err) {
      onError(call, err as Error);
    }
  };
  return {
    query: (e) => guard('query', () => o.query(e)),
    cacheHit: (server, kind) => guard('cacheHit', () => o.cacheHit(server, kind)),
    cacheMiss: (server) => guard('cacheMiss', () => o.cacheMiss(server)),
    forwardRequest: (to) => guard('forwardRequest', () => o.forwardRequest(to)),
    forwardResponse: (to, rcode, seconds) => guard('forwardResponse', () => o.forwardResponse(to, rcode, seconds)),
    forwardRejected: () => guard('forwardRejected', () => o.forwardRejected()),
  };
}
