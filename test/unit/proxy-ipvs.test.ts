// The IPVS mode's pure core (src/proxy/ipvs): the plan (virtual services, real servers, bound
// addresses, classification), the diff against what the kernel holds (ownership, graceful
// removal, partial scope), applyOps convergence, and the nftables objects and transactions
// (goldens). The kernel side runs in the kernel VM (test/vm/). UPDATE_GOLDEN=1 rewrites the goldens.
import t from 'tap';
import fc from 'fast-check';
import { matchesGolden } from '../lib/fixtures.js';
import { ALL, input, type Name } from '../lib/proxy-nft-inputs.js';
import { planIpvs, checkScheduler, type VirtualServer } from '../../src/proxy/ipvs/plan.js';
import { applyOps, asObserved, diffIpvs, type ObservedService } from '../../src/proxy/ipvs/diff.js';
import { ipvsElements, renderIpvsNft } from '../../src/proxy/ipvs/nft.js';
import { fullIpvsTransaction, partialIpvsTransaction, removeIpvsTransaction } from '../../src/proxy/ipvs/nft-sync.js';

const all = () => planIpvs(input(ALL));
const byKey = (list: VirtualServer[]) => new Map(list.map((s) => [s.key, s]));
const ours = { owned: () => true };

t.test('plan: one virtual service per address, port and protocol; classification; bound IPs', async (t) => {
  const skipped: string[] = [];
  const plan = planIpvs(input(ALL), { onSkip: (k, why) => skipped.push(`${k}: ${why}`) });
  const vs = byKey(plan.services);
  t.same([...vs.keys()], [
    'tcp/10.96.0.10:80', 'tcp/10.96.0.20:80', 'tcp/10.96.0.30:80', 'tcp/10.96.0.50:80', 'tcp/192.0.2.10:80',
    'tcp/192.168.56.10:30050', 'tcp/192.168.56.10:30080', 'tcp/198.51.100.10:80',
    'udp/10.96.0.40:53', 'udp/192.0.2.40:53', 'udp/192.168.56.10:30053',
  ], 'ClusterIPs, external and LB IPs, NodePorts on the node IP only (no IPv6, no loopback)');
  t.same(vs.get('tcp/10.96.0.10:80')!.dests.map((d) => `${d.address}:${d.port}/${d.weight}`), ['10.244.1.5:8080/1', '10.244.2.5:8080/1', '10.244.3.5:8080/1']);
  t.equal(vs.get('tcp/10.96.0.10:80')!.classification, 'cluster');
  t.equal(vs.get('tcp/192.168.56.10:30080')!.classification, 'external', 'NodePort, policy Cluster: always masqueraded');
  t.equal(vs.get('tcp/198.51.100.10:80')!.kind, 'external');
  t.equal(vs.get('tcp/10.96.0.30:80')!.persistenceSeconds, 10800, 'ClientIP affinity → persistence');
  t.equal(vs.get('tcp/10.96.0.10:80')!.persistenceSeconds, undefined);
  const local = vs.get('udp/192.168.56.10:30053')!;
  t.equal(local.classification, 'local', 'policy Local: client source kept');
  t.same(local.dests.map((d) => d.address), ['10.244.1.8'], 'policy Local: this node\'s endpoints only');
  t.same(vs.get('udp/10.96.0.40:53')!.dests.map((d) => d.address), ['10.244.1.8', '10.244.2.8'], 'its ClusterIP: every endpoint');
  t.equal(vs.get('tcp/10.96.0.50:80')!.classification, 'reject');
  t.same(vs.get('tcp/10.96.0.50:80')!.dests, [], 'no endpoints: the virtual service exists, empty; nft refuses new connections');
  t.same(plan.boundIps, ['10.96.0.10', '10.96.0.20', '10.96.0.30', '10.96.0.40', '10.96.0.50', '192.0.2.10', '192.0.2.40', '198.51.100.10']);
  t.same(plan.hairpinIps.slice(0, 3), ['10.244.1.5', '10.244.1.6', '10.244.1.8']);
  t.same(skipped, [], 'nothing skipped: web\'s IPv6 ClusterIP is simply not rendered');
  t.same(planIpvs(input(['local'], 'node-c')).services.find((s) => s.key === 'udp/192.168.56.12:30053')?.classification, 'drop',
    'policy Local on a node without a local endpoint: dropped (as kube-proxy), not rejected');
  t.same(planIpvs(input(ALL), { scheduler: 'mh' }).services.map((s) => s.scheduler).filter((s) => s !== 'mh'), []);
  t.throws(() => checkScheduler('fo'), /unknown scheduler "fo": use one of rr, wrr, lc, sh, mh/);
});

t.test('plan: an address two service ports claim goes to the first, the other is reported', async (t) => {
  const base = input(['shop']);
  const twin = structuredClone(base.ports[0]!);
  twin.svc = { ...twin.svc, key: 'default/twin:http/TCP', name: 'twin', clusterIPs: ['10.96.0.99'], externalIPs: ['192.0.2.10'], loadBalancerIPs: [], nodePort: 30099 };
  const skipped: string[] = [];
  const plan = planIpvs({ ...base, ports: [...base.ports, twin] }, { onSkip: (k, why) => skipped.push(`${k}: ${why}`) });
  t.equal(byKey(plan.services).get('tcp/192.0.2.10:80')!.portKey, 'default/shop:http/TCP');
  t.same(skipped, ['default/twin:http/TCP: tcp/192.0.2.10:80 is already service port default/shop:http/TCP\'s: not added for this one']);
  t.ok(byKey(plan.services).has('tcp/10.96.0.99:80'), 'its own addresses still are');
});

t.test('diff: from nothing, adoption after a restart, foreign services left alone', async (t) => {
  const plan = all();
  const first = diffIpvs(plan.services, [], ours);
  t.equal(first.ops.filter((o) => o.op === 'addService').length, plan.services.length);
  t.equal(first.ops.filter((o) => o.op === 'addDest').length, plan.services.reduce((n, s) => n + s.dests.length, 0));
  t.same(first.ops.filter((o) => o.op !== 'addService' && o.op !== 'addDest'), []);
  t.same(diffIpvs(plan.services, asObserved(plan.services), ours).ops, [], 'what is there already: nothing to do (existing connections untouched)');
  const foreign: ObservedService = { proto: 'tcp', address: '10.1.2.3', port: 80, scheduler: 'wlc', dests: [{ address: '10.9.9.9', port: 80, weight: 3 }] };
  const onOurAddress: ObservedService = { ...asObserved([plan.services[0]!])[0]!, scheduler: 'wlc' };
  const owned = (s: ObservedService) => s.address !== '10.1.2.3' && s !== onOurAddress;
  const d = diffIpvs(plan.services, [foreign, onOurAddress, ...asObserved(plan.services.slice(1))], { owned });
  t.same(d.ops, [], 'a foreign virtual service is neither deleted nor edited, even one on an address we want');
});

t.test('diff: graceful removal of TCP real servers, UDP ones at once, services and schedulers', async (t) => {
  const before = all();
  const state = asObserved(before.services);
  const after = planIpvs(input(ALL, 'node-a', (n, list) => (n === 'web' || n === 'local' ? list.filter((e) => e.ip !== '10.244.2.5' && e.ip !== '10.244.2.8') : list)));
  const d = diffIpvs(after.services, state, ours);
  t.same(d.ops.map((o) => `${o.op} ${o.service.key}${'dest' in o ? ` ${o.dest.address}:${o.dest.port}/${o.dest.weight}` : ''}`), [
    'editDest tcp/10.96.0.10:80 10.244.2.5:8080/0',
    'delDest udp/10.96.0.40:53 10.244.2.8:5353/0',
  ], 'TCP: weight 0, kept; UDP: deleted at once');
  t.same(d.draining, ['tcp/10.96.0.10:80 -> 10.244.2.5:8080']);
  const s1 = applyOps(new Map(state.map((s) => [`${s.proto}/${s.address}:${s.port}`, s])), d.ops);
  t.same(diffIpvs(after.services, [...s1.values()], ours).draining, ['tcp/10.96.0.10:80 -> 10.244.2.5:8080'], 'counts unknown (a partial sync): kept');
  const dumped = [...s1.values()].map((s) => ({ ...s, dests: s.dests.map((x) => ({ ...x, activeConns: x.weight ? 1 : 0, inactiveConns: x.weight ? 5 : 1 })) }));
  t.same(diffIpvs(after.services, dumped, ours).ops, [], 'an inactive connection left: still kept');
  const drained = dumped.map((s) => ({ ...s, dests: s.dests.map((x) => (x.weight ? x : { ...x, inactiveConns: 0 })) }));
  t.same(diffIpvs(after.services, drained, ours).ops.map((o) => o.op), ['delDest'], 'no connection left: deleted');
  const back = diffIpvs(before.services, [...s1.values()], ours);
  t.same(back.ops.map((o) => `${o.op} ${'dest' in o ? o.dest.address + '/' + o.dest.weight : ''}`), ['addDest 10.244.2.8/1', 'editDest 10.244.2.5/1'], 'an endpoint back while draining: weight restored, not re-added');
  const gone = diffIpvs(planIpvs(input(ALL.filter((n) => n !== 'shop'))).services, state, ours);
  t.same(gone.ops.map((o) => `${o.op} ${o.service.key}`), [
    'delService tcp/10.96.0.20:80', 'delService tcp/192.0.2.10:80', 'delService tcp/192.168.56.10:30080', 'delService tcp/198.51.100.10:80',
  ], 'a deleted service: its virtual services go');
  const wrr = diffIpvs(planIpvs(input(ALL), { scheduler: 'wrr' }).services, state, ours);
  t.equal(wrr.ops.length, before.services.length);
  t.ok(wrr.ops.every((o) => o.op === 'editService'), 'a scheduler change edits in place (no delete: connections survive)');
  const scoped = diffIpvs(after.services, state, { ...ours, only: new Set(['udp/10.96.0.40:53']) });
  t.same(scoped.ops.map((o) => o.op), ['delDest'], 'a partial diff looks at the given keys only');
});

t.test('diff ∘ applyOps converges from any state to any plan (property)', async (t) => {
  const names: Name[] = ALL;
  const variant = fc.record({
    services: fc.subarray(names),
    drop: fc.subarray(['10.244.1.5', '10.244.2.5', '10.244.3.5', '10.244.2.8', '10.244.1.6']),
    scheduler: fc.constantFrom('rr', 'wrr', 'lc', 'sh', 'mh' as const),
    node: fc.constantFrom('node-a', 'node-b'),
  });
  const planOf = (v: { services: Name[]; drop: string[]; scheduler: 'rr' | 'wrr' | 'lc' | 'sh' | 'mh'; node: string }) =>
    planIpvs(input(v.services, v.node, (_, list) => list.filter((e) => !v.drop.includes(e.ip))), { scheduler: v.scheduler });
  fc.assert(fc.property(variant, variant, (a, b) => {
    const pa = planOf(a);
    const pb = planOf(b);
    let state = applyOps(new Map(), diffIpvs(pa.services, [], ours).ops);
    state = applyOps(state, diffIpvs(pb.services, [...state.values()], ours).ops);
    // What is left to do is the draining only: weight-0 real servers with unknown counts.
    const rest = diffIpvs(pb.services, [...state.values()], ours);
    if (rest.ops.length !== 0) return false;
    const live = [...state.values()].map((s) => ({ ...s, dests: s.dests.filter((d) => d.weight > 0) }));
    const norm = (list: ObservedService[]) => list.map((s) => JSON.stringify({ ...s, dests: [...s.dests].sort((x, y) => (x.address + x.port < y.address + y.port ? -1 : 1)) })).sort();
    return JSON.stringify(norm(live)) === JSON.stringify(norm(asObserved(pb.services)));
  }), { numRuns: 300 });
  t.pass('300 random pairs of states converge');
});

t.test('nft: goldens of a full sync and a partial one; only ipvs- objects', async (t) => {
  const full = fullIpvsTransaction(renderIpvsNft(all()), { chains: ['ipvs-old', 'pod-masquerade', 'svc-services'], maps: ['ipvs-gone'], sets: [] }).text();
  matchesGolden(t, 'proxy-ipvs-full.nft', full);
  t.notMatch(full, /pod-masquerade|svc-services|flush table|delete table/, 'never another owner\'s object, never the table');
  t.match(full, /delete chain inet podwire ipvs-old\n/, 'a stale ipvs- chain goes');
  t.match(full, /add rule inet podwire ipvs-prerouting ip daddr @ipvs-bound-ips meta l4proto \{ tcp, udp, sctp \} drop comment "not a service port"/);
  t.match(full, /10\.96\.0\.50 \. tcp \. 80 : goto ipvs-reject/);
  const next = planIpvs(input(ALL.filter((n) => n !== 'empty'), 'node-a', (n, list) => (n === 'web' ? [] : list)));
  const partial = partialIpvsTransaction('podwire', ipvsElements(all()), ipvsElements(next)).text();
  matchesGolden(t, 'proxy-ipvs-partial.nft', partial);
  t.equal(partialIpvsTransaction('podwire', ipvsElements(all()), ipvsElements(all())).text(), '', 'no change: no transaction');
  t.match(removeIpvsTransaction('podwire', { chains: ['ipvs-prerouting', 'svc-services', 'pod-masquerade'], maps: ['ipvs-services'], sets: ['ipvs-hairpin'] }).text(),
    /^flush chain inet podwire ipvs-prerouting\ndelete map inet podwire ipvs-services\ndelete set inet podwire ipvs-hairpin\ndelete chain inet podwire ipvs-prerouting\n$/);
});
