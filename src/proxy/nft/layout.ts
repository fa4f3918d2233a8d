// The fixed part of the proxy's table: object names, priorities, the base chains that hook in,
// the shared picks and the node-wide maps and sets (the "shell" every fragment's elements go into),
// and which names are ours. Pure. See render.ts for the layout as a whole.
import { NFT_MASQ_CHAIN as MASQ_CHAIN, NFT_TABLE } from '../../exec/names.js';
import { MASQ_MARK } from '../types.js';
import type { Chain, L4Proto, MapElement, NftMap, Rule, Ruleset, Verdict } from '../../exec/nft/objects.js';
import { ProxyRenderError } from '../port-view.js';

export { NFT_TABLE };

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
 * The reject chains (svc-filter-*) run at -90, after the dstnat chains of their hook, so they see
 * only connections that were *not* DNATed: a node process reaching a Local service's external IP
 * is short-circuited to the cluster-wide endpoints and must not be rejected first. They sit in
 * prerouting (not input/forward as kube-proxy's) so that a service without endpoints is
 * rejected even on a node with no route for the service CIDR, where the routing decision would
 * fail before input or forward (reject in prerouting needs kernel ≥ 5.9). They are nat chains
 * (the kernel takes reject in any chain type at these hooks): the NAT core runs a hook's nat
 * chains for a connection's first packet only, in priority order, and stops at the first that
 * binds, so a DNATed connection never reaches them and every later packet skips them (all nat
 * chains of a hook share the NAT core's one hook entry). As filter chains (podwire ≤ 2026-12-03)
 * they were two more hook entries that every packet of every flow through the node ran, only to
 * match `ct state new`. The throughput effect is within this machine's noise (BENCHMARKS.md,
 * "overlay against flannel as deployed"); the saving is by construction.
 */
export const PRIORITY = { dstnat: -100, srcnat: 100, filter: -90 } as const;

/** Never ours: the renderer refuses to emit it and diff.ts never touches it. */
export const FOREIGN_CHAIN = MASQ_CHAIN;

export const MARK: Rule['action'] = { kind: 'mark', op: 'or', value: MASQ_MARK };
export const MASQUERADE: Rule['action'] = { kind: 'masquerade', fullyRandom: true };
export const goto = (chain: string): Verdict => ({ kind: 'goto', chain });
export const jump = (chain: string): Verdict => ({ kind: 'jump', chain });
export const verdictRule = (v: Verdict, comment?: string): Rule => ({ matches: [], action: { kind: 'verdict', verdict: v }, comment });

function baseChains(): Chain[] {
  // Nat chains see only a connection's first packet: no `ct state new` needed.
  const noEndpoints: Rule = { matches: [], action: { kind: 'vmap', key: 'daddr.proto.dport', map: MAPS.noEndpoints } };
  const noEndpointNodePorts: Rule = {
    matches: [{ kind: 'addrInSet', field: 'daddr', set: NODEPORT_IPS_SET }],
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
    base(CHAINS.filterPrerouting, 'nat', 'prerouting', PRIORITY.filter, [noEndpoints, noEndpointNodePorts]),
    base(CHAINS.filterOutput, 'nat', 'output', PRIORITY.filter, [noEndpoints, noEndpointNodePorts]),
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
        // Each arm (destination . k → endpoint) counts the connections DNATed through it.
        counter: true,
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

