// The agent's Prometheus metrics (its own prom-client registry, so several agents in one test
// process do not collide). Names follow kube-proxy's where they fit, with podwire_ for kubeproxy_
// and one scheme for both loops: podwire_sync_*{subsystem="network"|"proxy"}. The loops do not
// import this: main hands them callbacks (Reconciler onSync, ServiceProxy onRulesSynced, the local
// API's onForwarded, the DNS server's observer), and the gauges read the agent's state when scraped.
// The cluster DNS server's metrics have CoreDNS's names (dns-metrics.ts).
import client from 'prom-client';
import type { DnsObserver } from '../dns/metrics.js';
import { DnsMetrics } from './dns-metrics.js';
import type { NetworkObjectCounts } from './agent.js';
import type { SyncResult } from './reconciler.js';
import type { ProxySyncReport } from '../proxy/backend.js';

export type Subsystem = 'network' | 'proxy';
export const SUBSYSTEMS: readonly Subsystem[] = ['network', 'proxy'];

/**
 * What the gauges read at scrape time; undefined: nothing programmed yet (a gauge without labels
 * then reads 0, a labelled one has no series).
 */
export interface AgentMetricsSources {
  network(): { peers: number; objects?: NetworkObjectCounts } | undefined;
  proxy(): { services: number; servicePorts: number; endpoints: number } | undefined;
  ipam(): { used: number; free: number } | undefined;
  /** The fast DELs' state (cni-del.ts); undefined without the CNI server. */
  cniDel?(): { pending: number; failed: number } | undefined;
}

// kube-proxy's sync buckets (1 ms doubling to ~16 s).
const SYNC_BUCKETS = client.exponentialBuckets(0.001, 2, 15);
// Programming latency is watch + coalescing + sync: ms to minutes.
const PROGRAMMING_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class AgentMetrics {
  readonly registry = new client.Registry();
  private readonly syncDuration: client.Histogram<'subsystem'>;
  private readonly syncErrors: client.Counter<'subsystem'>;
  private readonly lastSuccess: client.Gauge<'subsystem'>;
  private readonly programming: client.Histogram;
  private readonly rulesBytes: client.Counter<'scope'>;
  private readonly podRequests: client.Counter<'method' | 'code'>;
  private readonly podRequestErrors: client.Counter<'method'>;
  private readonly podRequestDuration: client.Histogram<'method'>;
  private readonly cniRequests: client.Counter<'command' | 'result'>;
  private readonly cniRequestDuration: client.Histogram<'command'>;
  private readonly now: () => number;
  private dns: DnsMetrics | undefined;

  /** now: the wall clock in ms (tests pass a fake one). processMetrics: prom-client's default process_* set. */
  constructor(sources: AgentMetricsSources, opts: { now?: () => number; processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const now = opts.now ?? Date.now;
    if (opts.processMetrics ?? true) client.collectDefaultMetrics({ register: this.registry, prefix: 'podwire_agent_' });
    this.syncDuration = new client.Histogram({ name: 'podwire_sync_duration_seconds', help: 'Duration of a sync (network: plan + apply + masquerade + subnet.env; proxy: the ruleset write + conntrack), failed ones included (kube-proxy: kubeproxy_sync_proxy_rules_duration_seconds)', labelNames: ['subsystem'] as const, buckets: SYNC_BUCKETS, registers });
    this.syncErrors = new client.Counter({ name: 'podwire_sync_errors_total', help: 'Syncs that failed (a step, the masquerade, or the ruleset write); each is retried', labelNames: ['subsystem'] as const, registers });
    this.lastSuccess = new client.Gauge({ name: 'podwire_sync_last_success_timestamp_seconds', help: 'When the last successful sync ended, Unix seconds (kube-proxy: kubeproxy_sync_proxy_rules_last_timestamp_seconds)', labelNames: ['subsystem'] as const, registers });
    for (const subsystem of SUBSYSTEMS) {
      // Present from the start (0 syncs, 0 errors), so rate() and alerts see the series.
      this.syncDuration.zero({ subsystem });
      this.syncErrors.inc({ subsystem }, 0);
    }
    this.programming = new client.Histogram({ name: 'podwire_network_programming_duration_seconds', help: 'From an Endpoints change at the control plane (its endpoints.kubernetes.io/last-change-trigger-time) to the rules for it in this node\'s kernel (kube-proxy: kubeproxy_network_programming_duration_seconds)', buckets: PROGRAMMING_BUCKETS, registers });
    this.rulesBytes = new client.Counter({ name: 'podwire_sync_proxy_rules_written_bytes_total', help: 'Bytes of ruleset text the service proxy wrote (nft -f or iptables-restore input), by sync scope', labelNames: ['scope'] as const, registers });
    this.podRequests = new client.Counter({ name: 'podwire_cni_pod_requests_total', help: 'Pod registrations the CNI plugin made through the local API (ADD: POST/PUT/GET, DEL: GET/DELETE), by method and the answer\'s code', labelNames: ['method', 'code'] as const, registers });
    this.podRequestErrors = new client.Counter({ name: 'podwire_cni_pod_request_errors_total', help: 'Pod registrations through the local API that failed on the agent\'s or control plane\'s side (5xx; 503: control plane unreachable)', labelNames: ['method'] as const, registers });
    this.podRequestDuration = new client.Histogram({ name: 'podwire_cni_pod_request_duration_seconds', help: 'Duration of a pod registration through the local API, control plane round trip included', labelNames: ['method'] as const, buckets: REQUEST_BUCKETS, registers });
    this.cniRequests = new client.Counter({ name: 'podwire_cni_requests_total', help: 'CNI commands the agent ran for the native client (the fast path, POST /v1/cni), by command and result (ok, error: a CNI error answered)', labelNames: ['command', 'result'] as const, registers });
    this.cniRequestDuration = new client.Histogram({ name: 'podwire_cni_request_duration_seconds', help: 'Duration of a CNI command through the agent, queueing behind its container\'s earlier requests included (a fast DEL: until it was answered)', labelNames: ['command'] as const, buckets: REQUEST_BUCKETS, registers });
    this.gauges(sources, registers);
    this.now = now;
  }

  /** The Reconciler's onSync for one loop. A skipped sync (nothing to work from yet) is not counted. */
  onSync(subsystem: Subsystem): (r: SyncResult) => void {
    return (r) => {
      if (r.skipped) return;
      this.syncDuration.observe({ subsystem }, r.ms / 1000);
      if (r.ok) this.lastSuccess.set({ subsystem }, this.now() / 1000);
      else this.syncErrors.inc({ subsystem });
    };
  }

  /** ServiceProxy's onRulesSynced. */
  rulesSynced(s: { report?: ProxySyncReport; programmingSeconds: number[] }): void {
    if (s.report && s.report.bytes > 0) this.rulesBytes.inc({ scope: s.report.scope }, s.report.bytes);
    for (const seconds of s.programmingSeconds) this.programming.observe(seconds);
  }

  /** The local API's onForwarded. */
  podRequest(r: { method: string; code: number; seconds: number }): void {
    this.podRequests.inc({ method: r.method, code: String(r.code) });
    this.podRequestDuration.observe({ method: r.method }, r.seconds);
    if (r.code >= 500) this.podRequestErrors.inc({ method: r.method });
  }

  /** The CNI server's onDone. */
  cniRequest(r: { command: string; code: number; seconds: number }): void {
    // Unknown commands are answered with a CNI error: one label value for them all keeps the set bounded.
    const command = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'].includes(r.command) ? r.command : 'other';
    this.cniRequests.inc({ command, result: r.code === 0 ? 'ok' : 'error' });
    this.cniRequestDuration.observe({ command }, r.seconds);
  }

  /**
   * The cluster DNS servers' observer (DnsServerOptions.observer), one for all of them: their
   * `server` labels tell them apart. The coredns_* families exist from the first call on.
   */
  dnsObserver(): DnsObserver {
    this.dns ??= new DnsMetrics([this.registry]);
    return this.dns;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private gauges(sources: AgentMetricsSources, registers: client.Registry[]): void {
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], collect: (g: client.Gauge<L>) => void) =>
      new client.Gauge<L>({ name, help, labelNames, registers, collect(this: client.Gauge<L>) { this.reset(); collect(this); } });
    gauge('podwire_network_peers', 'Peer nodes this node routes to (as of the last network sync)', [], (g) => {
      const n = sources.network();
      if (n) g.set(n.peers);
    });
    gauge('podwire_network_kernel_objects', 'Objects the last network sync\'s plan holds in the kernel, by kind (route, neighbour, fdb)', ['kind'], (g) => {
      const o = sources.network()?.objects;
      if (o) for (const [kind, n] of [['route', o.routes], ['neighbour', o.neighbours], ['fdb', o.fdb]] as const) g.set({ kind }, n);
    });
    gauge('podwire_proxy_services', 'Services with rules in the kernel (as of the last good proxy sync)', [], (g) => {
      const p = sources.proxy();
      if (p) g.set(p.services);
    });
    gauge('podwire_proxy_service_ports', 'Service ports with rules in the kernel (as of the last good proxy sync)', [], (g) => {
      const p = sources.proxy();
      if (p) g.set(p.servicePorts);
    });
    gauge('podwire_proxy_endpoints', 'Endpoints the rules send traffic to, summed over service ports (as of the last good proxy sync)', [], (g) => {
      const p = sources.proxy();
      if (p) g.set(p.endpoints);
    });
    gauge('podwire_cni_del_pending', 'DELs answered whose veth deletion and IP release have not finished yet (normally 0 within milliseconds)', [], (g) => {
      const d = sources.cniDel?.();
      if (d) g.set(d.pending);
    });
    gauge('podwire_cni_del_failures', 'Fast DELs whose veth deletion or release failed since the agent started (their journal entries stay for the next start)', [], (g) => {
      const d = sources.cniDel?.();
      if (d) g.set(d.failed);
    });
    gauge('podwire_ipam_addresses', 'Pod addresses of this node\'s podCIDR, by state (used: reserved by the CNI plugin; free: allocatable and not reserved)', ['state'], (g) => {
      const u = sources.ipam();
      if (u) {
        g.set({ state: 'used' }, u.used);
        g.set({ state: 'free' }, u.free);
      }
    });
  }
}
