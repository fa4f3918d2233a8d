// The IPVS mode's part of table inet podwire (pure): IPVS balances, nftables does the rest, with
// sets and maps and no iptables or ipset (kube-proxy's IPVS mode needs both). Layout:
//
//   ipvs-prerouting (filter, prerouting, -90) and ipvs-output (filter, output, -90):
//     ct state new  ip daddr . meta l4proto . th dport vmap @ipvs-no-endpoints   reject / drop
//     ip daddr . meta l4proto . th dport vmap @ipvs-services                      mark or accept
//     ip daddr @ipvs-bound-ips meta l4proto { tcp, udp, sctp } drop                other ports
//   ipvs-postrouting (nat, postrouting, 100): hairpin pairs and marked packets masqueraded.
//
// IPVS takes a connection at LOCAL_IN (priority 98/99: traffic from pods and other hosts) or, for
// a node process's own connection to a service, at LOCAL_OUT (-98/-99). The prerouting chain
// (-90) runs before the first, the output chain (-110) before the second, so both mark for
// masquerade and refuse new connections before IPVS picks a real server.
import type { Chain, MapElement, NftMap, NftSet, Rule, Ruleset, Verdict } from '../../exec/nft/objects.js';
import { NFT_TABLE } from '../../exec/names.js';
import { MASQ_MARK } from '../types.js';
import type { Classification, IpvsPlan, VirtualServer } from './plan.js';

export const IPVS_CHAINS = {
  prerouting: 'ipvs-prerouting',
  output: 'ipvs-output',
  postrouting: 'ipvs-postrouting',
  markCluster: 'ipvs-mark-cluster',
  mark: 'ipvs-mark',
  reject: 'ipvs-reject',
} as const;

export const IPVS_MAPS = { services: 'ipvs-services', noEndpoints: 'ipvs-no-endpoints' } as const;
export const IPVS_SETS = { bound: 'ipvs-bound-ips', hairpin: 'ipvs-hairpin' } as const;
export const IPVS_PREFIX = 'ipvs-';

export const IPVS_PRIORITY = { filterPrerouting: -90, filterOutput: -110, srcnat: 100 } as const;

const MARK: Rule['action'] = { kind: 'mark', op: 'or', value: MASQ_MARK };
const MASQUERADE: Rule['action'] = { kind: 'masquerade', fullyRandom: true };
const goto = (chain: string): Verdict => ({ kind: 'goto', chain });

/** The verdict of a virtual address's @ipvs-services element; 'reject'/'drop' ones also have an @ipvs-no-endpoints element. */
function serviceVerdict(c: Classification): Verdict {
  switch (c) {
    case 'cluster': return goto(IPVS_CHAINS.markCluster);
    case 'external': return goto(IPVS_CHAINS.mark);
    // local, reject, drop: established connections (draining real servers) go on unmarked.
    default: return { kind: 'accept' };
  }
}

/** Elements by map/set name, each keyed by its key text (what a partial sync diffs). */
export interface IpvsElements {
  services: Map<string, MapElement>;
  noEndpoints: Map<string, MapElement>;
  bound: string[];
  hairpin: string[];
}

/** One virtual address's elements: in @ipvs-services always, in @ipvs-no-endpoints for reject and drop. */
export function serviceElements(s: VirtualServer): { text: string; service: MapElement; noEndpoints?: MapElement } {
  const key = [s.address, s.proto, String(s.port)];
  const text = key.join(' . ');
  const service = { key, verdict: serviceVerdict(s.classification) };
  if (s.classification === 'reject') return { text, service, noEndpoints: { key, verdict: goto(IPVS_CHAINS.reject) } };
  if (s.classification === 'drop') return { text, service, noEndpoints: { key, verdict: { kind: 'drop' } } };
  return { text, service };
}

export function ipvsElements(plan: Pick<IpvsPlan, 'services' | 'boundIps' | 'hairpinIps'>): IpvsElements {
  const services = new Map<string, MapElement>();
  const noEndpoints = new Map<string, MapElement>();
  for (const s of plan.services) {
    const e = serviceElements(s);
    services.set(e.text, e.service);
    if (e.noEndpoints) noEndpoints.set(e.text, e.noEndpoints);
  }
  return { services, noEndpoints, bound: [...plan.boundIps], hairpin: plan.hairpinIps.map((ip) => `${ip} . ${ip}`) };
}

function fixedChains(cidrs: readonly string[]): Chain[] {
  const classify: Rule[] = [
    { matches: [{ kind: 'ctStateNew' }], action: { kind: 'vmap', key: 'daddr.proto.dport', map: IPVS_MAPS.noEndpoints } },
    { matches: [], action: { kind: 'vmap', key: 'daddr.proto.dport', map: IPVS_MAPS.services } },
    // A service IP answers only on its service ports (kubernetes#72236): the node's own
    // listeners on 0.0.0.0 must not be reachable through a ClusterIP. ICMP still answers.
    { matches: [{ kind: 'addrInSet', field: 'daddr', set: IPVS_SETS.bound }, { kind: 'l4protoIn', protos: ['tcp', 'udp', 'sctp'] }], action: { kind: 'verdict', verdict: { kind: 'drop' } }, comment: 'not a service port' },
  ];
  const fromOutside: Rule = cidrs.length ? { matches: [{ kind: 'addr', field: 'saddr', cidrs: [...cidrs], negate: true }], action: MARK } : { matches: [], action: MARK };
  return [
    { name: IPVS_CHAINS.prerouting, base: { type: 'filter', hook: 'prerouting', priority: IPVS_PRIORITY.filterPrerouting, policy: 'accept' }, rules: classify },
    { name: IPVS_CHAINS.output, base: { type: 'filter', hook: 'output', priority: IPVS_PRIORITY.filterOutput, policy: 'accept' }, rules: classify },
    { name: IPVS_CHAINS.postrouting, base: { type: 'nat', hook: 'postrouting', priority: IPVS_PRIORITY.srcnat, policy: 'accept' }, rules: [
      // After IPVS forwarded it, a pod reaching itself has saddr == daddr: masquerade it so the
      // reply comes back through the node (kube-proxy's KUBE-LOOP-BACK ipset).
      { matches: [{ kind: 'addrPairInSet', set: IPVS_SETS.hairpin }], action: MASQUERADE, comment: 'hairpin' },
      { matches: [{ kind: 'mark', mask: MASQ_MARK, isSet: false }], action: { kind: 'verdict', verdict: { kind: 'return' } } },
      { matches: [], action: { kind: 'mark', op: 'xor', value: MASQ_MARK } },
      { matches: [], action: MASQUERADE },
    ] },
    { name: IPVS_CHAINS.markCluster, comment: 'ClusterIP: masquerade what does not come from a pod', rules: [fromOutside] },
    { name: IPVS_CHAINS.mark, comment: 'NodePort, external and LB IPs under policy Cluster', rules: [{ matches: [], action: MARK }] },
    { name: IPVS_CHAINS.reject, comment: 'services without endpoints', rules: [
      { matches: [{ kind: 'l4proto', proto: 'tcp' }], action: { kind: 'reject', with: 'tcp-reset' } },
      { matches: [], action: { kind: 'reject', with: 'icmpx-port-unreachable' } },
    ] },
  ];
}

const IP_PROTO_PORT = ['ipv4_addr', 'inet_proto', 'inet_service'] as const;

/** The whole of the IPVS mode's objects in table inet podwire for a plan. */
export function renderIpvsNft(plan: Pick<IpvsPlan, 'services' | 'boundIps' | 'hairpinIps' | 'clusterCidrs'>): Ruleset {
  const el = ipvsElements(plan);
  const maps: NftMap[] = [
    { name: IPVS_MAPS.services, key: [...IP_PROTO_PORT], comment: 'every IPVS virtual address: mark or accept', elements: [...el.services.values()] },
    { name: IPVS_MAPS.noEndpoints, key: [...IP_PROTO_PORT], comment: 'virtual addresses without usable endpoints: new connections refused', elements: [...el.noEndpoints.values()] },
  ];
  const sets: NftSet[] = [
    { name: IPVS_SETS.bound, type: 'ipv4_addr', flags: [], comment: `addresses on the IPVS dummy device`, elements: el.bound },
    { name: IPVS_SETS.hairpin, type: 'ipv4_addr . ipv4_addr', flags: [], comment: 'endpoint IPs: a pod reaching itself', elements: el.hairpin },
  ];
  return { table: NFT_TABLE, chains: fixedChains(plan.clusterCidrs), maps, sets };
}

export function isIpvsName(name: string): boolean {
  return name.startsWith(IPVS_PREFIX);
}
