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

const pkt = (dst: string, port: number | undefined, protocol = 'TCP', src = '10.244.1.9', fromThisNode = false) => ({ src, dst, ...(port !== undefined ? { port } : {}), protocol, fromThisNode });
const CIDRS = { clusterCidrs: ['10.244.0.0/16'], nodeIPs: ['192.0.2.12'] };

t.test('matchService', async (t) => {
  t.same(matchService({ ports: [port([ep('10.244.1.5')])] }, pkt('10.244.1.5', 80)), { matched: false }, 'not a service IP');
  const two = matchService({ ...CIDRS, ports: [port([ep('10.244.1.5'), ep('10.244.2.6')])] }, pkt('10.96.0.10', 80));
  t.same(two, { matched: true, to: { ip: '10.244.1.5', port: 8080 }, hops: [{ kind: 'service', name: 'default/web', ok: true, detail: '10.96.0.10:80/TCP DNAT to one of 10.244.1.5:8080, 10.244.2.6:8080; following 10.244.1.5:8080' }] });
  const fromNode = matchService({ ...CIDRS, ports: [port([ep('10.244.1.5')])] }, pkt('10.96.0.10', 80, 'TCP', '192.0.2.11', true));
  t.ok(fromNode.matched && /outside the pod network is masqueraded/.test(fromNode.mark ?? ''), 'ClusterIP from outside the pod network: marked');
  const none = matchService({ ports: [port([])] }, pkt('10.96.0.10', 80));
  t.ok(none.matched && none.hops.length === 1 && !none.hops[0]!.ok && /no usable endpoints.*rejects/.test(none.hops[0]!.detail), JSON.stringify(none));
  const wrongPort = matchService({ ports: [port([ep('10.244.1.5')])] }, pkt('10.96.0.10', 81));
  t.ok(wrongPort.matched && !wrongPort.hops[0]!.ok && /no service port 81\/TCP.*80\/TCP/.test(wrongPort.hops[0]!.detail), JSON.stringify(wrongPort));
  const udp = matchService({ ports: [port([ep('10.244.1.5')])] }, pkt('10.96.0.10', 80, 'UDP'));
  t.ok(udp.matched && !udp.hops[0]!.ok, 'the protocol must match too');
  const noPort = matchService({ ports: [port([ep('10.244.1.5')])] }, pkt('10.96.0.10', undefined));
  t.ok(noPort.matched && !noPort.hops[0]!.ok && /give DST:PORT/.test(noPort.hops[0]!.detail), JSON.stringify(noPort));
  const localInternal = matchService({ ports: [{ ...port([ep('10.244.1.5')], { internalPolicyLocal: true }), internalEndpoints: [] }] }, pkt('10.96.0.10', 80));
  t.same(localInternal.matched && localInternal.hops.map((h) => `${h.kind}/${h.ok}`), ['service/true', 'filter/false'], 'internalTrafficPolicy Local without a local endpoint: dropped, not rejected');
  // An external IP under policy Local, from outside the pod network, with no local endpoint: not translated, then dropped.
  const ext = matchService({ ...CIDRS, ports: [{ ...port([ep('10.244.1.5')], { externalIPs: ['192.0.2.50'], externalPolicyLocal: true }), externalEndpoints: [] }] }, pkt('192.0.2.50', 80, 'TCP', '192.0.2.11'));
  t.ok(ext.matched && ext.hops.length === 2 && ext.hops[0]!.ok && /externalTrafficPolicy Local: no endpoint on this node \(1 elsewhere/.test(ext.hops[0]!.detail), JSON.stringify(ext));
  t.ok(ext.matched && ext.hops[1]!.kind === 'filter' && !ext.hops[1]!.ok && /dropped/.test(ext.hops[1]!.detail), 'the filter drop is the broken hop');
});

t.test('matchService: NodePort on this node\'s address', async (t) => {
  const remote = ep('10.244.2.6');
  const local = { ...ep('10.244.1.5'), isLocal: true };
  const np = (over: Partial<ServicePortEndpoints['svc']>, external: EndpointInfo[]): ServicePortEndpoints => ({ ...port([local, remote], { type: 'NodePort', nodePort: 30080, portName: 'http', ...over }), externalEndpoints: external });
  const cluster = matchService({ ...CIDRS, ports: [np({}, [local, remote])] }, pkt('192.0.2.12', 30080, 'TCP', '192.0.2.11'));
  t.same(cluster, {
    matched: true, to: { ip: '10.244.1.5', port: 8080 },
    hops: [{ kind: 'nodeport', name: 'default/web:http', ok: true, detail: 'NodePort 30080/TCP on 192.0.2.12, externalTrafficPolicy Cluster: DNAT to one of 10.244.1.5:8080, 10.244.2.6:8080; following 10.244.1.5:8080' }],
    mark: 'externalTrafficPolicy Cluster: the proxy masquerades NodePort traffic so the replies come back through this node',
  });
  t.same(matchService({ ...CIDRS, ports: [np({}, [local, remote])] }, pkt('192.0.2.99', 30080)), { matched: false }, 'another node\'s address is not matched here');
  t.same(matchService({ ...CIDRS, ports: [np({}, [local, remote])] }, pkt('192.0.2.12', 30081)), { matched: false }, 'no such NodePort');
  t.same(matchService({ ...CIDRS, ports: [np({}, [local, remote])] }, pkt('192.0.2.12', 30080, 'UDP')), { matched: false }, 'the protocol must match');

  const localOnly = matchService({ ...CIDRS, ports: [np({ externalPolicyLocal: true }, [local])] }, pkt('192.0.2.12', 30080, 'TCP', '192.0.2.11'));
  t.ok(localOnly.matched && !localOnly.mark && localOnly.to?.ip === '10.244.1.5', 'Local: only the local endpoint, not masqueraded');
  t.match(localOnly.matched && localOnly.hops[0]!.detail, /externalTrafficPolicy Local: this node's endpoints only, client IP kept: DNAT to 10\.244\.1\.5:8080$/);
  const noLocal = matchService({ ...CIDRS, ports: [np({ externalPolicyLocal: true }, [])] }, pkt('192.0.2.12', 30080, 'TCP', '192.0.2.11'));
  t.same(noLocal.matched && noLocal.hops.map((h) => `${h.kind}/${h.ok}`), ['nodeport/true', 'filter/false']);
  t.notOk(noLocal.matched && noLocal.to, 'not translated');
  const podSrc = matchService({ ...CIDRS, ports: [np({ externalPolicyLocal: true }, [])] }, pkt('192.0.2.12', 30080, 'TCP', '10.244.1.9'));
  t.ok(podSrc.matched && podSrc.to && !podSrc.mark && /source is a pod \(cluster-wide/.test(podSrc.hops[0]!.detail), 'a pod\'s traffic goes cluster-wide under Local');
  const nodeSrc = matchService({ ...CIDRS, ports: [np({ externalPolicyLocal: true }, [])] }, pkt('192.0.2.12', 30080, 'TCP', '192.0.2.12', true));
  t.ok(nodeSrc.matched && nodeSrc.to && /masqueraded/.test(nodeSrc.mark ?? ''), 'the node\'s own traffic goes cluster-wide, masqueraded');
  const empty = matchService({ ...CIDRS, ports: [{ ...np({}, []), allEndpoints: [], internalEndpoints: [] }] }, pkt('192.0.2.12', 30080));
  t.ok(empty.matched && empty.hops[0]!.kind === 'nodeport' && !empty.hops[0]!.ok, 'no endpoints at all: rejected at the nodeport hop');
  t.equal(verdictOf(empty.matched ? empty.hops.map((h) => ({ ...h, node: 'n' })) : []), 'rejected');
  t.equal(verdictOf(noLocal.matched ? noLocal.hops.map((h) => ({ ...h, node: 'n' })) : []), 'dropped');
});

t.test('followPath: a DNAT back to a node already crossed is no loop', async (t) => {
  const answers: Record<string, (r: HopRequest) => ExplainHopAnswer> = {
    node1: (r) => (r.dst === '192.0.2.12' ? { hops: [hop('node1', 'route', r.dst)], next: { node: 'node2', dst: '192.0.2.12', port: 30080, via: 'direct', src: '192.0.2.11' } } : { hops: [hop('node1', 'pod', r.dst)] }),
    node2: () => ({ hops: [hop('node2', 'nodeport', 'default/web'), hop('node2', 'masquerade', '10.244.2.0')], next: { node: 'node1', dst: '10.244.1.5', port: 8080, via: 'vxlan', src: '10.244.2.0' } }),
  };
  const hops = await followPath({ node: 'node1', dst: '192.0.2.12', port: 30080, iif: 'pod' }, async (r) => answers[r.node]!(r));
  t.same(hops.map((h) => `${h.node}/${h.kind}`), ['node1/route', 'node2/nodeport', 'node2/masquerade', 'node1/pod']);
  t.equal(verdictOf(hops), 'delivered');
});
