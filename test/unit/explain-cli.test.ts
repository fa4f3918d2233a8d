// `podwire explain`'s pure parts: following the packet from node to node (loop guard, a
// continuation without a node), the verdict, the exit code and the table; and the agent's service
// hop (explain-service.ts): DNAT candidates, no endpoints, no such port, no port given.
import t from 'tap';
import { explainExitCode, followPath, MAX_NODES, renderExplain, verdictOf, type ExplainHop, type ExplainHopAnswer, type HopRequest } from '../../src/cli/debug/explain.js';
import { matchService } from '../../src/agent/debug/explain-service.js';
import type { EndpointInfo, ServicePortEndpoints } from '../../src/proxy/types.js';

const hop = (node: string, kind: string, name: string, ok = true, detail = 'd'): ExplainHop => ({ node, kind, name, detail, ok });

t.test('followPath asks SRC node then each next node with iif underlay', async (t) => {
  const asked: HopRequest[] = [];
  const answers: Record<string, ExplainHopAnswer> = {
    node1: { hops: [hop('node1', 'pod', '10.244.1.2'), hop('node1', 'vxlan', 'node2')], next: { node: 'node2', dst: '10.244.2.3', port: 8080, via: 'vxlan' } },
    node2: { hops: [hop('node2', 'underlay', 'podwire.1'), hop('node2', 'route', '10.244.3.4')], next: { node: 'node3', dst: '10.244.3.4', port: 8080, via: 'direct', src: '10.244.2.0' } },
    node3: { hops: [hop('node3', 'underlay', 'eth0'), hop('node3', 'pod', '10.244.3.4')] },
  };
  const hops = await followPath({ node: 'node1', dst: '10.96.0.10', port: 80, iif: 'pod' }, async (r) => (asked.push(r), answers[r.node]!));
  t.same(asked, [
    { node: 'node1', dst: '10.96.0.10', port: 80, iif: 'pod' },
    { node: 'node2', dst: '10.244.2.3', port: 8080, iif: 'underlay', via: 'vxlan' },
    { node: 'node3', dst: '10.244.3.4', port: 8080, iif: 'underlay', via: 'direct', src: '10.244.2.0' },
  ], 'a source chosen on the way is passed on');
  t.same(hops.map((h) => `${h.node}/${h.kind}`), ['node1/pod', 'node1/vxlan', 'node2/underlay', 'node2/route', 'node3/underlay', 'node3/pod']);
  t.equal(verdictOf(hops), 'delivered');
});

t.test('followPath stops at a broken hop, a loop, an unknown next node and after MAX_NODES', async (t) => {
  const broken = await followPath({ node: 'node1', dst: 'x', iif: 'pod' }, async () => ({ hops: [hop('node1', 'route', 'x', false)], next: { node: 'node2', dst: 'x', via: 'direct' } }));
  t.equal(broken.length, 1, 'a broken answer is not followed');

  const loop = await followPath({ node: 'node1', dst: 'x', iif: 'pod' }, async (r) => ({ hops: [hop(r.node, 'route', 'x')], next: { node: r.node === 'node1' ? 'node2' : 'node1', dst: 'x', via: 'direct' } }));
  t.same(loop.map((h) => `${h.node}/${h.kind}/${h.ok}`), ['node1/route/true', 'node2/route/true', 'node2/loop/false']);
  t.match(loop[2]!.detail, /node1 → node2 → node1/);
  t.equal(verdictOf(loop), 'dropped');

  const nowhere = await followPath({ node: 'node1', dst: 'x', iif: 'local' }, async () => ({ hops: [hop('node1', 'route', 'x')], next: { dst: '192.0.2.9', via: 'direct' } }));
  t.same(nowhere.map((h) => `${h.kind}/${h.ok}`), ['route/true', 'next/false']);

  let n = 0;
  const long = await followPath({ node: 'n0', dst: 'x', iif: 'pod' }, async (r) => (n++, { hops: [hop(r.node, 'route', 'x')], next: { node: `n${n}`, dst: 'x', via: 'direct' } }));
  t.equal(n, MAX_NODES, 'asks at most MAX_NODES agents');
  t.equal(long.at(-1)!.kind, 'loop');
  t.equal(long.at(-1)!.ok, false);
});

t.test('verdict, exit code and table', async (t) => {
  t.equal(verdictOf([hop('a', 'pod', 'p'), hop('a', 'service', 's', false)]), 'rejected');
  t.equal(verdictOf([hop('a', 'pod', 'p'), hop('a', 'route', 'r', false), hop('a', 'service', 's', false)]), 'dropped', 'the first broken hop decides');
  t.equal(verdictOf([]), 'dropped', 'no hops is no delivery');
  t.equal(explainExitCode({ verdict: 'delivered' }), 0);
  t.equal(explainExitCode({ verdict: 'dropped' }), 1);
  t.equal(explainExitCode({ verdict: 'rejected' }), 1);
  const text = renderExplain({ source: 'pod default/a', destination: 'pod default/b', verdict: 'dropped', hops: [hop('node1', 'pod', '10.244.1.2', true, 'eth0 in /run/netns/x'), hop('node1', 'route', '10.244.2.3', false, 'no route (EHOSTUNREACH)')] });
  t.equal(text, [
    'NODE    KIND    NAME         DETAIL                    OK',
    'node1   pod     10.244.1.2   eth0 in /run/netns/x      ok',
    'node1   route   10.244.2.3   no route (EHOSTUNREACH)   BROKEN',
    'pod default/a → pod default/b: dropped at route 10.244.2.3 on node node1: no route (EHOSTUNREACH)',
  ].join('\n'));
});

const ep = (ip: string, ready = true): EndpointInfo => ({ ip, port: 8080, isLocal: false, ready, serving: ready, terminating: false });
const port = (eps: EndpointInfo[], over: Partial<ServicePortEndpoints['svc']> = {}): ServicePortEndpoints => ({
  svc: { key: 'default/web:/TCP', namespace: 'default', name: 'web', portName: '', protocol: 'TCP', type: 'ClusterIP', clusterIPs: ['10.96.0.10'], port: 80, externalIPs: [], loadBalancerIPs: [], externalPolicyLocal: false, internalPolicyLocal: false, ...over },
  internalEndpoints: eps, externalEndpoints: eps, allEndpoints: eps,
});

t.test('matchService', async (t) => {
  t.same(matchService({ ports: [port([ep('10.244.1.5')])] }, '10.244.1.5', 80, 'TCP'), { matched: false }, 'not a service IP');
  const two = matchService({ ports: [port([ep('10.244.1.5'), ep('10.244.2.6')])] }, '10.96.0.10', 80, 'TCP');
  t.same(two, { matched: true, to: { ip: '10.244.1.5', port: 8080 }, hop: { kind: 'service', name: 'default/web', ok: true, detail: '10.96.0.10:80/TCP DNAT to one of 10.244.1.5:8080, 10.244.2.6:8080; following 10.244.1.5:8080' } });
  const none = matchService({ ports: [port([])] }, '10.96.0.10', 80, 'TCP');
  t.ok(none.matched && !none.hop.ok && /no usable endpoints.*rejects/.test(none.hop.detail), JSON.stringify(none));
  const wrongPort = matchService({ ports: [port([ep('10.244.1.5')])] }, '10.96.0.10', 81, 'TCP');
  t.ok(wrongPort.matched && !wrongPort.hop.ok && /no service port 81\/TCP.*80\/TCP/.test(wrongPort.hop.detail), JSON.stringify(wrongPort));
  const udp = matchService({ ports: [port([ep('10.244.1.5')])] }, '10.96.0.10', 80, 'UDP');
  t.ok(udp.matched && !udp.hop.ok, 'the protocol must match too');
  const noPort = matchService({ ports: [port([ep('10.244.1.5')])] }, '10.96.0.10', undefined, 'TCP');
  t.ok(noPort.matched && !noPort.hop.ok && /give DST:PORT/.test(noPort.hop.detail), JSON.stringify(noPort));
  const ext = matchService({ ports: [{ ...port([ep('10.244.1.5')], { externalIPs: ['192.0.2.50'] }), externalEndpoints: [] }] }, '192.0.2.50', 80, 'TCP');
  t.ok(ext.matched && !ext.hop.ok && /externalTrafficPolicy/.test(ext.hop.detail), 'external traffic uses the external endpoints');
});
