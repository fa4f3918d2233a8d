// The end-to-end suite's rules oracle for the nftables service proxy (the agent's default mode):
// `nft -j list table inet podwire` parsed by proxy-e2e-nft.ts, plus the checks that only this mode
// has (shared picks, affinity sets, the reject in filter prerouting that answers even on a node
// without a route to the service CIDR).
import { SHARED_PICK_MAX } from '../../src/proxy/nft/render.js';
import { checkRefused, inNetns, sameList } from './proxy-e2e.js';
import {
  BASE_CHAINS, dnatTargets, keyText, mapEntriesFor, mapGoto, nftView, nodePortChain, nodePortTargets, ownedNames, referencesTo, serviceIpTargets, serviceObjects, type NftView,
} from './proxy-e2e-nft.js';
import type { ProxyOracle } from './proxy-e2e-oracle.js';

const clusterIpChain = (v: NftView, ip: string, proto = 'tcp', port = 80) => mapGoto(v, 'svc-ips', `${ip} . ${proto} . ${port}`);

/**
 * The endpoint ("ip:port") that a ClusterIP's affinity sets pin `clientIp` to on this node: the
 * svc chain's `ip saddr @aff-X goto ep-Y` rules, the element lists of the aff- sets, ep-Y's DNAT.
 */
function affinityEndpoint(netns: string, clusterIp: string, clientIp: string): string {
  const v = nftView(netns);
  const chain = clusterIpChain(v, clusterIp);
  if (!chain) return 'no service chain';
  const hits: string[] = [];
  for (const rule of v.chains.get(chain) ?? []) {
    const text = JSON.stringify(rule);
    const set = /"right":"@(aff-[^"]+)"/.exec(text)?.[1];
    const target = /"goto":\{"target":"([^"]+)"\}/.exec(text)?.[1];
    if (!set || !target) continue;
    const elems = JSON.stringify(JSON.parse(inNetns(netns, 'nft', ['-j', 'list', 'set', 'inet', 'podwire', set])));
    if (elems.includes(`"${clientIp}"`)) hits.push(...dnatTargets(v, target));
  }
  return hits.length === 1 ? hits[0]! : `${hits.length} affinity entries (${hits.join(', ')})`;
}

/** Policy Local: the NodePort's chain checks `fib saddr type local` (node traffic goes cluster-wide, the rest to local endpoints only). */
const hasFib = (v: NftView, nodePort: number) => {
  const chain = nodePortChain(v, 'tcp', nodePort);
  return chain !== undefined && JSON.stringify(v.chains.get(chain) ?? []).includes('"fib"');
};

export const nftOracle: ProxyOracle<NftView> = {
  view: nftView,
  idle: (v) => {
    const chains = [...v.chains.keys()].filter((n) => /^(svc|ep|aff)-/.test(n));
    return [...v.maps.values()].every((m) => m.length === 0) && ![...v.sets.keys()].some((n) => n.startsWith('aff-')) &&
      chains.filter((n) => !n.startsWith('svc-pick-')).sort().join() === [...BASE_CHAINS].sort().join() && chains.filter((n) => n.startsWith('svc-pick-')).length === 2 * SHARED_PICK_MAX;
  },
  names: ownedNames,

  serviceIpTargets,
  nodePortTargets,
  serviceIpChain: clusterIpChain,
  nodePortChain,
  externalChain: /^svc-.*-ext$/,

  checkSpreadRules(t, v, ip, endpoints) {
    // Up to SHARED_PICK_MAX endpoints: the shared chain svc-pick-N, `numgen random mod N` over
    // the arms "IP . PORT . k" of @svc-eps-tcp-N.
    const n = endpoints.length;
    const chain = clusterIpChain(v, ip);
    t.ok(chain === `svc-pick-${n}` && JSON.stringify(v.chains.get(chain) ?? []).includes(`"mod":${n}`), `node1: ${ip}:80 goes to the shared pick ${chain} (numgen random mod ${n})`);
    const arms = (v.maps.get(`svc-eps-tcp-${n}`) ?? []).filter((e) => e.key.startsWith(`${ip} . 80 . `));
    t.same(arms.map((e) => e.key.split(' . ')[2]).sort(), endpoints.map((_, k) => String(k)), `one arm per numgen value (${arms.map((e) => e.key).join(', ')})`);
    t.same(arms.map((e) => keyText(e.verdict).replace(' . ', ':')).sort(), endpoints, 'the arms DNAT to the three endpoints');
  },

  affinity: {
    store: 'affinity sets',
    ready: (v, ip, endpoints) => {
      const chain = clusterIpChain(v, ip);
      return chain !== undefined && sameList(dnatTargets(v, chain), endpoints) && JSON.stringify(v.chains.get(chain)).includes('"@aff-');
    },
    endpoint: affinityEndpoint,
    stores: (netns) => [...nftView(netns).sets.keys()].filter((n) => n.startsWith('aff-')),
  },

  localNodePortFromNode: 'cluster',
  localPolicy: (v, _node, nodePort) => hasFib(v, nodePort),
  clusterPolicy: (v, nodePort) => nodePortChain(v, 'tcp', nodePort) !== undefined && !hasFib(v, nodePort),

  noEndpoints: {
    title: '5. a service without endpoints refuses TCP at once (ECONNREFUSED well under 1 s), never a timeout',
    rules: 'reject elements',
    ready: (v, ip, nodePort) => mapEntriesFor(v, [ip], [nodePort]).sort().join() === [`svc-no-endpoint-nodeports: tcp . ${nodePort}`, `svc-no-endpoints: ${ip} . tcp . 80`].join(),
    // The reject sits in filter prerouting, so it answers before the routing decision: lab
    // nodes have no route covering the service CIDR (no default route at all), and a pod's SYN
    // must still be refused, not die in routing (kube-proxy's filter forward would miss it).
    unrouted: (t, { c, client }, ip) => checkRefused(t, c, 'client pod → ClusterIP (node1 without a route to the service CIDR)', client.netns, `${ip}:80`),
  },

  checkHairpinRules(t, v, _svc, pod) {
    // Hairpin traffic is found in svc-nat-postrouting by `ip saddr . ip daddr @svc-hairpin`.
    const masq = (v.chains.get('svc-nat-postrouting') ?? []).some((r) => JSON.stringify(r).includes('"@svc-hairpin"') && JSON.stringify(r).includes('"masquerade"'));
    t.ok(masq && (v.sets.get('svc-hairpin') ?? []).includes(`${pod.ip} . ${pod.ip}`), `node1: @svc-hairpin holds ${pod.ip} . ${pod.ip}, which svc-nat-postrouting masquerades`);
  },

  serviceObjects: (v, svc) => serviceObjects(v,
    [...(svc.spec.clusterIPs ?? [svc.spec.clusterIP ?? '']), ...(svc.spec.externalIPs ?? []), ...(svc.spec.loadBalancerIP ? [svc.spec.loadBalancerIP] : [])].filter(Boolean),
    (svc.spec.ports ?? []).flatMap((p) => (p.nodePort ? [p.nodePort] : []))),
  chainPerService: false,
  referencesTo,

  resync: {
    // The agent's periodic check lists names only (intact()): a deleted chain is put back at
    // the next resync; a chain flushed in place waits for the hourly full sync (kube-proxy's
    // period), so that is not what this check breaks.
    breakage: '`nft delete chain` of our prerouting chain',
    entry: 'svc-nat-prerouting',
    services: 'svc-services',
    jumps: (netns) => {
      const rules = nftView(netns).chains.get('svc-nat-prerouting') ?? [];
      return rules.length === 1 && JSON.stringify(rules[0]).includes('"jump":{"target":"svc-services"}');
    },
    flush: (netns) => void inNetns(netns, 'nft', ['-f', '-'], 'flush chain inet podwire svc-nat-prerouting\ndelete chain inet podwire svc-nat-prerouting\n'),
  },
};
