// The endpoints controller: keeps the Endpoints of every Service with a selector equal to what its
// selected pods say (deriveSubsets), as Kubernetes' endpoints controller does. It runs in the
// control plane process against the store directly: list + watch Services and Pods into a cache,
// mark the services an event touches dirty, and sync dirty services in batches. Writes are
// compare-and-swap on the Endpoints' modRevision, skipped when nothing changed, so several
// control plane instances (etcd HA) converge on the same objects instead of fighting.
//
// One Service more: kube-system/kube-dns without a selector gets the nodes' DNS servers (their
// podwire.io/dns-endpoint annotations, node-dns.ts), so Nodes are watched too. Endpoints of it
// written by hand (without the managed-by label) are left alone, as for any selector-less Service.
import { randomUUID } from 'node:crypto';
import { LAST_CHANGE_TRIGGER_TIME, MANAGED_BY_CONTROLLER, MANAGED_BY_LABEL, type Endpoints, type Node, type Pod, type Service } from '../../api/objects.js';
import { isStoreError, type Store, type WatchEvent, type WatchHandle } from '../store/types.js';
import { deriveSubsets, servicesSelectingPod, subsetsEqual } from './derive.js';
import { CLUSTER_DNS_SERVICE_KEY, isNodeDnsService, nodeDnsEndpoint, nodeDnsSubsets } from './node-dns.js';

export interface ControllerLog {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

const nsOf = (key: string): string => key.split('/')[2]!;
const serviceKeyOf = (ns: string, name: string): string => `/services/${ns}/${name}`;

export class EndpointsController {
  private services = new Map<string, Service>(); // store key → service
  private pods = new Map<string, Map<string, Pod>>(); // namespace → key → pod
  private nodes = new Map<string, Node>(); // store key → node
  private dirty = new Set<string>(); // service keys
  // service key → when the controller saw the first change not yet written (a Pod or Service
  // watch event): the Endpoints' last-change-trigger-time, as Kubernetes' controllers set it.
  private triggers = new Map<string, number>();
  private watches: WatchHandle[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  /** True once the first full sync has been written: /readyz waits for it. */
  synced = false;
  /** Writes made (created, updated, deleted Endpoints); for tests and metrics. */
  writes = 0;

  constructor(
    private readonly store: Store,
    private readonly log: ControllerLog,
    private readonly batchDelayMs = 5,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    const [services, pods, nodes] = await Promise.all([this.store.list<Service>('/services'), this.store.list<Pod>('/pods'), this.store.list<Node>('/nodes')]);
    this.services = new Map(services.items.map((o) => [o.key, o.value]));
    this.nodes = new Map(nodes.items.map((o) => [o.key, o.value]));
    this.pods = new Map();
    for (const o of pods.items) this.podsIn(nsOf(o.key)).set(o.key, o.value);
    for (const key of this.services.keys()) this.dirty.add(key);
    const restart = (e: Error) => this.restart(e);
    this.watches = [
      await this.store.watch<Service>('/services', services.revision, (ev) => this.onService(ev), restart),
      await this.store.watch<Pod>('/pods', pods.revision, (ev) => this.onPod(ev), restart),
      await this.store.watch<Node>('/nodes', nodes.revision, (ev) => this.onNode(ev), restart),
    ];
    await this.collectOrphans();
    await this.flush();
    this.synced = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watches.forEach((w) => w.close());
    this.watches = [];
    clearTimeout(this.timer);
    await this.running.catch(() => undefined);
  }

  /** A lost watch (history compacted, store connection lost): start over from a fresh list. */
  private restart(e: Error): void {
    if (this.stopped) return;
    this.log.warn({ err: e.message }, 'endpoints controller: watch failed; relisting');
    this.watches.forEach((w) => w.close());
    const retry = (): void => {
      if (this.stopped) return;
      this.start().catch((err: Error) => {
        this.log.warn({ err: err.message }, 'endpoints controller: relist failed; retrying in 1 s');
        setTimeout(retry, 1000).unref();
      });
    };
    retry();
  }

  private podsIn(ns: string): Map<string, Pod> {
    let m = this.pods.get(ns);
    if (!m) this.pods.set(ns, (m = new Map()));
    return m;
  }

  private onService(ev: WatchEvent<Service>): void {
    if (ev.type === 'DELETED') this.services.delete(ev.key);
    else this.services.set(ev.key, ev.value);
    this.mark([ev.key]);
  }

  private onPod(ev: WatchEvent<Pod>): void {
    const ns = nsOf(ev.key);
    const pods = this.podsIn(ns);
    const old = pods.get(ev.key);
    if (ev.type === 'DELETED') pods.delete(ev.key);
    else pods.set(ev.key, ev.value);
    const inNs = [...this.services.values()].filter((s) => s.metadata.namespace === ns);
    const touched = new Set<Service>([...(old ? servicesSelectingPod(inNs, old) : []), ...servicesSelectingPod(inNs, ev.value)]);
    this.mark([...touched].map((s) => serviceKeyOf(ns, s.metadata.name)));
  }

  /** Only a change of a node's DNS endpoint (or the node's going) touches kube-dns. */
  private onNode(ev: WatchEvent<Node>): void {
    const old = this.nodes.get(ev.key);
    if (ev.type === 'DELETED') this.nodes.delete(ev.key);
    else this.nodes.set(ev.key, ev.value);
    const now = ev.type === 'DELETED' ? undefined : nodeDnsEndpoint(ev.value);
    if (nodeDnsEndpoint(old) !== now) this.mark([CLUSTER_DNS_SERVICE_KEY]);
  }

  private mark(keys: string[]): void {
    if (keys.length === 0) return;
    const now = Date.now();
    for (const k of keys) {
      this.dirty.add(k);
      if (!this.triggers.has(k)) this.triggers.set(k, now);
    }
    if (this.timer || !this.synced) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.batchDelayMs);
  }

  /** Syncs every dirty service, one batch at a time (events during a batch make the next one). */
  flush(): Promise<void> {
    this.running = this.running.then(async () => {
      while (this.dirty.size > 0 && !this.stopped) {
        const batch = [...this.dirty];
        this.dirty.clear();
        for (const key of batch) {
          const triggeredAt = this.triggers.get(key);
          try {
            await this.sync(key);
          } catch (e) {
            // The retry's write carries the first trigger still (it measures from the change).
            if (triggeredAt !== undefined) this.triggers.set(key, Math.min(triggeredAt, this.triggers.get(key) ?? Infinity));
            if (this.stopped || isStoreError(e, 'Closed')) return;
            this.log.warn({ service: key, err: (e as Error).message }, 'endpoints controller: sync failed; will retry');
            this.dirty.add(key);
            const raced = isStoreError(e, 'Conflict') || isStoreError(e, 'AlreadyExists') || isStoreError(e, 'NotFound');
            await new Promise((r) => setTimeout(r, raced ? 10 : 500));
          }
        }
      }
    });
    return this.running;
  }

  private async sync(serviceKey: string): Promise<void> {
    const [, , ns, name] = serviceKey.split('/') as [string, string, string, string];
    const epKey = `/endpoints/${ns}/${name}`;
    const svc = this.services.get(serviceKey);
    const triggeredAt = this.triggers.get(serviceKey);
    this.triggers.delete(serviceKey); // flush() puts it back when this sync fails
    const current = await this.store.get<Endpoints>(epKey);
    const managed = current?.value.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_CONTROLLER;
    if (!svc) {
      if (current && managed) await this.write(() => this.store.delete(epKey, { expectedModRevision: current.modRevision }));
      return;
    }
    const subsets = isNodeDnsService(serviceKey, svc)
      ? current && !managed ? undefined : nodeDnsSubsets(svc, [...this.nodes.values()])
      : deriveSubsets(svc, [...this.podsIn(ns).values()]);
    if (subsets === undefined) return; // no selector: Endpoints are written by hand
    if (current && managed && subsetsEqual(current.value.subsets ?? [], subsets)) return;
    const labels = { ...(svc.metadata.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_CONTROLLER };
    const base = current
      ? { ...current.value.metadata, labels }
      : { name, namespace: ns, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), labels };
    const metadata = withTriggerTime(base, triggeredAt);
    const ep: Endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata, subsets };
    this.log.debug({ service: serviceKey, subsets: subsets.length }, 'endpoints controller: writing');
    await this.write(() => (current ? this.store.update(epKey, ep, { expectedModRevision: current.modRevision }) : this.store.create(epKey, ep)));
  }

  /** A lost race (someone wrote in between) throws; flush() marks the service again and retries. */
  private async write(fn: () => Promise<unknown>): Promise<void> {
    await fn();
    this.writes++;
  }

  /** Managed Endpoints whose Service is gone (deleted while no controller ran). */
  private async collectOrphans(): Promise<void> {
    const eps = await this.store.list<Endpoints>('/endpoints');
    for (const o of eps.items) {
      const [, , ns, name] = o.key.split('/') as [string, string, string, string];
      if (o.value.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_CONTROLLER && !this.services.has(serviceKeyOf(ns, name))) this.dirty.add(serviceKeyOf(ns, name));
    }
  }
}

/** The trigger time annotation set, or removed when this write has none (a relist), as Kubernetes does. */
function withTriggerTime(metadata: Endpoints['metadata'], at: number | undefined): Endpoints['metadata'] {
  const { [LAST_CHANGE_TRIGGER_TIME]: _old, ...others } = metadata.annotations ?? {};
  const annotations = at === undefined ? others : { ...others, [LAST_CHANGE_TRIGGER_TIME]: new Date(at).toISOString() };
  const { annotations: _a, ...rest } = metadata;
  return Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest;
}
