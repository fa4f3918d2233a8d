// The agent's cluster DNS (issue 16 item 3): the server of src/dns answering on this node for
// this node's pods, kept from the agent's own watch of Services and Endpoints (and Pods in
// `verified` mode), so a change is answered as soon as the watch event arrives.
//
// Why in the agent and not a process of its own: the agent already runs in the node's netns with
// the credentials to watch the API, owns the node's nftables tables, and is restarted by the same
// unit; a second daemon would need its own token, watch and supervision for ~0 gain. What that
// costs (an agent restart is a DNS restart) is covered by the fallback below, which the kernel
// applies by itself because it depends on the socket existing, not on the agent doing anything.
//
// Two listeners, one index:
// - CLUSTER_DNS:53 (10.96.0.10, bound on lo) for this node's pods. rules.ts NOTRACKs their queries
//   while the socket exists: answered here, never DNATed, no conntrack race.
// - GATEWAY:53 (the node's cni0 address, e.g. 10.244.1.1) for other nodes' pods whose own server
//   is down; published on the Node as podwire.io/dns-endpoint, from which the control plane
//   keeps the kube-system/kube-dns Endpoints. Not the underlay address: the node does not become
//   a resolver for whatever network it sits on.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { CLUSTER_DNS_SERVICE, NODE_ANNOTATIONS, type Endpoints, type Pod, type Service } from '../../api/objects.js';
import { Informer } from '../../client/informer.js';
import type { ApiClient } from '../../client/api-client.js';
import { DnsServer, type DnsServerOptions } from '../../dns/server.js';
import { LiveDnsIndex } from '../../dns/live-index.js';
import type { DnsIndexOptions } from '../../dns/records.js';
import { parseResolvConf, type Upstream } from '../../dns/resolv-conf.js';
import { isIp } from '../../net/index.js';
import { DNS_PORT, renderDnsRules, renderDnsRulesRemove } from './rules.js';

export const DNS_ENDPOINT_ANNOTATION = NODE_ANNOTATIONS.dnsEndpoint;
const KUBE_DNS = CLUSTER_DNS_SERVICE;
const RETRY_MS = 2000;
/** Other nodes' servers one node falls back to (and probes), at most. */
export const MAX_FALLBACK = 8;

export interface NodeDnsLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The kernel steps, behind an interface (tests use a fake; the agent the real one below). */
export interface NodeDnsKernel {
  /** CLUSTER_DNS/32 (/128) on lo; idempotent. */
  bindClusterDns(ip: string): void;
  /** nft -f script (rules.ts). */
  applyRules(script: string): void;
}

export interface NodeDnsOptions {
  nodeName: string;
  clusterDns: string;
  zone: string;
  /** The node's pod gateway (cni0's address): the fallback listener and the published endpoint. */
  gateway: string;
  upstreams: Upstream[];
  ttl: number;
  negativeTtl: number;
  podRecords: DnsIndexOptions['podRecords'];
  /** Overrides for the servers (tests: ports, transport, loop probe). */
  server?: Partial<DnsServerOptions>;
  port?: number;
}

export interface NodeDnsDeps {
  client: ApiClient;
  kernel: NodeDnsKernel;
  log: NodeDnsLog;
  /**
   * Whether another node's server answers (kernel.ts realDnsProbe: a TXT query of
   * dns-version.ZONE). With it the fallback leaves out servers that do not (an agent killed -9
   * cannot withdraw its endpoint); without it every listed server is a fallback.
   */
  probe?: (ip: string) => Promise<boolean>;
  /** How often the fallback servers are probed (default 5 s). */
  probeIntervalMs?: number;
}

export interface NodeDnsStatus {
  clusterDns: string;
  gateway: string;
  /** Both watches listed: the index is whole. */
  synced: boolean;
  listening: string[];
  upstreams: string[];
  loops: string[];
  /** The other nodes' servers the nft fallback DNATs to when this one is down. */
  fallback: string[];
  /** Listed servers left out of the fallback: they did not answer the last probe. */
  fallbackDown: string[];
  error?: string;
}

export class NodeDns {
  readonly index: LiveDnsIndex;
  readonly servers: DnsServer[] = [];
  private readonly services: Informer<Service>;
  private readonly endpoints: Informer<Endpoints>;
  private readonly pods: Informer<Pod> | undefined;
  /** kube-dns's addresses other than ours (undefined: not seen yet). */
  private fallback: string[] | undefined;
  /** Of those, the ones whose last probe failed. */
  private down = new Set<string>();
  /** The fallback list the rules were last written with. */
  private written: string | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private published = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private lastError: string | undefined;

  constructor(private readonly o: NodeDnsOptions, private readonly deps: NodeDnsDeps) {
    this.index = new LiveDnsIndex({ zone: o.zone, ttl: o.ttl, negativeTtl: o.negativeTtl, podRecords: o.podRecords });
    const changed = () => {
      const snap = this.index.snapshot();
      for (const s of this.servers) s.update(snap);
    };
    const onError = (what: string) => (e: Error, ms: number) => deps.log.warn({ err: e.message, retryInMs: ms }, `dns: watching ${what} failed; answering from the last state`);
    this.services = new Informer<Service>(deps.client, { plural: 'services' }, {
      onAdd: (s) => (this.index.setService(s), changed()),
      onUpdate: (_o, s) => (this.index.setService(s), changed()),
      onDelete: (s) => (this.index.deleteService(s), changed()),
      onError: onError('services'),
    });
    this.endpoints = new Informer<Endpoints>(deps.client, { plural: 'endpoints' }, {
      onAdd: (e) => (this.index.setEndpoints(e), changed(), this.onEndpoints(e)),
      onUpdate: (_o, e) => (this.index.setEndpoints(e), changed(), this.onEndpoints(e)),
      onDelete: (e) => (this.index.deleteEndpoints(e), changed(), this.onEndpoints(undefined, e)),
      onError: onError('endpoints'),
    });
    this.pods = o.podRecords === 'verified'
      ? new Informer<Pod>(deps.client, { plural: 'pods' }, {
        onAdd: (p) => (this.index.setPod(p), changed()),
        onUpdate: (_o, p) => (this.index.setPod(p), changed()),
        onDelete: (p) => (this.index.deletePod(p), changed()),
        onError: onError('pods'),
      }, { transform: podIpsView })
      : undefined;
  }

  /** Watches, then (once listed) binds, listens and publishes; failures are retried in the background. */
  start(): void {
    this.services.start();
    this.endpoints.start();
    this.pods?.start();
    const listed = [this.services.waitForSync(3_600_000), this.endpoints.waitForSync(3_600_000), this.pods?.waitForSync(3_600_000)];
    // Before the lists are in, an answer would be NXDOMAIN for names that exist: no socket yet, so
    // the nft fallback sends this node's pods to another node meanwhile.
    void Promise.all(listed).then(() => this.bringUp(), () => undefined);
  }

  status(): NodeDnsStatus {
    return {
      clusterDns: this.o.clusterDns,
      gateway: this.o.gateway,
      synced: this.services.synced && this.endpoints.synced && (this.pods?.synced ?? true),
      listening: this.servers.map((s) => `${s.address.host}:${s.address.port}`),
      upstreams: this.servers[0]?.forwarder.upstreams.map((u) => `${u.host}:${u.port}`) ?? this.o.upstreams.map((u) => `${u.host}:${u.port}`),
      loops: [...new Set(this.servers.flatMap((s) => s.loops))],
      fallback: this.effectiveFallback(),
      fallbackDown: (this.fallback ?? []).filter((a) => this.down.has(a)),
      ...(this.lastError ? { error: this.lastError } : {}),
    };
  }

  /**
   * Closes the listeners (the kernel then sends this node's pods to the fallback) and withdraws the
   * published endpoint; the nft table stays, so the fallback keeps working while the agent is away.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.probeTimer);
    await Promise.all(this.servers.splice(0).map((s) => s.stop()));
    // Bounded: a control plane that is away must not hold the agent's shutdown (its 5 s limit).
    if (this.published) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 1.5 s')), 1500)));
      await Promise.race([this.publish(false), limit])
        .catch((e: Error) => this.deps.log.warn({ err: e.message }, 'dns: could not withdraw the node\'s DNS endpoint; the control plane keeps it until the agent is back'))
        .finally(() => clearTimeout(timer));
    }
    await Promise.all([this.services.stop(), this.endpoints.stop(), this.pods?.stop()]);
  }

  /** Removes the table (the agent's --dns off on a node that had it). */
  static removeRules(kernel: NodeDnsKernel): void {
    kernel.applyRules(renderDnsRulesRemove());
  }

  private async bringUp(): Promise<void> {
    if (this.stopped) return;
    try {
      this.deps.kernel.bindClusterDns(this.o.clusterDns);
      this.writeRules();
      const snap = this.index.snapshot();
      const port = this.o.port ?? DNS_PORT;
      for (const host of [this.o.clusterDns, this.o.gateway]) {
        if (this.servers.some((s) => s.options.listen.host === host)) continue;
        const server = new DnsServer(snap, { ...this.o.server, listen: { host, port }, upstreams: this.o.upstreams, log: this.deps.log });
        await server.start();
        if (this.stopped) return void (await server.stop());
        this.servers.push(server);
        for (const l of server.loops) this.deps.log.error({ listen: host }, `dns: ${l}`);
      }
      await this.publish(true);
      this.startProbing();
      this.lastError = undefined;
      this.deps.log.info({ listening: this.status().listening, upstreams: this.status().upstreams }, 'dns: serving the cluster zone');
    } catch (e) {
      // cni0 not there yet (EADDRNOTAVAIL), port 53 taken, the API briefly down: retried.
      this.lastError = (e as Error).message;
      this.deps.log.warn({ err: this.lastError, retryInMs: RETRY_MS }, 'dns: not serving yet; retrying');
      this.retry = setTimeout(() => void this.bringUp(), RETRY_MS);
      this.retry.unref();
    }
  }

  private onEndpoints(ep: Endpoints | undefined, deleted?: Endpoints): void {
    const meta = (ep ?? deleted)!.metadata;
    if (meta.namespace !== KUBE_DNS.namespace || meta.name !== KUBE_DNS.name) return;
    const next = ep ? pickFallback(fallbackAddresses(ep, this.o.gateway), this.o.nodeName) : [];
    if (this.fallback && next.join() === this.fallback.join()) return;
    this.fallback = next;
    // A server new to the list is used until a probe says otherwise.
    for (const a of [...this.down]) if (!next.includes(a)) this.down.delete(a);
    this.rewriteIfChanged();
  }

  /** The listed servers that answered their last probe; all of them when none did (better a guess than nothing). */
  private effectiveFallback(): string[] {
    const all = this.fallback ?? [];
    const up = all.filter((a) => !this.down.has(a));
    return up.length > 0 ? up : all;
  }

  private rewriteIfChanged(): void {
    if (this.servers.length === 0 || this.effectiveFallback().join() === this.written) return;
    try {
      this.writeRules();
    } catch (e) {
      this.deps.log.error({ err: (e as Error).message }, 'dns: updating the fallback rules failed');
    }
  }

  private startProbing(): void {
    if (!this.deps.probe || this.probeTimer) return;
    this.probeTimer = setInterval(() => void this.probeAll(), this.deps.probeIntervalMs ?? 5000);
    this.probeTimer.unref();
    void this.probeAll();
  }

  /** Probes every listed server at once; the rules change only when the set that answers does. */
  private async probeAll(): Promise<void> {
    const probe = this.deps.probe;
    if (!probe || this.probing || this.stopped) return;
    this.probing = true;
    try {
      const list = this.fallback ?? [];
      const results = await Promise.all(list.map((a) => probe(a).catch(() => false)));
      if (this.stopped || list !== this.fallback) return; // the list changed meanwhile: the next round
      list.forEach((a, i) => {
        const wasDown = this.down.has(a);
        if (results[i] && wasDown) (this.down.delete(a), this.deps.log.info({ server: a }, 'dns: fallback server answers again'));
        if (!results[i] && !wasDown) (this.down.add(a), this.deps.log.warn({ server: a }, 'dns: fallback server does not answer; left out of the fallback'));
      });
      this.rewriteIfChanged();
    } finally {
      this.probing = false;
    }
  }

  private writeRules(): void {
    const fallback = this.effectiveFallback();
    this.deps.kernel.applyRules(renderDnsRules({ clusterDns: this.o.clusterDns, fallback }));
    this.written = fallback.join();
  }

  private async publish(on: boolean): Promise<void> {
    await this.deps.client.patch({ plural: 'nodes', name: this.o.nodeName }, { metadata: { annotations: { [DNS_ENDPOINT_ANNOTATION]: on ? this.o.gateway : null } } });
    this.published = on;
  }
}

/**
 * At most `max` of the other servers for this node's fallback, the same ones as long as the list
 * holds them (rendezvous hashing on node name + address: each node its own spread of peers), so
 * the map and the probes (each node probes only its own picks) stay bounded in a large cluster.
 */
export function pickFallback(all: readonly string[], nodeName: string, max = MAX_FALLBACK): string[] {
  if (all.length <= max) return [...all];
  const score = (ip: string) => createHash('sha256').update(`${nodeName}\u0000${ip}`).digest().readUInt32BE(0);
  return [...all].sort((a, b) => score(a) - score(b) || (a < b ? -1 : 1)).slice(0, max).sort();
}

/** The kube-dns endpoints other than this node's own server (the fallback when it is down). */
export function fallbackAddresses(ep: Endpoints, own: string): string[] {
  const out = new Set<string>();
  for (const s of ep.subsets ?? []) for (const a of s.addresses ?? []) if (isIp(a.ip) && a.ip !== own) out.add(a.ip);
  return [...out].sort();
}

/** Only what `verified` pod records read. */
function podIpsView(p: Pod): Pod {
  return { apiVersion: p.apiVersion, kind: p.kind, metadata: { name: p.metadata.name, namespace: p.metadata.namespace, resourceVersion: p.metadata.resourceVersion }, spec: {}, status: { podIP: p.status?.podIP, podIPs: p.status?.podIPs } } as Pod;
}

/** The node's upstreams: --dns-upstream, else its resolv.conf's nameservers. */
export function nodeUpstreams(flag: Upstream[] | undefined, resolvConf = '/etc/resolv.conf'): { upstreams: Upstream[]; skipped: string[] } {
  if (flag) return { upstreams: flag, skipped: [] };
  let text = '';
  try {
    text = fs.readFileSync(resolvConf, 'utf8');
  } catch (e) {
    return { upstreams: [], skipped: [`${resolvConf}: ${(e as Error).message}`] };
  }
  const rc = parseResolvConf(text);
  return { upstreams: rc.nameservers, skipped: rc.skipped.map((s) => `${resolvConf} ${s}`) };
}
