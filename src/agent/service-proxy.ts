// The agent's service proxy loop (kube-proxy's job): list + watch Services and Endpoints, keep a
// change tracker, and on change sync the mode's ruleset — partially, for the service ports that
// changed, or fully on start, node changes and after a failure — then clear stale UDP conntrack
// entries. Coalesced and rate-limited like the network reconcile.
import type { ApiClient } from '../client/api-client.js';
import { Informer } from '../client/informer.js';
import { LAST_CHANGE_TRIGGER_TIME, type Endpoints, type Service } from '../api/objects.js';
import type { CommandRunner } from '../exec/runner.js';
import { FULL_SYNC_PERIOD_MS, type ProxyBackend, type ProxySyncReport } from '../proxy/backend.js';
import { ProxyChangeTracker } from '../proxy/changes.js';
import type { ProxyInput } from '../proxy/types.js';
import type { DnatCounter } from '../proxy/counters.js';
import { proxyEndpointsView, proxyServiceView } from '../proxy/model.js';
import { conntrackDeletes, runConntrackDeletes } from '../proxy/conntrack.js';
import { Reconciler, type ReconcilerOptions, type SyncOutcome } from './reconciler.js';
import type { AgentLog } from './agent.js';

export interface ServiceProxyDeps {
  client: ApiClient;
  backend: ProxyBackend;
  /** The modes not in use: their rules are removed once this mode has synced. */
  others: ProxyBackend[];
  runner: CommandRunner;
  nodeName: string;
  /** The addresses NodePorts answer on, until setNodeIps() says otherwise (the Node's, see proxyNodeIps). */
  nodeIPs: string[];
  clusterCidrs: string[];
  log: AgentLog;
  reconciler?: ReconcilerOptions;
  /**
   * Called after a full sync that wrote at least GC_AFTER_FULL_SYNC_BYTES: a full garbage
   * collection (runtime.ts), so the list bodies, the script and the IR of a large sync do not
   * stay in the heap. Returns the ms it took (undefined: not available).
   */
  collectGarbage?: () => number | undefined;
  /**
   * After every sync that left the rules right (metrics): what was written, and for each
   * Endpoints change it covered, seconds from the change's trigger time at the control plane
   * (LAST_CHANGE_TRIGGER_TIME) to now, when the rules are in the kernel.
   */
  onRulesSynced?: (synced: { report?: ProxySyncReport; programmingSeconds: number[] }) => void;
  /** Wall clock in ms (tests); default Date.now. */
  now?: () => number;
}

/** A full sync this large (nftables: ~3,500 services × 5 endpoints) is followed by collectGarbage. */
export const GC_AFTER_FULL_SYNC_BYTES = 1 << 20;

export interface ServiceProxyStatus {
  mode: string;
  servicePorts: number;
  /** Services with at least one service port in the rules. */
  services: number;
  /** Endpoints in use over all service ports (allEndpoints). */
  endpoints: number;
  lastSync?: { at: string; scope: string; changed: number; bytes: number; ms: number; error?: string };
}

export class ServiceProxy {
  readonly status: ServiceProxyStatus;
  private readonly tracker: ProxyChangeTracker;
  private readonly services: Informer<Service>;
  private readonly endpoints: Informer<Endpoints>;
  private readonly reconciler: Reconciler;
  private forceFull = true;
  private lastFullAt = 0;
  private othersRemoved = false;
  /** Endpoints key → trigger times (ms) of changes no good sync has covered yet. */
  private triggers = new Map<string, number[]>();
  private readonly startedAt: number;

  constructor(private readonly deps: ServiceProxyDeps) {
    this.status = { mode: deps.backend.mode, servicePorts: 0, services: 0, endpoints: 0 };
    this.startedAt = this.now();
    this.tracker = new ProxyChangeTracker(deps.nodeName, { ips: deps.nodeIPs, clusterCidrs: deps.clusterCidrs });
    const request = (why: string) => () => this.reconciler.request(why);
    const onError = (what: string) => (e: Error, ms: number) => deps.log.warn({ err: e.message, retryInMs: ms }, `watching ${what} failed; keeping the current rules`);
    this.services = new Informer<Service>(deps.client, { plural: 'services' }, {
      onAdd: (s) => (this.tracker.setService(s), request('service added')()),
      onUpdate: (_o, s) => (this.tracker.setService(s), request('service changed')()),
      onDelete: (s) => (this.tracker.deleteService(s.metadata.namespace ?? 'default', s.metadata.name), request('service deleted')()),
      onSynced: request('services listed'),
      onError: onError('services'),
    }, { transform: proxyServiceView });
    this.endpoints = new Informer<Endpoints>(deps.client, { plural: 'endpoints' }, {
      onAdd: (e) => (this.tracker.setEndpoints(e), this.noteTrigger(e), request('endpoints added')()),
      onUpdate: (_o, e) => (this.tracker.setEndpoints(e), this.noteTrigger(e), request('endpoints changed')()),
      onDelete: (e) => (this.tracker.deleteEndpoints(e.metadata.namespace ?? 'default', e.metadata.name), request('endpoints deleted')()),
      onSynced: request('endpoints listed'),
      onError: onError('endpoints'),
    }, { transform: proxyEndpointsView });
    // The periodic resync puts back what someone else removed (`nft flush ruleset`, a firewall
    // reload flushing PREROUTING), which no watch event would ever report: a full sync when the
    // mode cannot check cheaply (iptables: its full sync compares iptables-save and writes only
    // on a difference), when the check fails, or once FULL_SYNC_PERIOD_MS has passed.
    this.reconciler = new Reconciler((reasons) => this.sync(reasons.includes('periodic resync')), { coalesceMs: 10, minIntervalMs: 50, ...deps.reconciler }, (e) => deps.log.error({ err: e.message }, 'service proxy sync crashed'));
  }

  start(): void {
    this.services.start();
    this.endpoints.start();
    // The first sync waits for both lists: rules from half a picture would reject live services.
    void Promise.all([this.services.waitForSync(3_600_000), this.endpoints.waitForSync(3_600_000)]).then(() => this.reconciler.start(), () => undefined);
  }

  async stop(): Promise<void> {
    await Promise.all([this.services.stop(), this.endpoints.stop()]);
    await this.reconciler.stop();
  }

  settled(): Promise<void> {
    return this.reconciler.settled();
  }

  /** The proxy's current model (Services × Endpoints as the tracker holds them), read-only: the debug API's explain. */
  model(): ProxyInput {
    return this.tracker.input();
  }

  /** The mode's per-endpoint DNAT counters (debug API's services), for the given service port keys or all. */
  counters(keys?: ReadonlySet<string>): DnatCounter[] {
    if (!this.deps.backend.counters) throw new Error(`proxy mode ${this.deps.backend.mode} cannot read its counters`);
    return this.deps.backend.counters(keys);
  }

  /**
   * The node's addresses as its Node now lists them (the agent's node informer): when they
   * differ from what the rules were rendered for, the next sync is a full one (every NodePort
   * answers on them).
   */
  setNodeIps(ips: readonly string[]): void {
    if (!this.tracker.setNode({ ips: [...ips], clusterCidrs: this.deps.clusterCidrs })) return;
    this.deps.log.info({ nodeIPs: ips }, 'node addresses changed; syncing every service');
    this.reconciler.request('node addresses changed');
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  /**
   * A change's trigger time, as kube-proxy records it: not for changes older than this proxy (the
   * initial list would measure how long the object existed) and not for deletions (their
   * annotation is the previous write's).
   */
  private noteTrigger(ep: Endpoints): void {
    if (!this.deps.onRulesSynced) return;
    const at = Date.parse(ep.metadata.annotations?.[LAST_CHANGE_TRIGGER_TIME] ?? '');
    if (!Number.isFinite(at) || at < this.startedAt) return;
    const key = `${ep.metadata.namespace ?? 'default'}/${ep.metadata.name}`;
    const times = this.triggers.get(key) ?? [];
    if (!times.includes(at)) times.push(at);
    this.triggers.set(key, times);
  }

  /** The trigger times a sync starting now covers; given back when it fails. */
  private takeTriggers(): Map<string, number[]> {
    const taken = this.triggers;
    this.triggers = new Map();
    return taken;
  }

  private giveBackTriggers(taken: Map<string, number[]>): void {
    for (const [key, times] of taken) this.triggers.set(key, [...times, ...(this.triggers.get(key) ?? [])]);
  }

  private reportSynced(taken: Map<string, number[]>, report?: ProxySyncReport): void {
    if (!this.deps.onRulesSynced) return;
    const now = this.now();
    const programmingSeconds = [...taken.values()].flat().map((at) => Math.max(0, now - at) / 1000);
    this.deps.onRulesSynced({ ...(report ? { report } : {}), programmingSeconds });
  }

  private async sync(resync = false): Promise<SyncOutcome> {
    if (!this.services.synced || !this.endpoints.synced) return { ok: true, skipped: true };
    const taken = this.takeTriggers();
    const pending = this.tracker.pending();
    const full = pending.full || this.forceFull || (resync && this.resyncNeedsFull());
    if (!full && pending.changedKeys.size === 0) {
      this.reportSynced(taken); // the rules already say what the changes ask for
      return { ok: true };
    }
    const input = this.tracker.input();
    const at = new Date().toISOString();
    try {
      const report = this.deps.backend.sync(input, full ? undefined : pending.changedKeys);
      const stale = conntrackDeletes(this.tracker.removedUdpEndpoints(), this.newlyActive(input));
      const failures = runConntrackDeletes(this.deps.runner, stale);
      if (failures.length) this.deps.log.warn({ failures }, 'clearing stale UDP conntrack entries failed');
      this.tracker.commit();
      this.forceFull = false;
      if (full) this.lastFullAt = Date.now();
      this.status.servicePorts = input.ports.length;
      this.status.services = new Set(input.ports.map((p) => `${p.svc.namespace}/${p.svc.name}`)).size;
      this.status.endpoints = input.ports.reduce((n, p) => n + p.allEndpoints.length, 0);
      this.status.lastSync = { at, scope: report.scope, changed: full ? input.ports.length : pending.changedKeys.size, bytes: report.bytes, ms: report.ms };
      const gcMs = report.scope === 'full' && report.bytes >= GC_AFTER_FULL_SYNC_BYTES ? this.deps.collectGarbage?.() : undefined;
      if (report.bytes > 0) this.deps.log.info({ scope: report.scope, changed: this.status.lastSync.changed, bytes: report.bytes, ms: report.ms, conntrackDeletes: stale.length, ...(gcMs !== undefined ? { gcMs } : {}) }, 'service rules synced');
      this.removeOthers();
      this.reportSynced(taken, report);
      return { ok: true };
    } catch (e) {
      // The kernel may hold half of a failed partial write's view: the next sync is a full one.
      this.forceFull = true;
      this.giveBackTriggers(taken);
      this.status.lastSync = { at, scope: full ? 'full' : 'partial', changed: pending.changedKeys.size, bytes: 0, ms: 0, error: (e as Error).message };
      this.deps.log.error({ err: (e as Error).message }, 'service rules sync failed; retrying with a full sync');
      return { ok: false };
    }
  }

  /** A periodic resync: is a full sync due, or did the kernel lose something of ours? */
  private resyncNeedsFull(): boolean {
    const backend = this.deps.backend;
    if (!backend.intact || Date.now() - this.lastFullAt >= FULL_SYNC_PERIOD_MS) return true;
    try {
      if (backend.intact()) return false;
      this.deps.log.warn({ mode: backend.mode }, 'service rules of ours are missing from the kernel; syncing everything');
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message }, 'checking the service rules failed; syncing everything');
    }
    return true;
  }

  private newlyActive(input: ReturnType<ProxyChangeTracker['input']>): { key: string; ips: string[] }[] {
    const keys = new Set(this.tracker.newlyActiveUdpKeys());
    return input.ports.filter((p) => keys.has(p.svc.key)).map((p) => ({ key: p.svc.key, ips: [...p.svc.clusterIPs, ...p.svc.externalIPs, ...p.svc.loadBalancerIPs] }));
  }

  /** After the first good sync of this mode: the old mode's rules go (switching --proxy-mode). */
  private removeOthers(): void {
    if (this.othersRemoved) return;
    for (const other of this.deps.others) {
      try {
        other.remove();
      } catch (e) {
        this.deps.log.warn({ mode: other.mode, err: (e as Error).message }, 'could not remove the other proxy mode\'s rules');
      }
    }
    this.othersRemoved = true;
  }
}

/** The modes `--proxy-mode` takes (the lab starts agents with them). */
export type { ProxyMode } from '../proxy/backend.js';
