// ProxyInput → NftIR: podwire's service proxy for nftables, modelled on kube-proxy's nftables
// mode (pkg/proxy/nftables). Pure. IPv4 only for now: IPv6 ClusterIPs, external/LB IPs,
// endpoints, node IPs and cluster CIDRs are skipped (a v6-only service renders nothing and is
// reported through opts.onSkip); an `ip6` twin of every map and rule is the missing piece.
//
// Everything lives in the shared table `inet podwire` next to the agent's `pod-masquerade`
// chain; our objects all start with svc-, ep- or aff- (OWNED_PREFIXES) and nothing here names
// pod-masquerade. Per packet, the cost never depends on the number of services: svc-services
// holds two vmap rules and every per-service chain is reached through a map; inside a service,
// the random pick is a numgen vmap or, below NUMGEN_VMAP_MIN_ENDPOINTS, a short cascade.
// Validation and the IPv4 view of the input: plan.ts; chain names: names.ts.
//
//   svc-nat-prerouting  nat  prerouting  -100 (dstnat)  jump svc-services
//   svc-nat-output      nat  output      -100 (dstnat)  jump svc-services
//   svc-services        ip daddr . meta l4proto . th dport vmap @svc-ips            (ClusterIP, external IP, LB IP)
//                       ip daddr @svc-nodeport-ips meta l4proto . th dport vmap @svc-nodeports
//   svc-<h>             ClusterIP traffic: mark if the source is not a pod, affinity, random pick → ep-…
//   svc-<h>-ext         NodePort / external / LB traffic: the external policy, then a pick or goto svc-<h>
//   svc-<h>-all         Local policy only: cluster-wide endpoints for pod and node traffic, when they differ from svc-<h>'s
//   ep-<h>              hairpin mark, affinity update, dnat ip to IP:PORT
//   svc-nat-postrouting nat  postrouting  100 (srcnat)  masquerade what carries MASQ_MARK
//   svc-filter-input    filter input   -110  new packets still addressed to a service → @svc-no-endpoints, NodePorts too
//   svc-filter-forward  filter forward -110  @svc-no-endpoints
//   svc-filter-output   filter output   -90  both; after svc-nat-output, see below
//   svc-reject          tcp reset, else ICMP port unreachable
import { NFT_CHAIN as MASQ_CHAIN, NFT_TABLE } from '../../agent/masq/render.js';
import { MASQ_MARK, type ProxyInput } from '../types.js';
import { NftIRError, type Chain, type MapElement, type NftIR, type NftSet, type Rule, type Verdict } from './ir.js';
import { affinityId, allocateNames, endpointId } from './names.js';
import { ProxyRenderError, clusterCidrs, ipNumber, ipv4Only, portPlan, type Endpoint, type PortPlan } from './plan.js';

export { NFT_TABLE, ProxyRenderError };

export const CHAINS = {
  natPrerouting: 'svc-nat-prerouting',
  natOutput: 'svc-nat-output',
  natPostrouting: 'svc-nat-postrouting',
  filterInput: 'svc-filter-input',
  filterForward: 'svc-filter-forward',
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
export const OWNED_PREFIXES = ['svc-', 'ep-', 'aff-'] as const;

/**
 * dstnat/srcnat as kube-proxy. Postrouting runs at srcnat (100), before pod-masquerade (srcnat +
 * 10): the NAT core consults a hook's nat chains in priority order until one binds, so service
 * masquerading (hairpin, node→ClusterIP, NodePort) is decided here and the mark is consumed
 * before the generic pod rules; pod-masquerade's `return`s never bind, so they cannot block it.
 * Filter chains on input/forward run after prerouting's DNAT whatever their priority (another
 * hook); -110 is kube-proxy's value. On output we run at -90, after svc-nat-output's DNAT, so on
 * every path the filter sees only packets that were *not* DNATed: a node process reaching a
 * Local service's external IP is short-circuited to the cluster-wide endpoints and must not be
 * dropped first (at -110 it would be, being still addressed to the external IP).
 */
export const PRIORITY = { dstnat: -100, srcnat: 100, filter: -110, filterOutput: -90 } as const;

/** Never ours: the renderer refuses to emit it and diff.ts never touches it. */
export const FOREIGN_CHAIN = MASQ_CHAIN;

const MARK: Rule['action'] = { kind: 'mark', op: 'or', value: MASQ_MARK };
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
    name, base: { type, hook, priority }, rules,
  });
  return [
    base(CHAINS.natPrerouting, 'nat', 'prerouting', PRIORITY.dstnat, [verdictRule(jump(CHAINS.services))]),
    base(CHAINS.natOutput, 'nat', 'output', PRIORITY.dstnat, [verdictRule(jump(CHAINS.services))]),
    base(CHAINS.natPostrouting, 'nat', 'postrouting', PRIORITY.srcnat, [
      { matches: [{ kind: 'mark', mask: MASQ_MARK, isSet: false }], action: { kind: 'verdict', verdict: { kind: 'return' } } },
      // Cleared so a packet that is routed here again (e.g. re-entering via a tunnel) is not masqueraded twice.
      { matches: [], action: { kind: 'mark', op: 'xor', value: MASQ_MARK } },
      { matches: [], action: { kind: 'masquerade' } },
    ]),
    base(CHAINS.filterInput, 'filter', 'input', PRIORITY.filter, [noEndpoints, noEndpointNodePorts]),
    base(CHAINS.filterForward, 'filter', 'forward', PRIORITY.filter, [noEndpoints]),
    base(CHAINS.filterOutput, 'filter', 'output', PRIORITY.filterOutput, [noEndpoints, noEndpointNodePorts]),
    { name: CHAINS.services, rules: [
      { matches: [], action: { kind: 'vmap', key: 'daddr.proto.dport', map: MAPS.serviceIps } },
      { matches: [{ kind: 'addrInSet', field: 'daddr', set: NODEPORT_IPS_SET }], action: { kind: 'vmap', key: 'proto.dport', map: MAPS.nodePorts } },
    ] },
    // Reject is only valid on input/forward/output (kernels < 5.9 refuse it in prerouting),
    // which is why the no-endpoint maps are consulted from the filter chains.
    { name: CHAINS.reject, comment: 'services without endpoints', rules: [
      { matches: [{ kind: 'l4proto', proto: 'tcp' }], action: { kind: 'reject', with: 'tcp-reset' } },
      { matches: [], action: { kind: 'reject', with: 'icmpx-port-unreachable' } },
    ] },
  ];
}

interface Names {
  svc: Map<string, string>;
  ep: Map<string, string>;
  aff: Map<string, string>;
}

function allocate(plans: PortPlan[]): Names {
  const epIds: string[] = [];
  const affIds: string[] = [];
  for (const p of plans) {
    for (const e of [...p.internal, ...p.external, ...p.all]) {
      epIds.push(endpointId(p.key, e.ip, e.port));
      if (p.affinitySeconds !== undefined) affIds.push(affinityId(p.key, e.ip, e.port, p.affinitySeconds));
    }
  }
  return { svc: allocateNames('svc-', plans.map((p) => p.key)), ep: allocateNames('ep-', epIds), aff: allocateNames('aff-', affIds) };
}

/** What one service port contributes; endpoint chains are collected as the LB rules use them. */
class PortRenderer {
  readonly chains: Chain[] = [];
  readonly sets: NftSet[] = [];
  private readonly used = new Map<string, Endpoint>();
  readonly svcChain: string;

  constructor(private readonly p: PortPlan, private readonly names: Names, private readonly cidrs: string[], private readonly vmapMin: number) {
    this.svcChain = names.svc.get(p.key)!;
  }

  private epChain(e: Endpoint): string {
    this.used.set(`${e.ip}:${e.port}`, e);
    return this.names.ep.get(endpointId(this.p.key, e.ip, e.port))!;
  }

  private affSet(e: Endpoint): string {
    return this.names.aff.get(affinityId(this.p.key, e.ip, e.port, this.p.affinitySeconds!))!;
  }

  /** Affinity lookups (a client seen recently goes back to its endpoint), then the random pick. */
  private loadBalance(eps: Endpoint[]): Rule[] {
    const rules: Rule[] = [];
    if (this.p.affinitySeconds !== undefined) {
      for (const e of eps) rules.push({ matches: [{ kind: 'addrInSet', field: 'saddr', set: this.affSet(e) }], action: { kind: 'verdict', verdict: goto(this.epChain(e)) } });
    }
    const form = eps.length >= this.vmapMin ? 'vmap' : 'cascade';
    rules.push({ matches: [], action: { kind: 'numgen', chains: eps.map((e) => this.epChain(e)), form } });
    return rules;
  }

  render(): void {
    const p = this.p;
    if (p.all.length === 0) return; // no endpoints anywhere: only svc-no-endpoints elements
    if (p.internal.length) {
      // Traffic from outside the pod network (node, outside clients routed to the service
      // CIDR) is masqueraded so replies come back through this node. No cluster CIDR known:
      // masquerade everything rather than risk asymmetric replies.
      const fromOutside: Rule = this.cidrs.length
        ? { matches: [{ kind: 'addr', field: 'saddr', cidrs: this.cidrs, negate: true }], action: MARK }
        : { matches: [], action: MARK };
      this.chains.push({ name: this.svcChain, comment: p.key, rules: [fromOutside, ...this.loadBalance(p.internal)] });
    }
    if (p.nodePort !== undefined || p.externalIps.length) this.chains.push(...this.externalChains());
    this.chains.push(...[...this.used.values()].sort((a, b) => ipNumber(a.ip) - ipNumber(b.ip) || a.port - b.port).map((e) => this.endpointChain(e)));
  }

  // Comments are a function of the chain name alone: nft keeps an existing chain's comment on
  // `add chain`, so a comment naming the policy would go stale when the policy changes.
  private externalChains(): Chain[] {
    const p = this.p;
    const ext = `${this.svcChain}-ext`;
    const same = (a: Endpoint[], b: Endpoint[]) => a.length === b.length && a.every((e, i) => e.ip === b[i].ip && e.port === b[i].port);
    if (!p.externalLocal) {
      // Policy Cluster: masquerade whatever the source, like kube-proxy: the endpoint may be on
      // another node and the client's replies must come back through this one to be un-DNATed.
      const rules: Rule[] = [{ matches: [], action: MARK }];
      if (p.external.length) rules.push(...(same(p.external, p.internal) ? [verdictRule(goto(this.svcChain))] : this.loadBalance(p.external)));
      return [{ name: ext, comment: `${p.key} external`, rules }];
    }
    // Policy Local: only local endpoints, no masquerade (the client IP is kept). Pods and the
    // node itself are not "external" clients: they go to the cluster-wide endpoints, as with
    // kube-proxy (a pod reaching its LB IP should not fail on a node without local endpoints).
    const out: Chain[] = [];
    let cluster = this.svcChain;
    if (!same(p.all, p.internal)) {
      cluster = `${this.svcChain}-all`;
      out.push({ name: cluster, comment: `${p.key} cluster-wide`, rules: this.loadBalance(p.all) });
    }
    const rules: Rule[] = [];
    if (this.cidrs.length) rules.push({ matches: [{ kind: 'addr', field: 'saddr', cidrs: this.cidrs }], action: { kind: 'verdict', verdict: goto(cluster) }, comment: 'pod traffic: cluster-wide' });
    rules.push({ matches: [{ kind: 'fibLocal', field: 'saddr' }], action: MARK, comment: 'node traffic: masquerade' });
    rules.push({ matches: [{ kind: 'fibLocal', field: 'saddr' }], action: { kind: 'verdict', verdict: goto(cluster) }, comment: 'node traffic: cluster-wide' });
    // No local endpoint: fall through undnatted, and svc-filter-* drop it (@svc-no-endpoint*).
    if (p.external.length) rules.push(...this.loadBalance(p.external));
    return [{ name: ext, comment: `${p.key} external`, rules }, ...out];
  }

  private endpointChain(e: Endpoint): Chain {
    const p = this.p;
    const rules: Rule[] = [
      // Hairpin: a pod reaching itself through the service must see the reply come from the
      // service, so its source is rewritten to the node (bridge) address.
      { matches: [{ kind: 'addr', field: 'saddr', cidrs: [e.ip] }], action: MARK, comment: 'hairpin' },
    ];
    if (p.affinitySeconds !== undefined) {
      const set = this.affSet(e);
      this.sets.push({ name: set, type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeoutSeconds: p.affinitySeconds, comment: `${p.key} ${e.ip}:${e.port}`, elements: [] });
      rules.push({ matches: [], action: { kind: 'updateSet', set } });
    }
    rules.push({ matches: [{ kind: 'l4proto', proto: p.proto }], action: { kind: 'dnat', ip: e.ip, port: e.port } });
    return { name: this.epChain(e), comment: `${p.key} ${e.ip}:${e.port}`, rules };
  }
}

/** Elements of the four verdict maps; a key already taken (two services claiming one external IP) keeps its first owner. */
class MapElements {
  readonly maps = { ips: [] as MapElement[], nodePorts: [] as MapElement[], noEndpoints: [] as MapElement[], noEndpointNodePorts: [] as MapElement[] };
  private readonly keys = new Set<string>();

  add(map: keyof MapElements['maps'], key: string[], verdict: Verdict, comment: string): void {
    const id = `${map} ${key.join(' . ')}`;
    if (this.keys.has(id)) return;
    this.keys.add(id);
    this.maps[map].push({ key, verdict, comment });
  }

  addPort(p: PortPlan, svcChain: string): void {
    const has = p.all.length > 0;
    const reject = goto(CHAINS.reject);
    const drop: Verdict = { kind: 'drop' };
    const port = String(p.port);
    for (const ip of p.clusterIps) {
      if (p.internal.length) this.add('ips', [ip, p.proto, port], goto(svcChain), p.key);
      else this.add('noEndpoints', [ip, p.proto, port], has ? drop : reject, p.key);
    }
    // External destinations: the -ext chain whenever some endpoint exists (pods and the node
    // are short-circuited there even under policy Local), the drop for whatever falls through.
    const extMiss = !has ? reject : p.external.length ? undefined : drop;
    for (const ip of p.externalIps) {
      if (has) this.add('ips', [ip, p.proto, port], goto(`${svcChain}-ext`), p.key);
      if (extMiss) this.add('noEndpoints', [ip, p.proto, port], extMiss, p.key);
    }
    if (p.nodePort === undefined) return;
    if (has) this.add('nodePorts', [p.proto, String(p.nodePort)], goto(`${svcChain}-ext`), p.key);
    if (extMiss) this.add('noEndpointNodePorts', [p.proto, String(p.nodePort)], extMiss, p.key);
  }
}

export interface RenderOptions {
  /** Called for each service port that renders nothing (headless, ExternalName, IPv6-only). */
  onSkip?: (key: string, reason: string) => void;
  /** Endpoint count from which the random pick is a numgen vmap rather than a cascade (default NUMGEN_VMAP_MIN_ENDPOINTS; 1: always a vmap). */
  numgenVmapMinEndpoints?: number;
}

/**
 * The random pick among a service's endpoints is kube-proxy's `numgen random mod N vmap {…}`
 * only from this many endpoints on; below, a cascade of N rules `numgen random mod N-i == 0 goto`
 * (one endpoint: a plain goto), which uses no map. Why: every anonymous vmap is a verdict map
 * the kernel scans on each jump/goto it validates, so a transaction's cost grows with
 * (vmaps × gotos). Measured on kernel 6.18 / nft 1.0.6 in a netns, 10,000 services with 2
 * endpoints: 85 s for the first full sync and 4 min 14 s for the next one with vmaps, 2.9 s and
 * 2.8 s with cascades (kube-proxy hit the same wall: kubernetes#139513, fixed for one endpoint
 * in #140723). A cascade costs at most N-1 extra numgen evaluations on the first packet of a
 * connection (NAT rules never see the others), and never grows with the number of services;
 * from 8 endpoints the vmap's O(1) wins, and services that large are few.
 */
export const NUMGEN_VMAP_MIN_ENDPOINTS = 8;

/**
 * NodePorts answer on the node's own IPv4 addresses (input.nodeIPs, the set svc-nodeport-ips),
 * not on every local address (`fib daddr type local`): that is kube-proxy's nftables default
 * (--nodeport-addresses=primary), it keeps NodePorts off the cni0 gateway and other addresses
 * the node happens to own, and it makes the lab's underlay IP answer without loopback. The
 * node IPs are plain set elements, so a new node IP is a one-element partial sync.
 */
export function renderProxyIR(input: ProxyInput, opts: RenderOptions = {}): NftIR {
  const cidrs = clusterCidrs(input.clusterCidrs ?? []);
  const plans: PortPlan[] = [];
  const seen = new Set<string>();
  for (const p of input.ports) {
    if (seen.has(p.svc.key)) throw new ProxyRenderError(`proxy: duplicate service port ${JSON.stringify(p.svc.key)}`);
    seen.add(p.svc.key);
    const plan = portPlan(p);
    if (typeof plan === 'string') opts.onSkip?.(p.svc.key, plan);
    else plans.push(plan);
  }
  plans.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const names = allocate(plans);
  const elements = new MapElements();
  const chains = baseChains();
  const sets: NftSet[] = [{
    name: NODEPORT_IPS_SET, type: 'ipv4_addr', flags: [], comment: 'node IPs answering NodePorts',
    elements: ipv4Only('nodeIPs', input.nodeIPs).filter((ip) => !ip.startsWith('127.')).sort((a, b) => ipNumber(a) - ipNumber(b)),
  }];
  for (const p of plans) {
    const r = new PortRenderer(p, names, cidrs, opts.numgenVmapMinEndpoints ?? NUMGEN_VMAP_MIN_ENDPOINTS);
    r.render();
    elements.addPort(p, r.svcChain);
    chains.push(...r.chains);
    sets.push(...r.sets);
  }
  const m = elements.maps;
  const ipKey = ['ipv4_addr', 'inet_proto', 'inet_service'] as const;
  const portKey = ['inet_proto', 'inet_service'] as const;
  return {
    table: NFT_TABLE,
    chains,
    maps: [
      { name: MAPS.serviceIps, key: [...ipKey], comment: 'ClusterIP, external IP and LB IP traffic', elements: m.ips },
      { name: MAPS.nodePorts, key: [...portKey], comment: 'NodePort traffic', elements: m.nodePorts },
      { name: MAPS.noEndpoints, key: [...ipKey], comment: 'service IPs without usable endpoints', elements: m.noEndpoints },
      { name: MAPS.noEndpointNodePorts, key: [...portKey], comment: 'NodePorts without usable endpoints', elements: m.noEndpointNodePorts },
    ],
    sets,
  };
}

/** True for names podwire's proxy owns in the shared table (never pod-masquerade). */
export function isOwnedName(name: string): boolean {
  return name !== FOREIGN_CHAIN && OWNED_PREFIXES.some((p) => name.startsWith(p));
}

/** Throws unless every object of the IR is ours: diff.ts relies on it. */
export function assertOwned(ir: NftIR): void {
  for (const o of [...ir.chains, ...ir.maps, ...ir.sets]) {
    if (!isOwnedName(o.name)) throw new NftIRError(`nft: ${JSON.stringify(o.name)} is not a podwire proxy object (prefixes ${OWNED_PREFIXES.join(' ')})`);
  }
}
