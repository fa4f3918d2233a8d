// One service port → its PortFragment: the chains, affinity sets and map elements it puts in the
// table (see render.ts for the layout). Pure; names come from the shared NameRegistry.
import type { Chain, MapElement, NftSet, Rule, Verdict } from '../../exec/nft/objects.js';
import { ipv4Number } from '../../net/ip.js';
import type { Endpoint, PortView } from '../port-view.js';
import { CHAINS, MAPS, MARK, SHARED, goto, verdictRule, type RenderContext } from './layout.js';
import { affinityId, endpointId, type NameRegistry } from './names.js';

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


export const elementId = (map: string, key: readonly string[]): string => `${map} ${key.join(' . ')}`;

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
      // A counter on each DNAT (per endpoint in a cascade; for the map form, one for the port:
      // nft 1.0.6 has no counters in anonymous map elements).
      return [{ matches: [{ kind: 'l4proto', proto: this.p.proto }], action: { kind: 'dnatPick', endpoints: eps.map((e) => ({ ip: e.ip, port: e.port })), form: large ? 'map' : 'cascade' }, counter: true }];
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
      { matches: [{ kind: 'l4proto', proto: p.proto }], action: { kind: 'dnat', ip: e.ip, port: e.port }, counter: true },
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

