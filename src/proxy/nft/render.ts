// ProxyInput → NftIR: podwire's service proxy for nftables, modelled on kube-proxy's nftables
// mode (pkg/proxy/nftables). Pure. IPv4 only for now: IPv6 ClusterIPs, external/LB IPs,
// endpoints, node IPs and cluster CIDRs are skipped (a v6-only service renders nothing and is
// reported through opts.onSkip); an `ip6` twin of every map and rule is the missing piece.
//
// Everything lives in the shared table `inet podwire` next to the agent's `pod-masquerade`
// chain; our objects all start with svc-, ep- or aff- (OWNED_PREFIXES) and nothing here names
// pod-masquerade. Per packet, the cost never depends on the number of services: svc-services
// holds two vmap rules and every per-service chain is reached through a map; inside a service,
// the random pick is a numgen data map or, below NUMGEN_VMAP_MIN_ENDPOINTS, a short cascade.
//
// Unlike kube-proxy there is no chain per endpoint (except for ClientIP affinity, which needs a
// set per endpoint): the service chain DNATs straight to the picked endpoint, and hairpin
// traffic is found in postrouting by `ip saddr . ip daddr @svc-hairpin`. nft 1.0.6 reads every
// chain of the ruleset into its cache before each transaction that names one (~2 ms per 1,000
// chains here), so the number of chains, not of rules, is what a one-service change costs:
// 10,000 services × 5 endpoints are ~10,000 chains instead of ~60,000.
//
// Each service port renders to a PortFragment (its chains, sets and map elements) on its own;
// assemble() puts fragments together, and incremental.ts re-renders only the changed ones.
// Validation and the IPv4 view of each service port: ../port-view.ts; chain names: names.ts.
//
//   svc-nat-prerouting  nat  prerouting  -100 (dstnat)  jump svc-services
//   svc-nat-output      nat  output      -100 (dstnat)  jump svc-services
//   svc-services        ip daddr . meta l4proto . th dport vmap @svc-ips            (ClusterIP, external IP, LB IP)
//                       ip daddr @svc-nodeport-ips meta l4proto . th dport vmap @svc-nodeports
//   svc-<h>             ClusterIP traffic: mark if the source is not a pod, then dnat to a random endpoint
//                       (affinity: known clients goto their ep-<h>, else a random ep-<h>)
//   svc-<h>-ext         NodePort / external / LB traffic: the external policy, then a pick or goto svc-<h>
//   svc-<h>-all         Local policy only: cluster-wide endpoints for pod and node traffic, when they differ from svc-<h>'s
//   ep-<h>              affinity only: update @aff-<h> { ip saddr }, dnat ip to IP:PORT
//   svc-nat-postrouting nat  postrouting  100 (srcnat)  hairpin (@svc-hairpin) and what carries MASQ_MARK: masquerade
//   svc-filter-prerouting filter prerouting -90  new packets still addressed to a service → @svc-no-endpoints, NodePorts too
//   svc-filter-output   filter output   -90  the same for the node's own processes
//   svc-reject          tcp reset, else ICMP port unreachable
import { NFT_MASQ_CHAIN as MASQ_CHAIN, NFT_TABLE } from '../../exec/names.js';
import { MASQ_MARK, type ProxyInput } from '../types.js';
import type { Chain, L4Proto, MapElement, NftMap, NftSet, Rule, Ruleset, Verdict } from '../../exec/nft/objects.js';
import { NameRegistry, affinityId, endpointId } from './names.js';
import { ipv4Number } from '../../net/ip.js';
import { ProxyRenderError, clusterCidrs, ipv4Only, validPortViews, type Endpoint, type PortView } from '../port-view.js';

export { NFT_TABLE, ProxyRenderError };

/** What the proxy renders: its objects in table inet podwire (the IR the diff, the tracer and the state work on). */
export type NftIR = Ruleset;

export const CHAINS = {
  natPrerouting: 'svc-nat-prerouting',
  natOutput: 'svc-nat-output',
  natPostrouting: 'svc-nat-postrouting',
  filterPrerouting: 'svc-filter-prerouting',
  filterOutput: 'svc-filter-output',
  services: 'svc-services',
  reject: 'svc-reject',
} as const;

export const MAPS = {
  serviceIps: 'svc-ips',
  nodePorts: 'svc-nodeports',
  noEndpoints: 'svc-no-endpoints',
  noEndpointNodePorts: 'svc-no-endpoint-nodeports',
} as const;

export const NODEPORT_IPS_SET = 'svc-nodeport-ips';
export const HAIRPIN_SET = 'svc-hairpin';
export const OWNED_PREFIXES = ['svc-', 'ep-', 'aff-'] as const;

/**
 * dstnat/srcnat as kube-proxy. Postrouting runs at srcnat (100), before pod-masquerade (srcnat +
 * 10): the NAT core consults a hook's nat chains in priority order until one binds, so service
 * masquerading (hairpin, node→ClusterIP, NodePort) is decided here and the mark is consumed
 * before the generic pod rules; pod-masquerade's `return`s never bind, so they cannot block it.
 * The filter chains run at -90, after the dstnat chains of their hook, so they see only packets
 * that were *not* DNATed: a node process reaching a Local service's external IP is
 * short-circuited to the cluster-wide endpoints and must not be rejected first. They sit in
 * prerouting (not input/forward as kube-proxy's) so that a service without endpoints is
 * rejected even on a node with no route for the service CIDR, where the routing decision would
 * fail before input or forward (reject in prerouting needs kernel ≥ 5.9).
 */
export const PRIORITY = { dstnat: -100, srcnat: 100, filter: -90 } as const;

/** Never ours: the renderer refuses to emit it and diff.ts never touches it. */
export const FOREIGN_CHAIN = MASQ_CHAIN;

const MARK: Rule['action'] = { kind: 'mark', op: 'or', value: MASQ_MARK };
const MASQUERADE: Rule['action'] = { kind: 'masquerade', fullyRandom: true };
const goto = (chain: string): Verdict => ({ kind: 'goto', chain });
const jump = (chain: string): Verdict => ({ kind: 'jump', chain });
const verdictRule = (v: Verdict, comment?: string): Rule => ({ matches: [], action: { kind: 'verdict', verdict: v }, comment });

function baseChains(): Chain[] {
  const noEndpoints: Rule = { matches: [{ kind: 'ctStateNew' }], action: { kind: 'vmap', key: 'daddr.proto.dport', map: MAPS.noEndpoints } };
  const noEndpointNodePorts: Rule = {
    matches: [{ kind: 'ctStateNew' }, { kind: 'addrInSet', field: 'daddr', set: NODEPORT_IPS_SET }],
    action: { kind: 'vmap', key: 'proto.dport', map: MAPS.noEndpointNodePorts },
  };
  const base = (name: string, type: 'nat' | 'filter', hook: NonNullable<Chain['base']>['hook'], priority: number, rules: Rule[]): Chain => ({
    name, base: { type, hook, priority, policy: 'accept' }, rules,
  });
  return [
    base(CHAINS.natPrerouting, 'nat', 'prerouting', PRIORITY.dstnat, [verdictRule(jump(CHAINS.services))]),
    base(CHAINS.natOutput, 'nat', 'output', PRIORITY.dstnat, [verdictRule(jump(CHAINS.services))]),
    base(CHAINS.natPostrouting, 'nat', 'postrouting', PRIORITY.srcnat, [
      // Hairpin: a pod reaching itself through a service must see the reply come from the
      // service, so its source is rewritten to the node (bridge) address. After DNAT the
      // destination is the endpoint, so "itself" is saddr == daddr, a pair in @svc-hairpin.
      { matches: [{ kind: 'ctStatusDnat' }, { kind: 'addrPairInSet', set: HAIRPIN_SET }], action: MASQUERADE, comment: 'hairpin' },
      { matches: [{ kind: 'mark', mask: MASQ_MARK, isSet: false }], action: { kind: 'verdict', verdict: { kind: 'return' } } },
      // Cleared so a packet that is routed here again (e.g. re-entering via a tunnel) is not masqueraded twice.
      { matches: [], action: { kind: 'mark', op: 'xor', value: MASQ_MARK } },
      { matches: [], action: MASQUERADE },
    ]),
    base(CHAINS.filterPrerouting, 'filter', 'prerouting', PRIORITY.filter, [noEndpoints, noEndpointNodePorts]),
    base(CHAINS.filterOutput, 'filter', 'output', PRIORITY.filter, [noEndpoints, noEndpointNodePorts]),
    { name: CHAINS.services, rules: [
      { matches: [], action: { kind: 'vmap', key: 'daddr.proto.dport', map: MAPS.serviceIps } },
      { matches: [{ kind: 'addrInSet', field: 'daddr', set: NODEPORT_IPS_SET }], action: { kind: 'vmap', key: 'proto.dport', map: MAPS.nodePorts } },
    ] },
    { name: CHAINS.reject, comment: 'services without endpoints', rules: [
      { matches: [{ kind: 'l4proto', proto: 'tcp' }], action: { kind: 'reject', with: 'tcp-reset' } },
      { matches: [], action: { kind: 'reject', with: 'icmpx-port-unreachable' } },
    ] },
  ];
}

/**
 * What a port claims in one map: a single element, or the arms of a shared pick for one
 * destination (IP, port), keys `IP . PORT . k` for k < N in @svc-eps-P-N. The arms are claimed
 * together: two ports naming the same destination in the same map hold the same N keys, so
 * claiming them one by one would give the same winner for each. Kept compact (the endpoints
 * list is the port view's own) because a 10,000-service state holds one per destination.
 */
export type FragmentElement =
  | { map: string; element: MapElement }
  | { map: string; pick: { ip: string; port: number; eps: readonly Endpoint[] } };

/** The claim's identity: the element's key, or the pick's destination (its arms share the rest). */
export const claimId = (e: FragmentElement): string =>
  'element' in e ? elementId(e.map, e.element.key) : `${e.map} ${e.pick.ip} . ${e.pick.port} . *`;

/** The map elements of a claim. */
export function claimElements(e: FragmentElement): MapElement[] {
  if ('element' in e) return [e.element];
  const { ip, port, eps } = e.pick;
  const p = String(port);
  return eps.map((ep, k) => ({ key: [ip, p, String(k)], data: [ep.ip, String(ep.port)] }));
}

/** What one service port puts in the kernel; fragments of different ports never share a name. */
export interface PortFragment {
  key: string;
  chains: readonly Chain[];
  /** Affinity sets. */
  sets: readonly NftSet[];
  /** In the order they are claimed; a map key claimed by two ports goes to the smaller port key. */
  elements: readonly FragmentElement[];
  /** Endpoint IPs: each is a pair "IP . IP" of @svc-hairpin while some port uses it. */
  endpointIps: readonly string[];
  /** [prefix, id] of every name this fragment holds in the registry. */
  names: readonly (readonly [string, string])[];
}

/** Shared by every fragment that has none of a kind: 10,000 services hold few chains or names. */
const NONE: readonly never[] = Object.freeze([]);
const compact = <T>(list: readonly T[]): readonly T[] => (list.length ? list : NONE);

/** The node-wide facts every fragment depends on (a change means rendering everything again). */
export interface RenderContext {
  cidrs: string[];
  nodeIps: string[];
  vmapMin: number;
  sharedMax: number;
}

/**
 * The shared pick for services with N endpoints (1 ≤ N ≤ sharedMax): chain svc-pick-N (ClusterIP
 * traffic: masquerade mark when the source is not a pod) or svc-pick-N-ext (external traffic under
 * policy Cluster: always marked), then per protocol `meta l4proto P dnat ip to ip daddr . P dport
 * . numgen random mod N map @svc-eps-P-N`. A service on this path has no chain of its own, only
 * elements: one in @svc-ips (goto the pick chain) and N per destination in @svc-eps-P-N.
 */
export const SHARED = {
  chain: (n: number) => `svc-pick-${n}`,
  extChain: (n: number) => `svc-pick-${n}-ext`,
  map: (n: number, proto: L4Proto) => `svc-eps-${proto}-${n}`,
} as const;

/** What one service port contributes; endpoint chains (affinity only) are collected as the LB rules use them. */
class PortRenderer {
  readonly chains: Chain[] = [];
  readonly sets: NftSet[] = [];
  readonly names: [string, string][] = [];
  readonly elements: FragmentElement[] = [];
  private readonly used = new Map<string, Endpoint>();
  private svcName: string | undefined;

  constructor(private readonly p: PortView, private readonly registry: NameRegistry, private readonly ctx: RenderContext) {}

  private name(prefix: string, id: string): string {
    this.names.push([prefix, id]);
    return this.registry.name(prefix, id);
  }

  /** svc-<h>: the port's own chain name (allocated only when some chain of the port needs it). */
  private get svcChain(): string {
    this.svcName ??= this.name('svc-', this.p.key);
    return this.svcName;
  }

  private epChain(e: Endpoint): string {
    this.used.set(`${e.ip}:${e.port}`, e);
    return this.name('ep-', endpointId(this.p.key, e.ip, e.port));
  }

  private affSet(e: Endpoint): string {
    return this.name('aff-', affinityId(this.p.key, e.ip, e.port, this.p.affinitySeconds!));
  }

  private shared(eps: Endpoint[]): boolean {
    return this.p.affinitySeconds === undefined && eps.length >= 1 && eps.length <= this.ctx.sharedMax;
  }

  private element(map: string, key: string[], verdict: Verdict): void {
    this.elements.push({ map, element: { key, verdict, comment: this.p.key } });
  }

  /** The @svc-eps-N arms of one destination (IP, port). */
  private pickElements(ip: string, port: number, eps: Endpoint[]): void {
    this.elements.push({ map: SHARED.map(eps.length, this.p.proto), pick: { ip, port, eps } });
  }

  /** The random pick in a chain of the port's own: straight DNAT; with affinity, known clients first and endpoint chains that record them. */
  private loadBalance(eps: Endpoint[]): Rule[] {
    const large = eps.length >= this.ctx.vmapMin;
    if (this.p.affinitySeconds === undefined) {
      return [{ matches: [{ kind: 'l4proto', proto: this.p.proto }], action: { kind: 'dnatPick', endpoints: eps.map((e) => ({ ip: e.ip, port: e.port })), form: large ? 'map' : 'cascade' } }];
    }
    const rules: Rule[] = eps.map((e) => ({ matches: [{ kind: 'addrInSet', field: 'saddr', set: this.affSet(e) }], action: { kind: 'verdict', verdict: goto(this.epChain(e)) } }));
    rules.push({ matches: [], action: { kind: 'numgen', chains: eps.map((e) => this.epChain(e)), form: large ? 'vmap' : 'cascade' } });
    return rules;
  }

  render(): void {
    const p = this.p;
    const reject = goto(CHAINS.reject);
    const drop: Verdict = { kind: 'drop' };
    const port = String(p.port);
    const has = p.all.length > 0;
    // ClusterIP traffic
    if (p.internal.length && this.shared(p.internal)) {
      for (const ip of p.clusterIps) {
        this.element(MAPS.serviceIps, [ip, p.proto, port], goto(SHARED.chain(p.internal.length)));
        this.pickElements(ip, p.port, p.internal);
      }
    } else if (p.internal.length) {
      // Traffic from outside the pod network (node, outside clients routed to the service
      // CIDR) is masqueraded so replies come back through this node.
      this.chains.push({ name: this.svcChain, comment: p.key, rules: [this.fromOutsideMark(), ...this.loadBalance(p.internal)] });
      for (const ip of p.clusterIps) this.element(MAPS.serviceIps, [ip, p.proto, port], goto(this.svcChain));
    } else {
      for (const ip of p.clusterIps) this.element(MAPS.noEndpoints, [ip, p.proto, port], has ? drop : reject);
    }
    // External destinations: a chain (or the shared pick) whenever some endpoint exists (pods
    // and the node are short-circuited there even under policy Local), the drop for whatever
    // falls through.
    if (p.nodePort !== undefined || p.externalIps.length) {
      const extMiss = !has ? reject : p.external.length ? undefined : drop;
      if (has) {
        const target = this.externalTarget();
        for (const ip of p.externalIps) this.element(MAPS.serviceIps, [ip, p.proto, port], goto(target));
        if (p.nodePort !== undefined) this.element(MAPS.nodePorts, [p.proto, String(p.nodePort)], goto(target));
      }
      if (extMiss) {
        for (const ip of p.externalIps) this.element(MAPS.noEndpoints, [ip, p.proto, port], extMiss);
        if (p.nodePort !== undefined) this.element(MAPS.noEndpointNodePorts, [p.proto, String(p.nodePort)], extMiss);
      }
    }
    this.chains.push(...[...this.used.values()].sort((a, b) => ipv4Number(a.ip) - ipv4Number(b.ip) || a.port - b.port).map((e) => this.endpointChain(e)));
  }

  /** No cluster CIDR known: masquerade everything rather than risk asymmetric replies. */
  private fromOutsideMark(): Rule {
    const cidrs = this.ctx.cidrs;
    return cidrs.length ? { matches: [{ kind: 'addr', field: 'saddr', cidrs, negate: true }], action: MARK } : { matches: [], action: MARK };
  }

  /** Where NodePort / external IP / LB IP traffic goes: the shared pick (policy Cluster) or svc-<h>-ext. */
  private externalTarget(): string {
    const p = this.p;
    if (!p.externalLocal && this.shared(p.external)) {
      const n = p.external.length;
      for (const ip of p.externalIps) this.pickElements(ip, p.port, p.external);
      if (p.nodePort !== undefined) for (const ip of this.ctx.nodeIps) this.pickElements(ip, p.nodePort, p.external);
      return SHARED.extChain(n);
    }
    this.chains.push(...this.externalChains());
    return `${this.svcChain}-ext`;
  }

  // Comments are a function of the chain name alone: nft keeps an existing chain's comment on
  // `add chain`, so a comment naming the policy would go stale when the policy changes.
  private externalChains(): Chain[] {
    const p = this.p;
    const ext = `${this.svcChain}-ext`;
    const same = (a: Endpoint[], b: Endpoint[]) => a.length === b.length && a.every((e, i) => e.ip === b[i].ip && e.port === b[i].port);
    const internalChain = p.internal.length > 0 && !this.shared(p.internal);
    if (!p.externalLocal) {
      // Policy Cluster: masquerade whatever the source, like kube-proxy: the endpoint may be on
      // another node and the client's replies must come back through this one to be un-DNATed.
      const rules: Rule[] = [{ matches: [], action: MARK }];
      if (p.external.length) rules.push(...(internalChain && same(p.external, p.internal) ? [verdictRule(goto(this.svcChain))] : this.loadBalance(p.external)));
      return [{ name: ext, comment: `${p.key} external`, rules }];
    }
    // Policy Local: only local endpoints, no masquerade (the client IP is kept). Pods and the
    // node itself are not "external" clients: they go to the cluster-wide endpoints, as with
    // kube-proxy (a pod reaching its LB IP should not fail on a node without local endpoints).
    const out: Chain[] = [];
    let cluster = this.svcChain;
    if (!internalChain || !same(p.all, p.internal)) {
      cluster = `${this.svcChain}-all`;
      out.push({ name: cluster, comment: `${p.key} cluster-wide`, rules: this.loadBalance(p.all) });
    }
    const rules: Rule[] = [];
    if (this.ctx.cidrs.length) rules.push({ matches: [{ kind: 'addr', field: 'saddr', cidrs: this.ctx.cidrs }], action: { kind: 'verdict', verdict: goto(cluster) }, comment: 'pod traffic: cluster-wide' });
    rules.push({ matches: [{ kind: 'fibLocal', field: 'saddr' }], action: MARK, comment: 'node traffic: masquerade' });
    rules.push({ matches: [{ kind: 'fibLocal', field: 'saddr' }], action: { kind: 'verdict', verdict: goto(cluster) }, comment: 'node traffic: cluster-wide' });
    // No local endpoint: fall through undnatted, and svc-filter-* drop it (@svc-no-endpoint*).
    if (p.external.length) rules.push(...this.loadBalance(p.external));
    return [{ name: ext, comment: `${p.key} external`, rules }, ...out];
  }

  /** Affinity only: record the client, then DNAT. */
  private endpointChain(e: Endpoint): Chain {
    const p = this.p;
    const set = this.affSet(e);
    this.sets.push({ name: set, type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeoutSeconds: p.affinitySeconds, comment: `${p.key} ${e.ip}:${e.port}`, elements: [] });
    const rules: Rule[] = [
      { matches: [], action: { kind: 'updateSet', set } },
      { matches: [{ kind: 'l4proto', proto: p.proto }], action: { kind: 'dnat', ip: e.ip, port: e.port } },
    ];
    return { name: this.epChain(e), comment: `${p.key} ${e.ip}:${e.port}`, rules };
  }
}

/** One service port's fragment; its names are allocated in (and stay held by) the registry. */
export function renderPortFragment(p: PortView, ctx: RenderContext, registry: NameRegistry): PortFragment {
  const r = new PortRenderer(p, registry, ctx);
  r.render();
  // p.all (sorted by IP) holds every endpoint but, rarely, a local one only the Local sets use.
  const ips = new Set(p.all.map((e) => e.ip));
  const before = ips.size;
  for (const e of p.internal) ips.add(e.ip);
  for (const e of p.external) ips.add(e.ip);
  const list = [...ips];
  return {
    // slice(): exact-size copies (an array grown by push keeps spare room).
    key: p.key, chains: compact(r.chains.slice()), sets: compact(r.sets.slice()), elements: compact(r.elements.slice()),
    endpointIps: compact(ips.size === before ? list : list.sort((a, b) => ipv4Number(a) - ipv4Number(b))), names: compact(r.names.slice()),
  };
}

export interface RenderOptions {
  /** Called for each service port that renders nothing (headless, ExternalName, IPv6-only). */
  onSkip?: (key: string, reason: string) => void;
  /** Endpoint count from which a service's own random pick is a numgen map rather than a cascade (default NUMGEN_VMAP_MIN_ENDPOINTS; 1: always a map). */
  numgenVmapMinEndpoints?: number;
  /** Services with up to this many endpoints (and no affinity) use the shared picks (default SHARED_PICK_MAX; 0: never). */
  sharedPickMax?: number;
}

/**
 * A service with its own chain (affinity, policy Local, more than SHARED_PICK_MAX endpoints)
 * picks with `numgen random mod N map {…}` (a data map of endpoints, or for affinity kube-proxy's
 * vmap of endpoint chains) only from this many endpoints on; below, a cascade of N rules `numgen
 * random mod N-i == 0 …` (one endpoint: the action alone), which uses no map. Every anonymous map
 * is a kernel set that nft lists into its cache before each transaction, and every anonymous vmap
 * is a verdict map the kernel walks whenever it validates the table (any transaction adding a
 * rule or a goto), so a transaction's cost grows with their number. Measured on kernel 6.18 / nft
 * 1.0.6 in a netns, 10,000 services with 2 endpoints: 85 s for the first full sync and 4 min 14 s
 * for the next one with vmaps, 2.9 s and 2.8 s with cascades (kube-proxy hit the same wall:
 * kubernetes#139513); 10,000 anonymous data maps of 5 took 35 s to load.
 */
export const NUMGEN_VMAP_MIN_ENDPOINTS = 8;

/**
 * Endpoint counts served by the shared picks (svc-pick-1 … svc-pick-16 and their maps). Why
 * shared: nft 1.0.6 loads every chain into its cache before each transaction, and the kernel
 * validates every rule reachable from a base chain whenever a transaction adds a rule or a goto,
 * so a one-service change costs O(chains + rules of the whole table). With a chain and a 5-rule
 * cascade per service, 10,000 services cost ~85 ms per change; on the shared path they are map
 * elements only (~10 fixed chains), and a change rewrites a few elements.
 */
export const SHARED_PICK_MAX = 16;

/** The node-wide facts of an input. */
export function renderContext(input: ProxyInput, opts: RenderOptions = {}): RenderContext {
  const vmapMin = opts.numgenVmapMinEndpoints ?? NUMGEN_VMAP_MIN_ENDPOINTS;
  if (!Number.isInteger(vmapMin) || vmapMin < 1) throw new ProxyRenderError(`proxy: numgenVmapMinEndpoints must be an integer ≥ 1, got ${vmapMin}`);
  const sharedMax = opts.sharedPickMax ?? SHARED_PICK_MAX;
  if (!Number.isInteger(sharedMax) || sharedMax < 0 || sharedMax > 256) throw new ProxyRenderError(`proxy: sharedPickMax must be an integer 0-256, got ${sharedMax}`);
  return {
    cidrs: clusterCidrs(input.clusterCidrs ?? []),
    nodeIps: ipv4Only('nodeIPs', input.nodeIPs).filter((ip) => !ip.startsWith('127.')).sort((a, b) => ipv4Number(a) - ipv4Number(b)),
    vmapMin,
    sharedMax,
  };
}

export const sameContext = (a: RenderContext, b: RenderContext): boolean => JSON.stringify(a) === JSON.stringify(b);

const ipKey = ['ipv4_addr', 'inet_proto', 'inet_service'] as const;
const portKey = ['inet_proto', 'inet_service'] as const;
const VERDICT_MAPS: { name: string; key: readonly ('ipv4_addr' | 'inet_proto' | 'inet_service')[]; comment: string }[] = [
  { name: MAPS.serviceIps, key: ipKey, comment: 'ClusterIP, external IP and LB IP traffic' },
  { name: MAPS.nodePorts, key: portKey, comment: 'NodePort traffic' },
  { name: MAPS.noEndpoints, key: ipKey, comment: 'service IPs without usable endpoints' },
  { name: MAPS.noEndpointNodePorts, key: portKey, comment: 'NodePorts without usable endpoints' },
];
const ALL_PROTOS: L4Proto[] = ['tcp', 'udp', 'sctp'];

function sharedChains(ctx: RenderContext): Chain[] {
  const out: Chain[] = [];
  for (let n = 1; n <= ctx.sharedMax; n++) {
    const dnat: Rule[] = ALL_PROTOS.map((proto) => ({ matches: [{ kind: 'l4proto', proto }], action: { kind: 'dnatMap', map: SHARED.map(n, proto), mod: n, proto } }));
    const fromOutside: Rule = ctx.cidrs.length ? { matches: [{ kind: 'addr', field: 'saddr', cidrs: ctx.cidrs, negate: true }], action: MARK } : { matches: [], action: MARK };
    out.push({ name: SHARED.chain(n), comment: `ClusterIP traffic to services with ${n} endpoint(s)`, rules: [fromOutside, ...dnat] });
    out.push({ name: SHARED.extChain(n), comment: `external traffic (policy Cluster) to services with ${n} endpoint(s)`, rules: [{ matches: [], action: MARK }, ...dnat] });
  }
  return out;
}

/** The IR shell: base chains, shared picks, the maps and the two node-wide sets, with the given elements (by map name). */
export function shellIR(ctx: RenderContext, elements: ReadonlyMap<string, MapElement[]>, hairpinIps: string[]): NftIR {
  const maps: NftMap[] = VERDICT_MAPS.map((m) => ({ name: m.name, key: [...m.key], comment: m.comment, elements: elements.get(m.name) ?? [] }));
  for (const proto of ALL_PROTOS) {
    for (let n = 1; n <= ctx.sharedMax; n++) {
      maps.push({
        name: SHARED.map(n, proto), key: [], comment: `${proto} services with ${n} endpoint(s): destination . k → endpoint`, elements: elements.get(SHARED.map(n, proto)) ?? [],
        typeof: { key: `ip daddr . ${proto} dport . numgen random mod ${n}`, data: `ip daddr . ${proto} dport` },
      });
    }
  }
  return {
    table: NFT_TABLE,
    chains: [...baseChains(), ...sharedChains(ctx)],
    maps,
    sets: [
      { name: NODEPORT_IPS_SET, type: 'ipv4_addr', flags: [], comment: 'node IPs answering NodePorts', elements: [...ctx.nodeIps] },
      { name: HAIRPIN_SET, type: 'ipv4_addr . ipv4_addr', flags: [], comment: 'endpoint IPs: a pod reaching itself', elements: hairpinIps.map((ip) => `${ip} . ${ip}`) },
    ],
  };
}

export const elementId = (map: string, key: readonly string[]): string => `${map} ${key.join(' . ')}`;

const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};

/** Fragments (sorted by key) put together; a map key claimed twice keeps its first owner. */
export function assemble(ctx: RenderContext, frags: readonly PortFragment[]): NftIR {
  const elements = new Map<string, MapElement[]>();
  const claimed = new Set<string>();
  const ips = new Set<string>();
  for (const f of frags) {
    for (const e of f.elements) {
      const id = claimId(e);
      if (claimed.has(id)) continue;
      claimed.add(id);
      for (const element of claimElements(e)) push(elements, e.map, element);
    }
    for (const ip of f.endpointIps) ips.add(ip);
  }
  const ir = shellIR(ctx, elements, [...ips].sort((a, b) => ipv4Number(a) - ipv4Number(b)));
  for (const f of frags) {
    ir.chains.push(...f.chains);
    ir.sets.push(...f.sets);
  }
  return ir;
}

/** Validated port views of an input, sorted by key; skipped ports reported through onSkip. */
export function portViews(input: ProxyInput, opts: RenderOptions = {}): PortView[] {
  return validPortViews(input, opts.onSkip).map((x) => x.view);
}

/**
 * NodePorts answer on the node's own IPv4 addresses (input.nodeIPs, the set svc-nodeport-ips),
 * not on every local address (`fib daddr type local`): that is kube-proxy's nftables default
 * (--nodeport-addresses=primary), it keeps NodePorts off the cni0 gateway and other addresses
 * the node happens to own, and it makes the lab's underlay IP answer without loopback. The
 * node IPs are plain set elements, so a new node IP is a one-element partial sync.
 */
export function renderProxyIR(input: ProxyInput, opts: RenderOptions = {}): NftIR {
  const ctx = renderContext(input, opts);
  const registry = new NameRegistry();
  return assemble(ctx, portViews(input, opts).map((p) => renderPortFragment(p, ctx, registry)));
}

/** True for names podwire's proxy owns in the shared table (never pod-masquerade). */
export function isOwnedName(name: string): boolean {
  return name !== FOREIGN_CHAIN && OWNED_PREFIXES.some((p) => name.startsWith(p));
}

/** Throws unless every object of the IR is ours: diff.ts relies on it. */
export function assertOwned(ir: NftIR): void {
  for (const o of [...ir.chains, ...ir.maps, ...ir.sets]) {
    if (!isOwnedName(o.name)) throw new ProxyRenderError(`nft: ${JSON.stringify(o.name)} is not a podwire proxy object (prefixes ${OWNED_PREFIXES.join(' ')})`);
  }
}
