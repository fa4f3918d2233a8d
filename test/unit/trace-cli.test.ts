// `podwire trace`'s pure core on real trace events (test/fixtures/trace/, parsed by the agent's
// parser as /v1/debug/trace/stop does): the probe's packet picked by its IP id, the hops per node
// in path order, the backend, the verdict (delivered, rejected, dropped with the hop where it was
// lost), agreement with explain, the exit code and the table.
import t from 'tap';
import { parseChainHooks, parseTrace } from '../../src/agent/debug/trace-parse.js';
import { backendOf, buildTraceReport, explainCandidates, explainSnatAddresses, probeIpId, renderTrace, traceExitCode, type NodeTrace, type TraceInput } from '../../src/cli/debug/trace.js';
import type { ExplainHop } from '../../src/cli/debug/explain.js';
import { fixtureText } from '../lib/fixtures.js';

const trace = (node: string, file: string): NodeTrace => ({
  node,
  events: parseTrace(fixtureText(`trace/${file}`), parseChainHooks(fixtureText(`trace/chains-${node}.json`))) as NodeTrace['events'],
  truncated: false,
});
const hop = (node: string, kind: string, name: string, detail = 'd', ok = true): ExplainHop => ({ node, kind, name, detail, ok });
const delivered = [hop('node1', 'pod', '10.244.1.2'), hop('node1', 'route', 'x'), hop('node2', 'pod', 'y')];

function input(sport: number, traces: NodeTrace[], over: Partial<TraceInput> = {}): TraceInput {
  return {
    source: 'pod default/echo-node1-1', destination: 'D', srcNode: 'node1', traces,
    spec: { src: '10.244.1.2', sport, proto: 'TCP' }, probe: { ok: true, ms: 1.5 },
    explainHops: delivered, explainVerdict: 'delivered', ...over,
  };
}

t.test('same node: every rule of the SYN on node1, delivered, agrees', async (t) => {
  const r = buildTraceReport(input(24001, [trace('node1', 'same-node-node1.txt')], { explainHops: [hop('node1', 'pod', 'a'), hop('node1', 'pod', 'b')] }));
  t.equal(r.verdict, 'delivered');
  t.equal(r.agree, true);
  t.equal(r.backend, undefined, 'no DNAT, no backend');
  t.same(r.hops.map((h) => `${h.hook} ${h.chain} ${h.verdict}`), [
    'prerouting svc-nat-prerouting jump svc-services', 'prerouting svc-nat-prerouting accept', 'prerouting svc-filter-prerouting accept',
    'postrouting svc-nat-postrouting return', 'postrouting svc-nat-postrouting accept', 'postrouting pod-masquerade return', 'postrouting pod-masquerade accept',
  ]);
  t.same(Object.keys(r.hops[0]!).sort(), ['chain', 'handle', 'hook', 'node', 'rule', 'table', 'verdict']);
  t.equal(r.hops[0]!.table, 'inet podwire');
  t.ok(r.hops.every((h) => !h.table.includes('podwire-trace')), 'our own marking rule is not a hop');
  t.equal(traceExitCode(r), 0);
});

t.test('cross node: node1 then node2, the same packet (IP id) on both', async (t) => {
  const traces = [trace('node1', 'cross-node-node1.txt'), trace('node2', 'cross-node-node2.txt')];
  t.equal(probeIpId(traces[0], { src: '10.244.1.2', sport: 24002, proto: 'TCP' }), 45989);
  const r = buildTraceReport(input(24002, traces));
  t.equal(r.verdict, 'delivered');
  t.same([...new Set(r.hops.map((h) => h.node))], ['node1', 'node2']);
  t.equal(r.hops.filter((h) => h.node === 'node2').length, 7, 'node2: prerouting and postrouting chains of the SYN only');
});

t.test('ClusterIP: the backend is where the DNAT sent the SYN; agrees when it is one of explain\'s candidates', async (t) => {
  const traces = [trace('node1', 'clusterip-node1.txt'), trace('node2', 'clusterip-node2.txt')];
  t.equal(backendOf(traces, 26633), '10.244.0.3:8080');
  const svc = hop('node1', 'service', 'default/echo:http', '10.96.0.2:80/TCP DNAT to one of 10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:8080; following 10.244.0.2:8080');
  t.same(explainCandidates([svc]), ['10.244.0.2:8080', '10.244.0.3:8080', '10.244.1.2:8080']);
  t.same(explainCandidates([hop('n', 'service', 's', '10.96.0.2:80/TCP DNAT to 10.244.0.3:8080')]), ['10.244.0.3:8080']);
  const r = buildTraceReport(input(24003, traces, { explainHops: [svc, ...delivered] }));
  t.equal(r.backend, '10.244.0.3:8080');
  t.equal(r.agree, true);
  t.same(r.explain.candidates, ['10.244.0.2:8080', '10.244.0.3:8080', '10.244.1.2:8080']);
  t.ok(r.hops.some((h) => h.chain === 'svc-pick-4' && /^dnat /.test(h.rule) && h.handle === 138));
  const odd = buildTraceReport(input(24003, traces, { explainHops: [hop('node1', 'service', 's', '10.96.0.2:80/TCP DNAT to one of 10.244.0.2:8080, 10.244.1.2:8080; following 10.244.0.2:8080'), ...delivered] }));
  t.equal(odd.agree, false);
  t.match(odd.disagreement, /10\.244\.0\.3:8080, which is not among explain's candidates/);
  t.equal(traceExitCode(odd), 1, 'a disagreement is a problem found');
});

t.test('a service without endpoints: the reject rule, rejected; agrees with explain\'s service hop', async (t) => {
  const explainHops = [hop('node1', 'pod', 'a'), hop('node1', 'service', 'default/nobody', '10.96.0.3:80/TCP: no usable endpoints', false)];
  const r = buildTraceReport(input(24004, [trace('node1', 'rejected-node1.txt'), { node: 'node2', events: [], truncated: false }], { probe: { ok: false, ms: null, error: 'ECONNREFUSED' }, explainHops, explainVerdict: 'rejected' }));
  t.equal(r.verdict, 'rejected');
  const last = r.hops.at(-1)!;
  t.match(last, { node: 'node1', hook: 'prerouting', chain: 'svc-reject', rule: 'meta l4proto tcp reject with tcp reset', verdict: 'drop' });
  t.equal(r.agree, true);
  t.same(r.explain, { verdict: 'rejected', brokenAt: { node: 'node1', kind: 'service', name: 'default/nobody' } });
  t.equal(traceExitCode(r), 1);
});

t.test('a deleted route: seen in prerouting only, dropped by the route lookup on node1; explain\'s broken hop is on node1 too', async (t) => {
  const explainHops = [hop('node1', 'pod', 'a'), hop('node1', 'route', '10.244.0.2', 'no route', false)];
  const traces = [trace('node1', 'route-deleted-node1.txt'), { node: 'node2', events: [], truncated: false }];
  const r = buildTraceReport(input(24006, traces, { probe: { ok: false, ms: null, error: 'ENETUNREACH' }, explainHops, explainVerdict: 'dropped' }));
  t.equal(r.verdict, 'dropped');
  const broken = r.hops.at(-1)!;
  t.match(broken, { node: 'node1', hook: 'routing', table: '-', verdict: 'drop' });
  t.match(broken.rule, /last seen in prerouting \(svc-filter-prerouting\).*route lookup dropped it \(probe: ENETUNREACH\)/);
  t.equal(r.agree, true);
  const other = buildTraceReport(input(24006, traces, { probe: { ok: false, ms: null, error: 'ENETUNREACH' }, explainHops: [hop('node2', 'route', 'x', 'd', false)], explainVerdict: 'dropped' }));
  t.match(other.disagreement, /explain breaks on node node2, the probe on node node1/);
  const saysOk = buildTraceReport(input(24006, traces, { probe: { ok: false, ms: null, error: 'ENETUNREACH' } }));
  t.equal(saysOk.agree, false);
  t.match(saysOk.disagreement, /explain says delivered, the probe was dropped/);
});

t.test('NodePort on another node: masqueraded on node1, followed on node2 by its IP id among other marked traffic', async (t) => {
  const masq = hop('node1', 'masquerade', '192.0.2.11', 'SNAT 10.244.1.2 → 192.0.2.11 (eth0\'s address): pod traffic leaving the cluster CIDR');
  t.same(explainSnatAddresses([masq, hop('node2', 'masquerade', 'x', 'SNAT 192.0.2.11 → 10.244.0.1 (cni0)'), masq]), ['192.0.2.11', '10.244.0.1']);
  const traces = [trace('node1', 'nodeport-node1.txt'), trace('node2', 'nodeport-node2.txt')];
  t.ok(traces[0]!.events.some((e) => e.ipId !== 39016 && e.kind === 'packet'), 'node1 also marked its own traffic from 192.0.2.11');
  const r = buildTraceReport(input(24005, traces, { explainHops: [masq, ...delivered] }));
  t.equal(r.verdict, 'delivered');
  t.equal(r.backend, '10.244.1.2:8080', 'node2 DNATed the probe (back to the source pod: a hairpin)');
  t.ok(r.hops.some((h) => h.node === 'node1' && /masquerade/.test(h.rule) && h.verdict === 'accept'));
  t.ok(r.hops.some((h) => h.node === 'node2' && h.chain === 'svc-pick-4-ext'));
  t.ok(r.hops.every((h) => h.chain !== 'svc-filter-output'), 'no event of another packet');
  t.same(r.notes, [], 'node2 saw the masqueraded probe');
  const lost = buildTraceReport(input(24005, [traces[0]!, { node: 'node2', events: [], truncated: false }], { explainHops: [masq, ...delivered] }));
  t.match(lost.notes, [/^node node1 masqueraded the probe .* not one explain predicted \(192\.0\.2\.11\)/]);
  const plain = buildTraceReport(input(24003, [trace('node1', 'clusterip-node1.txt')]));
  t.same(plain.notes, [], "no note without a masquerade");
});

t.test('no event at all on the source node: dropped there', async (t) => {
  const r = buildTraceReport(input(24001, [{ node: 'node1', events: [], truncated: true, ended: 'nft monitor exited (1)' }], { probe: { ok: false, ms: null, error: 'timeout' }, explainVerdict: 'delivered' }));
  t.equal(r.verdict, 'dropped');
  t.match(r.hops[0]!.rule, /never reached node node1's netfilter hooks/);
  t.same(r.notes, ['node node1: more trace events than kept; the probe\'s may be incomplete', 'node node1: nft monitor exited (1)']);
});

t.test('renderTrace: the table, the backend, the probe, the verdict and explain lines', async (t) => {
  const traces = [trace('node1', 'clusterip-node1.txt'), trace('node2', 'clusterip-node2.txt')];
  const r = buildTraceReport(input(24003, traces));
  const text = renderTrace(r, false);
  t.match(text, /^NODE\s+HOOK\s+TABLE\s+CHAIN\s+RULE\s+VERDICT$/m);
  t.match(text, /^node1\s+prerouting\s+inet podwire\s+svc-pick-4\s+dnat ip to .* accept$/m);
  t.match(text, /^backend: 10\.244\.0\.3:8080$/m);
  t.match(text, /^probe from source port 24003: answered in 1\.5 ms$/m);
  t.match(text, /^pod default\/echo-node1-1 → D: delivered$/m);
  t.match(text, /^explain: delivered; agrees$/m);
  t.match(renderTrace(r, true), /^NODE\s+HOOK\s+TABLE\s+CHAIN\s+RULE\s+HANDLE\s+VERDICT$/m);
  t.notMatch(text, /\x1b\[/, 'no colour unless asked');
});
