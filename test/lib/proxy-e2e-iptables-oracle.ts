// The end-to-end suite's rules oracle for the iptables service proxy (`podwire-agent --proxy-mode
// iptables`): `iptables-save` parsed by proxy-e2e-iptables.ts, xt_recent lists and ICMP counters,
// plus the checks that only this mode has (the statistic cascade, EXT chains, SEP hairpin marks,
// the ICMP error from a node without a route to the service CIDR).
import { inNetns, probe, probeMany, sameList } from './proxy-e2e.js';
import {
  affinityLists, cascade, dnatTargets, filterVerdicts, icmpCounters, iptView, nodePortChain, onlyBaseChains, ownedChains, packetCount, recentEntries, recentListNames,
  referencesTo, rules, serviceChain, serviceIpTargets, serviceObjects, type IptView,
} from './proxy-e2e-iptables.js';
import type { ProxyOracle } from './proxy-e2e-oracle.js';

const RESET = 'REJECT --reject-with tcp-reset';
const IMMEDIATE = /^(ENETUNREACH|EHOSTUNREACH|ECONNREFUSED)$/;

/**
 * The endpoint ("ip:port") whose xt_recent list holds `clientIp` on this node, among the lists
 * the ClusterIP's chain checks (`-m recent --rcheck --name PODWIRE-SEP-…`, one per endpoint);
 * the SEP chain of the same name does the DNAT.
 */
function affinityEndpoint(netns: string, clusterIp: string, clientIp: string): string {
  const v = iptView(netns);
  const chain = serviceChain(v, clusterIp, 'tcp', 80);
  if (!chain) return 'no service chain';
  const hits = affinityLists(v, chain).filter((list) => recentEntries(netns, list).includes(clientIp)).flatMap((list) => dnatTargets(v, list));
  return hits.length === 1 ? hits[0]! : `${hits.length} affinity entries (${hits.join(', ')})`;
}

const nodePortTargets = (v: IptView, proto: string, nodePort: number): string[] | undefined => {
  const chain = nodePortChain(v, proto, nodePort);
  return chain === undefined ? undefined : dnatTargets(v, chain);
};

export const iptablesOracle: ProxyOracle<IptView> = {
  view: iptView,
  idle: (v) => onlyBaseChains(v) && rules(v, 'nat', 'PODWIRE-SERVICES').length === 1 &&
    rules(v, 'nat', 'PODWIRE-NODEPORTS').length === 0 && rules(v, 'filter', 'PODWIRE-SERVICES-FILTER').length === 0,
  names: (v) => Object.values(ownedChains(v)).flat(),

  serviceIpTargets,
  nodePortTargets,
  serviceIpChain: serviceChain,
  nodePortChain,
  externalChain: /^PODWIRE-EXT-/,

  checkSpreadRules(t, v, ip, endpoints) {
    // The SVC chain is a 1/N, 1/(N-1), …, rest cascade over the SEP chains (1/3, 1/2, 1 for three).
    const arms = cascade(v, serviceChain(v, ip, 'tcp', 80) ?? '-');
    const want = endpoints.map((_, i) => 1 / (endpoints.length - i));
    t.ok(arms.length === want.length && arms.every((a, i) => (i === want.length - 1 ? a[0] === 1 : Math.abs(a[0] - want[i]!) < 1e-6)), `node1: statistic cascade ${JSON.stringify(arms.map((a) => a[0]))} is ${want.map((p) => (p === 1 ? '1' : `1/${Math.round(1 / p)}`)).join(', ')}`);
    t.same(arms.map((a) => dnatTargets(v, a[1])[0]).sort(), endpoints, 'the arms DNAT to the three endpoints');
  },

  affinity: {
    store: 'xt_recent lists',
    ready: (v, ip, endpoints) => {
      const chain = serviceChain(v, ip, 'tcp', 80);
      return chain !== undefined && sameList(dnatTargets(v, chain), endpoints) && affinityLists(v, chain).length === endpoints.length;
    },
    endpoint: affinityEndpoint,
    stores: recentListNames,
  },

  // Local: EXT short-circuits the node's own traffic (--src-type LOCAL) to SVC; the endpoint's
  // node goes on to an SVL chain, the others drop the NodePort in the filter table.
  localNodePortFromNode: 'cluster',
  localPolicy(v, node, nodePort, local) {
    const ext = nodePortChain(v, 'tcp', nodePort);
    if (!ext || !rules(v, 'nat', ext).some((r) => /--src-type LOCAL/.test(r))) return false;
    const svl = rules(v, 'nat', ext).map((r) => /-j (PODWIRE-SVL-\S+)/.exec(r)?.[1]).find(Boolean);
    const drop = filterVerdicts(v, undefined, 'tcp', nodePort);
    return node.name === local.node ? svl !== undefined && sameList(dnatTargets(v, svl), local.endpoints) && drop.length === 0 : svl === undefined && sameList(drop, ['DROP']);
  },
  clusterPolicy(v, nodePort, endpoints) {
    const ext = nodePortChain(v, 'tcp', nodePort);
    return ext !== undefined && !rules(v, 'nat', ext).some((r) => /--src-type LOCAL|PODWIRE-SVL-/.test(r)) && filterVerdicts(v, undefined, 'tcp', nodePort).length === 0 && sameList(dnatTargets(v, ext), endpoints);
  },

  noEndpoints: {
    title: '5. a service without endpoints fails at once (well under 1 s), never a timeout',
    rules: 'REJECT rules (and nothing else)',
    ready: (v, ip, nodePort) => sameList(filterVerdicts(v, ip, 'tcp', 80), [RESET]) && sameList(filterVerdicts(v, undefined, 'tcp', nodePort), [RESET]) &&
      serviceChain(v, ip, 'tcp', 80) === undefined && nodePortChain(v, 'tcp', nodePort) === undefined,
    // The REJECT for a ClusterIP sits in filter FORWARD/OUTPUT (as kube-proxy's), so the packet
    // must be routable on its node to get there. Lab nodes have no route covering the service
    // CIDR (real nodes have a default route): the pod's SYN dies in node1's routing, which
    // answers with ICMP net unreachable (ENETUNREACH at the client), and a node's own connect()
    // fails in its route lookup. The kernel rate-limits those ICMP errors per client host, though
    // (ip_error's net.ipv4.route.error_cost/error_burst and net.ipv4.icmp_ratelimit, drawing on
    // the same per-host tokens; IcmpOutRateLimitHost counts some), so only a client's first
    // attempts are refused at once: attempts soon after it time out.
    async unrouted(t, { c, nodes: [n1, n2], client }, ip) {
      const icmp0 = icmpCounters(n1.netns);
      const [first] = await probe(c, client.netns, [`${ip}:80`], 3000);
      t.ok(!first!.ok && IMMEDIATE.test(first!.error ?? '') && first!.ms < 500, `client pod → ClusterIP (node1 has no route to the service CIDR): the first attempt fails at once: ${first!.error} after ${first!.ms} ms (< 500 ms)`);
      const again = await probeMany(c, client.netns, `${ip}:80`, 4, { concurrency: 4, timeoutMs: 1000 });
      const icmp1 = icmpCounters(n1.netns);
      const icmpNote = `node1 sent ${icmp1.OutDestUnreachs! - icmp0.OutDestUnreachs!} ICMP dest-unreachable, rate-limited ${(icmp1.OutRateLimitHost ?? NaN) - (icmp0.OutRateLimitHost ?? NaN)} per host + ${(icmp1.OutRateLimitGlobal ?? NaN) - (icmp0.OutRateLimitGlobal ?? NaN)} globally (IcmpOutRateLimitHost/Global)`;
      // Known gap, kube-proxy's too (so recorded, not asserted): without a route covering the
      // service CIDR the refusal is an ICMP error, which the node rate-limits per client host, so
      // attempts right after the first may time out; with a route it is a TCP reset (the suite's
      // runs with a default route).
      t.comment(`known gap: client pod → unrouted ClusterIP: first ${first!.error} in ${first!.ms} ms, then 4 at once: ${JSON.stringify(again.errors)} (max ${again.maxMs} ms); ${icmpNote}`);
      const s2 = await probeMany(c, n2.netns, `${ip}:80`, 5, { concurrency: 1, timeoutMs: 3000 });
      t.ok(s2.failed === 5 && Object.keys(s2.errors).every((e) => IMMEDIATE.test(e)) && s2.maxMs < 500, `node2 itself → ClusterIP (no route to the service CIDR): fails at once, 5 of 5: ${JSON.stringify(s2.errors)}, max ${s2.maxMs} ms (< 500 ms)`);
    },
    rejected: (netns, ip) => packetCount(netns, 'filter', 'PODWIRE-SERVICES-FILTER', (r) => r.includes(`-d ${ip}/32 `) && r.includes('tcp-reset')),
  },

  checkHairpinRules(t, v, svc, pod) {
    const sep = serviceObjects(v, `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`).chains.find((ch) => ch.startsWith('PODWIRE-SEP-'));
    t.ok(sep && rules(v, 'nat', sep).some((r) => r.startsWith(`-s ${pod.ip}/32 `) && / -j PODWIRE-MARK-MASQ$/.test(r)), `node1: ${sep} marks the endpoint's own traffic for masquerade`);
  },

  serviceObjects(v, svc) {
    const o = serviceObjects(v, `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`);
    return { chains: o.chains, rules: o.baseRules };
  },
  chainPerService: true,
  referencesTo,

  resync: {
    breakage: 'a firewall reload flushing PREROUTING',
    entry: 'PREROUTING',
    services: 'PODWIRE-SERVICES',
    jumps: (netns) => inNetns(netns, 'iptables-save', ['-t', 'nat']).split('\n').some((l) => /^-A PREROUTING .*-j PODWIRE-SERVICES/.test(l)),
    flush: (netns) => void inNetns(netns, 'iptables', ['-t', 'nat', '-F', 'PREROUTING']),
  },
};
