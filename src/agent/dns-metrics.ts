// The cluster DNS server's metrics (src/dns's DnsObserver) with CoreDNS's names and labels, so
// CoreDNS dashboards and alerts work on podwire's nodes: plugin/metrics (coredns_dns_*), plugin/cache
// (coredns_cache_*) and plugin/forward (coredns_forward_*, and coredns_proxy_request_duration_seconds
// that replaced coredns_forward_request_duration_seconds in CoreDNS 1.11). CoreDNS's `view` label is
// left out (empty there without the view plugin, and an empty label is no label to Prometheus), so is
// coredns_dns_responses_total's `plugin`. One instance serves all of a node's servers: `server` tells
// them apart.
import client from 'prom-client';
import type { CacheKind, DnsObserver, DnsQueryEvent } from '../dns/metrics.js';

// CoreDNS's plugin.TimeBuckets (0.25 ms doubling to ~8 s) and its size buckets.
const TIME_BUCKETS = client.exponentialBuckets(0.00025, 2, 16);
const SIZE_BUCKETS = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3];
/** The cache holds forwarded answers only: CoreDNS's `zones` of a `.:53 { cache }` block. */
const CACHE_ZONES = '.';

export class DnsMetrics implements DnsObserver {
  private readonly requests: client.Counter<'server' | 'zone' | 'proto' | 'family' | 'type'>;
  private readonly responses: client.Counter<'server' | 'zone' | 'rcode'>;
  private readonly duration: client.Histogram<'server' | 'zone' | 'type'>;
  private readonly requestSize: client.Histogram<'server' | 'zone' | 'proto'>;
  private readonly responseSize: client.Histogram<'server' | 'zone' | 'proto'>;
  private readonly cacheRequests: client.Counter<'server' | 'zones'>;
  private readonly cacheHits: client.Counter<'server' | 'type' | 'zones'>;
  private readonly cacheMisses: client.Counter<'server' | 'zones'>;
  private readonly forwardRequests: client.Counter<'to'>;
  private readonly forwardResponses: client.Counter<'to' | 'rcode'>;
  private readonly forwardDuration: client.Histogram<'to' | 'rcode'>;
  private readonly proxyDuration: client.Histogram<'proxy_name' | 'to' | 'rcode'>;
  private readonly forwardRejects: client.Counter;

  constructor(registers: client.Registry[]) {
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new client.Counter<L>({ name, help, labelNames, registers });
    const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) => new client.Histogram<L>({ name, help, labelNames, buckets, registers });
    this.requests = counter('coredns_dns_requests_total', 'DNS queries the cluster DNS server took in, by zone (the cluster zone, "." for other names, "dropped" without a usable question), protocol, client address family (1 IPv4, 2 IPv6) and query type (common types, else "other")', ['server', 'zone', 'proto', 'family', 'type']);
    this.responses = counter('coredns_dns_responses_total', 'DNS responses the cluster DNS server wrote, by zone and rcode', ['server', 'zone', 'rcode']);
    this.duration = histogram('coredns_dns_request_duration_seconds', 'Time from a query\'s arrival to its response (forwarding included), by zone and query type', ['server', 'zone', 'type'], TIME_BUCKETS);
    this.requestSize = histogram('coredns_dns_request_size_bytes', 'Size of the DNS queries in bytes, by zone and protocol', ['server', 'zone', 'proto'], SIZE_BUCKETS);
    this.responseSize = histogram('coredns_dns_response_size_bytes', 'Size of the DNS responses in bytes, by zone and protocol', ['server', 'zone', 'proto'], SIZE_BUCKETS);
    this.cacheRequests = counter('coredns_cache_requests_total', 'Lookups in the forwarding cache (each forwarded question)', ['server', 'zones']);
    this.cacheHits = counter('coredns_cache_hits_total', 'Forwarded questions answered from the cache, by type (success: records; denial: NXDOMAIN or NODATA)', ['server', 'type', 'zones']);
    this.cacheMisses = counter('coredns_cache_misses_total', 'Forwarded questions not in the cache (or expired there)', ['server', 'zones']);
    this.forwardRequests = counter('coredns_forward_requests_total', 'Queries sent to each upstream resolver (timeouts and the loop probe included)', ['to']);
    this.forwardResponses = counter('coredns_forward_responses_total', 'Answers to our queries from each upstream, by rcode', ['to', 'rcode']);
    this.forwardDuration = histogram('coredns_forward_request_duration_seconds', 'Time an upstream took to answer (a retry over TCP after TC included), by upstream and rcode', ['to', 'rcode'], TIME_BUCKETS);
    this.proxyDuration = histogram('coredns_proxy_request_duration_seconds', 'The same as coredns_forward_request_duration_seconds under CoreDNS 1.11\'s name, proxy_name="forward"', ['proxy_name', 'to', 'rcode'], TIME_BUCKETS);
    this.forwardRejects = new client.Counter({ name: 'coredns_forward_max_concurrent_rejects_total', help: 'Forwarded questions answered SERVFAIL at once because the most allowed were in flight', registers });
  }

  query(e: DnsQueryEvent): void {
    const { server, zone } = e;
    this.requests.inc({ server, zone, proto: e.proto, family: e.family === 6 ? '2' : '1', type: e.type });
    this.requestSize.observe({ server, zone, proto: e.proto }, e.requestBytes);
    if (e.rcode === undefined) return; // dropped: nothing was sent back
    this.responses.inc({ server, zone, rcode: e.rcode });
    this.duration.observe({ server, zone, type: e.type }, e.seconds);
    if (e.responseBytes !== undefined) this.responseSize.observe({ server, zone, proto: e.proto }, e.responseBytes);
  }

  cacheHit(server: string, kind: CacheKind): void {
    this.cacheRequests.inc({ server, zones: CACHE_ZONES });
    this.cacheHits.inc({ server, type: kind, zones: CACHE_ZONES });
  }

  cacheMiss(server: string): void {
    this.cacheRequests.inc({ server, zones: CACHE_ZONES });
    this.cacheMisses.inc({ server, zones: CACHE_ZONES });
  }

  forwardRequest(to: string): void {
    this.forwardRequests.inc({ to });
  }

  forwardResponse(to: string, rcode: string, seconds: number): void {
    this.forwardResponses.inc({ to, rcode });
    this.forwardDuration.observe({ to, rcode }, seconds);
    this.proxyDuration.observe({ proxy_name: 'forward', to, rcode }, seconds);
  }

  forwardRejected(): void {
    this.forwardRejects.inc();
  }
}
