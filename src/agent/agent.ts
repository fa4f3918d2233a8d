// The node agent: registers its Node, learns its podCIDR, then keeps the kernel equal to the plan
// for the current set of peers (list + watch of Nodes), masquerades pod traffic leaving the
// cluster, and writes subnet.env for the CNI plugin. It never removes what it does not own, adopts
// what it finds intact after a restart (plan() of an intact kernel is empty), and when the control
// plane is away it keeps the last state it synced (persisted in RUN_DIR/state.json) and retries.
import fs from 'node:fs';
import path from 'node:path';
import { ApiClient, ApiClientError } from '../client/api-client.js';
import { Informer } from '../client/informer.js';
import { NODE_ANNOTATIONS, type Backend, type ClusterConfig, type Node } from '../api/objects.js';
import type { Handle } from '../netlink/handle.js';
import { applySteps } from './network/apply.js';
import { desiredNetwork } from './network/desired.js';
import { observeNetwork } from './network/observe.js';
import { describeStep, plan } from './network/plan.js';
import type { NetworkInput, PeerNode, UnderlayInfo } from './network/types.js';
import { nodeBody, peerOf, subnetEnvText, withNetworkReady } from './node-object.js';
import { Reconciler, type ReconcilerOptions, type SyncOutcome } from './reconciler.js';

export interface AgentLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MasqueradeSync {
  sync(input: { clusterCidrs: string[]; podCidr: string; vxlanPort?: number }): void;
}

export interface AgentDeps {
  client: ApiClient;
  handle: Handle;
  masq: MasqueradeSync;
  nodeName: string;
  underlay: UnderlayInfo;
  vtepMac: string;
  /** --backend; default: the cluster config's. */
  backend?: Backend;
  /** --vxlan-notrack (default true): the VXLAN device's outer packets bypass conntrack (masq/render.ts). */
  vxlanNotrack?: boolean;
  runDir: string;
  log: AgentLog;
  reconciler?: ReconcilerOptions;
  /** Sysctls the node needs (ip_forward, br_netfilter: node-sysctls.ts), applied in the agent's netns before the first sync. */
  prepareNode: () => void;
  /** This node's own Node as listed or watched (each add/update): the service proxy's node addresses. */
  onSelf?: (node: Node) => void;
  /** The HTTPS debug endpoint to publish on the Node (asked at registration; main.ts starts it first). */
  debugEndpoint?: () => { url: string; certSha256: string } | undefined;
}

/** What the last sync saw and did: /v1/status on the local socket, and state.json. */
export interface AgentState {
  nodeName: string;
  podCidr?: string;
  clusterCidr?: string;
  backend?: Backend;
  vni?: number;
  vxlanPort?: number;
  /** The cluster config's clusterDNS and clusterDomain, as registration read them (the CNI conflist's). */
  clusterDns?: { clusterDNS: string; clusterDomain: string };
  peers: PeerNode[];
  lastSync?: { at: string; steps: string[]; errors: string[]; ms: number; objects: NetworkObjectCounts };
  controlPlane: 'connected' | 'unreachable';
}

/** What the last sync's plan has in the kernel besides the bridge and VXLAN device (metrics). */
export interface NetworkObjectCounts {
  routes: number;
  neighbours: number;
  fdb: number;
}

const RETRY_MS = [200, 500, 1000, 2000, 5000];

export class Agent {
  readonly state: AgentState;
  private informer: Informer<Node> | undefined;
  private readonly reconciler: Reconciler;
  private self: Node | undefined;
  private stopped = false;
  private reportedReady = false;

  constructor(private readonly deps: AgentDeps) {
    this.state = { nodeName: deps.nodeName, peers: [], controlPlane: 'unreachable' };
    this.reconciler = new Reconciler((reasons) => this.sync(reasons), deps.reconciler, (e) => deps.log.error({ err: e.message }, 'sync crashed'));
  }

  get statePath(): string {
    return path.join(this.deps.runDir, 'state.json');
  }

  /** Registers (retrying while the control plane is away, meanwhile holding the last state), then runs. */
  async start(): Promise<void> {
    fs.mkdirSync(this.deps.runDir, { recursive: true, mode: 0o755 });
    this.deps.prepareNode();
    const last = this.loadState();
    if (last) Object.assign(this.state, { ...last, controlPlane: 'unreachable', lastSync: undefined });
    let attempt = 0;
    while (!this.stopped) {
      try {
        await this.register();
        break;
      } catch (e) {
        const ms = RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]!;
        this.deps.log.warn({ err: (e as Error).message, retryInMs: ms }, 'registration failed; retrying');
        if (attempt === 1 && last) this.reconciler.start(); // keep the last known state in the kernel
        await new Promise((r) => setTimeout(r, ms));
      }
    }
    if (this.stopped) return;
    this.informer = new Informer<Node>(this.deps.client, { plural: 'nodes' }, {
      onAdd: (n) => (this.noticeSelf(n), this.reconciler.request('node added')),
      // Only a change the network plan reads asks for a sync: not the NetworkUnavailable condition
      // agents write, nor annotations such as the DNS or debug endpoints they publish (each would
      // make every agent resync, and undo a repair under test or in progress for nothing).
      onUpdate: (o, n) => (this.noticeSelf(n), networkView(o) !== networkView(n) && this.reconciler.request('node changed')),
      onDelete: (n) => this.reconciler.request(`node ${n.metadata.name} deleted`),
      onSynced: () => {
        this.state.controlPlane = 'connected';
        this.reconciler.request('nodes listed');
      },
      onWatching: () => {
        this.state.controlPlane = 'connected';
      },
      onError: (e, ms) => {
        this.state.controlPlane = 'unreachable';
        this.deps.log.warn({ err: e.message, retryInMs: ms }, 'watching nodes failed; keeping the last state');
      },
    });
    this.informer.start();
    this.reconciler.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    await this.reconciler.stop();
  }

  /** This node's Node as last listed or watched (undefined before the first list). */
  selfNode(): Node | undefined {
    return this.informer?.cache.get(this.deps.nodeName);
  }

  private noticeSelf(node: Node): void {
    if (node.metadata.name !== this.deps.nodeName || !this.deps.onSelf) return;
    try {
      this.deps.onSelf(node);
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message }, 'handling this node\'s own Node failed');
    }
  }

  /** Resolves once the sync in progress (or requested) is done. */
  settled(): Promise<void> {
    return this.reconciler.settled();
  }

  private async register(): Promise<void> {
    const config = await this.deps.client.request<ClusterConfig>('GET', '/api/v1/clusterconfig');
    const backend = this.deps.backend ?? config.spec.backend;
    const debugEndpoint = this.deps.debugEndpoint?.();
    const reg = { nodeName: this.deps.nodeName, underlay: this.deps.underlay, vtepMac: this.deps.vtepMac, backend, ...(debugEndpoint ? { debugEndpoint } : {}) };
    const ref = { plural: 'nodes', name: this.deps.nodeName };
    let node: Node;
    try {
      node = await this.deps.client.create<Node>(ref, nodeBody(reg));
    } catch (e) {
      if (!(e instanceof ApiClientError) || e.code !== 409) throw e;
      const existing = await this.deps.client.get<Node>(ref);
      node = await this.deps.client.update<Node>(ref, nodeBody(reg, existing));
    }
    if (!node.spec.podCIDR) throw new Error(`node ${this.deps.nodeName} registered without a podCIDR`);
    this.self = node;
    Object.assign(this.state, { podCidr: node.spec.podCIDR, clusterCidr: config.spec.clusterCIDR, backend, vni: config.spec.vni, vxlanPort: config.spec.vxlanPort, controlPlane: 'connected' });
    // A control plane of an older release sends neither: the conflist then carries no cluster DNS.
    if (config.spec.clusterDNS && config.spec.clusterDomain) this.state.clusterDns = { clusterDNS: config.spec.clusterDNS, clusterDomain: config.spec.clusterDomain };
    this.deps.log.info({ podCidr: node.spec.podCIDR, backend, underlay: this.deps.underlay.ip }, 'registered');
  }

  /** The sync's input; `record` (the sync) keeps the peers it saw in the state, a read-only look does not. */
  private input(record = true): NetworkInput | undefined {
    const s = this.state;
    if (!s.podCidr || !s.clusterCidr || !s.backend) return undefined;
    let peers = s.peers;
    if (this.informer?.synced) {
      peers = [...this.informer.cache.values()].filter((n) => n.metadata.name !== s.nodeName).map(peerOf).filter((p): p is PeerNode => p !== undefined);
      if (record) s.peers = peers;
    }
    return { nodeName: s.nodeName, underlay: this.deps.underlay, podCidr: s.podCidr, clusterCidr: s.clusterCidr, backend: s.backend, vni: s.vni ?? 1, vxlanPort: s.vxlanPort ?? 8472, vtepMac: this.deps.vtepMac, peers };
  }

  /** The input a sync would use now, without recording anything (the debug API's peers); undefined before registration. */
  networkInput(): NetworkInput | undefined {
    return this.input(false);
  }

  /**
   * What a network sync would change right now (desired vs the kernel's routes, neighbours, FDB,
   * links), without changing anything: `podwire status` reports it as out of sync. Undefined
   * before registration. The masquerade rules are not compared here.
   */
  outOfSync(): string[] | undefined {
    const input = this.input(false);
    if (!input) return undefined;
    return plan(desiredNetwork(input), observeNetwork(this.deps.handle)).map(describeStep);
  }

  private async sync(reasons: string[]): Promise<SyncOutcome> {
    const input = this.input();
    if (!input) return { ok: true, skipped: true };
    const t0 = performance.now();
    const desired = desiredNetwork(input);
    const steps = plan(desired, observeNetwork(this.deps.handle));
    const result = applySteps(this.deps.handle, steps);
    const errors = result.errors.map((e) => `${describeStep(e.step)}: ${e.error.message}`);
    try {
      // With a VXLAN device (backend vxlan, or auto with a peer off this L2) its outer packets go untracked (nftables mode).
      const notrack = desired.vxlan && this.deps.vxlanNotrack !== false;
      this.deps.masq.sync({ clusterCidrs: [input.clusterCidr], podCidr: input.podCidr, ...(notrack ? { vxlanPort: desired.vxlan!.port } : {}) });
    } catch (e) {
      errors.push(`masquerade: ${(e as Error).message}`);
    }
    this.writeSubnetEnv(input.clusterCidr, desired.bridge.gatewayCidr, desired.podMtu);
    const ms = Math.round(performance.now() - t0);
    const objects = { routes: desired.routes.length, neighbours: desired.neighs.length, fdb: desired.fdb.length };
    this.state.lastSync = { at: new Date().toISOString(), steps: steps.map(describeStep), errors, ms, objects };
    if (steps.length > 0 || errors.length > 0) this.deps.log.info({ reasons, steps: this.state.lastSync.steps, errors, ms }, 'synced');
    this.saveState();
    await this.reportReadiness(errors);
    return { ok: errors.length === 0 };
  }

  /** NetworkUnavailable on the Node follows the sync result (best effort: never fails a sync). */
  private async reportReadiness(errors: string[]): Promise<void> {
    const ready = errors.length === 0;
    if (!this.self || (ready && this.reportedReady)) return;
    const ref = { plural: 'nodes', name: this.deps.nodeName };
    try {
      const live = await this.deps.client.get<Node>(ref);
      await this.deps.client.update(ref, withNetworkReady(live, ready, ready ? 'podwire network is configured' : errors.join('; ').slice(0, 500), new Date().toISOString()));
      this.reportedReady = ready;
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message }, 'could not report node readiness');
    }
  }

  private writeSubnetEnv(clusterCidr: string, gatewayCidr: string, mtu: number): void {
    const file = path.join(this.deps.runDir, 'subnet.env');
    const text = subnetEnvText(clusterCidr, gatewayCidr, mtu);
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) return;
    fs.writeFileSync(`${file}.tmp`, text, { mode: 0o644 });
    fs.renameSync(`${file}.tmp`, file);
  }

  private saveState(): void {
    const { lastSync: _l, controlPlane: _c, ...persist } = this.state;
    fs.writeFileSync(`${this.statePath}.tmp`, JSON.stringify(persist, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(`${this.statePath}.tmp`, this.statePath);
  }

  private loadState(): Partial<AgentState> | undefined {
    try {
      const s = JSON.parse(fs.readFileSync(this.statePath, 'utf8')) as Partial<AgentState>;
      return s.nodeName === this.deps.nodeName ? s : undefined;
    } catch {
      return undefined;
    }
  }
}

/** What of a Node the network sync reads (the peer, its backend, its addresses), as one comparable string. */
export function networkView(n: Node): string {
  return JSON.stringify([peerOf(n) ?? null, n.metadata.annotations?.[NODE_ANNOTATIONS.backend] ?? null, n.spec.podCIDRs ?? null, n.status?.addresses ?? null]);
}
