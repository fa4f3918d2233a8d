// The service proxy's iptables renderer (src/proxy/iptables): golden iptables-restore scripts,
// the packet tracer's verdicts for the usual service paths, and (as root, inside a fresh pw-
// netns) the goldens accepted by `iptables-restore --test --noflush` and applied for real.
// UPDATE_GOLDEN=1 rewrites the goldens.
import t from 'tap';
import { fixtureText, matchesGolden } from '../lib/fixtures.js';
import { findMissingJumps, jumpId, listedChains, serialize, type IptIR } from '../../src/proxy/iptables/ir.js';
import { IPT_CHAINS, renderIptablesIR } from '../../src/proxy/iptables/render.js';
import { PREFIX, chainName, endpointId } from '../../src/proxy/iptables/names.js';
import { tracePacket, type TracePacket, type TraceOptions } from '../../src/proxy/iptables/trace.js';
import { renderIptablesMasq } from '../../src/agent/masq/render.js';
import { netnsRunner, type CommandRunner } from '../../src/exec/runner.js';
import { IptablesProxyBackend } from '../../src/proxy/iptables/backend.js';
import { servicePortEndpoints } from '../../src/proxy/topology.js';
import { freshNetns, isRoot, haveCommand, run } from '../lib/netns.js';
import { iptFixtures as F, type IptCase } from '../lib/proxy-fixtures.js';

const svcKey = (c: IptCase) => F.SERVICES[c]()[0].key;
/** The no-endpoints golden also deletes the chains the service had when it still had an endpoint. */
const STALE_EMPTY = [chainName(PREFIX.svc, svcKey('no-endpoints')), chainName(PREFIX.ext, svcKey('no-endpoints')),
  chainName(PREFIX.sep, endpointId(svcKey('no-endpoints'), '10.244.2.9', 8080))];
const goldenScript = (c: IptCase) => serialize(renderIptablesIR(F.input([c])), {
  missingJumps: 'all', ...(c === 'no-endpoints' ? { staleChains: { nat: STALE_EMPTY } } : {}),
});

t.test('goldens: one per case', async (t) => {
  for (const c of F.CASES) matchesGolden(t, `proxy-iptables-${c}.txt`, goldenScript(c));
});

t.test('ClusterIP with 3 endpoints: kube-proxy\'s statistic cascade', async (t) => {
  const ir = renderIptablesIR(F.input(['clusterip']));
  const svc = chainName(PREFIX.svc, svcKey('clusterip'));
  t.match(svc, /^PODWIRE-SVC-[A-Z2-7]{16}$/);
  t.equal(svc.length, 28, 'exactly iptables\' longest chain name');
  const text = serialize(ir);
  const lb = text.split('\n').filter((l) => l.startsWith(`-A ${svc} `) && l.includes(' -> '));
  t.equal(lb.length, 3);
  t.match(lb[0], /-m statistic --mode random --probability 0\.3333333333 -j PODWIRE-SEP-/);
  t.match(lb[1], /-m statistic --mode random --probability 0\.5000000000 -j PODWIRE-SEP-/);
  t.notMatch(lb[2], /statistic/, 'the last arm is unconditional');
  t.match(text, new RegExp(`-A ${svc} ! -s 10\\.244\\.0\\.0/16 -d 10\\.96\\.0\\.10/32 -p tcp .*--dport 80 -j PODWIRE-MARK-MASQ\n`));
  t.equal(chainName('KUBE-SVC-', 'ns1/svc1:p80tcp'), 'KUBE-SVC-XPGD46QRK7WJZT7O', 'the same hash as kube-proxy');
});

t.test('ruleset shape and ownership', async (t) => {
  const all = F.input(F.CASES);
  const ir = renderIptablesIR(all);
  const text = serialize(ir, { missingJumps: 'all' });
  const declared = text.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]);
  t.ok(declared.every((c) => c.startsWith('PODWIRE-') && c !== 'PODWIRE-POSTRTG' && c.length <= 28), 'only our chains are declared');
  t.notMatch(text, /PODWIRE-POSTRTG|^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /m, 'never the agent chain, never a built-in declaration');
  t.notMatch(text, /fd00|127\.0\.0\.1\//, 'IPv6 and loopback addresses are skipped');
  t.match(text, /-A PODWIRE-SERVICES ! -d 127\.0\.0\.0\/8 -m comment --comment "[^"]+" -m addrtype --dst-type LOCAL -j PODWIRE-NODEPORTS\n-A PODWIRE-NODEPORTS /,
    'the NodePort tail is the last rule of PODWIRE-SERVICES');
  t.match(text, /-A PODWIRE-POSTROUTING -m mark ! --mark 0x4000\/0x4000 -j RETURN\n-A PODWIRE-POSTROUTING -j MARK --xor-mark 0x4000\n.*-j MASQUERADE --random-fully\n/);
  t.equal(text.split('\n').filter((l) => l.startsWith('-I ')).length, 6, 'three nat jumps, three filter jumps');
  t.notMatch(serialize(ir), /^-I /m, 'no jumps unless the caller says they are missing');
  const onlyPrerouting = serialize(ir, { missingJumps: ['nat PREROUTING -> PODWIRE-SERVICES'] });
  t.same(onlyPrerouting.split('\n').filter((l) => l.startsWith('-I ')), ['-I PREROUTING 1 -m comment --comment "podwire service portals" -j PODWIRE-SERVICES']);
  const shuffled = F.input(F.CASES);
  shuffled.ports.reverse();
  for (const p of shuffled.ports) p.allEndpoints.reverse();
  t.equal(serialize(renderIptablesIR(shuffled), { missingJumps: 'all' }), text, 'deterministic whatever the input order');
  const skipped: string[] = [];
  renderIptablesIR({ ...F.input([]), ports: [F.input(['clusterip']).ports[0]].map((p) => ({ ...p, svc: { ...p.svc, clusterIPs: ['fd00:96::1'] } })) },
    { onSkip: (k, why) => skipped.push(`${k}: ${why}`) });
  t.same(skipped, ['default/web:http/TCP: no IPv4 ClusterIP (IPv6 is not rendered yet)']);
});

t.test('serialize refuses what is not ours or not valid', async (t) => {
  const ir = renderIptablesIR(F.input(['clusterip']));
  t.throws(() => serialize(ir, { staleChains: { nat: ['PODWIRE-POSTRTG'] } }), { code: 'EINVAL' }, 'the agent chain is never deleted');
  t.throws(() => serialize(ir, { staleChains: { nat: ['KUBE-SERVICES'] } }), { code: 'EINVAL' }, 'nor someone else\'s');
  t.throws(() => serialize(ir, { staleChains: { nat: [IPT_CHAINS.services] } }), { code: 'EINVAL' }, 'nor one still rendered');
  const bad = (edit: (ir: IptIR) => void) => {
    const copy = structuredClone(ir);
    edit(copy);
    return () => serialize(copy);
  };
  t.throws(bad((x) => x.tables.nat.chains.push({ name: 'POSTROUTING', rules: [] })), { code: 'EINVAL' }, 'a built-in chain is never declared');
  t.throws(bad((x) => x.tables.nat.chains[0].rules.push({ matches: [], target: { kind: 'jump', chain: 'PODWIRE-NOPE' } })), { code: 'EINVAL' });
  t.throws(bad((x) => x.tables.nat.chains[0].rules.push({ matches: [{ kind: 'comment', text: 'a" -j DROP "' }], target: { kind: 'return' } })), { code: 'EINVAL' });
  t.throws(bad((x) => x.tables.nat.chains[0].rules.push({ matches: [{ kind: 'dport', port: 80 }], target: { kind: 'return' } })), { code: 'EINVAL' }, '--dport needs -p');
  t.throws(bad((x) => x.tables.nat.chains[0].rules.push({ matches: [{ kind: 'destination', cidr: '10.0.0.1; rm' }], target: { kind: 'return' } })), { code: 'EINVAL' });
  t.throws(() => renderIptablesIR({ ...F.input(['clusterip']), clusterCidrs: ['10.244.0.0/16', '10.245.0.0/16'] }), { code: 'EINVAL' });
  t.throws(() => renderIptablesIR({ ...F.input([]), ports: [{ ...F.input(['clusterip']).ports[0], svc: { ...F.SERVICES.clusterip()[0], clusterIPs: ['10.96.0.1 -j ACCEPT'] } }] }), { code: 'EINVAL' });
});

t.test('findMissingJumps and listedChains read an iptables-save listing', async (t) => {
  const ir = renderIptablesIR(F.input(['clusterip']));
  const nat = ['*nat', ':PREROUTING ACCEPT [0:0]', ':PODWIRE-POSTRTG - [0:0]', ':PODWIRE-SEP-OLD - [0:0]',
    '-A PREROUTING -m comment --comment "podwire service portals" -j PODWIRE-SERVICES', '-A POSTROUTING -j PODWIRE-POSTRTG', 'COMMIT'].join('\n');
  t.same(findMissingJumps(ir, { nat }), ['nat OUTPUT -> PODWIRE-SERVICES', 'nat POSTROUTING -> PODWIRE-POSTROUTING',
    'filter INPUT -> PODWIRE-SERVICES-FILTER', 'filter FORWARD -> PODWIRE-SERVICES-FILTER', 'filter OUTPUT -> PODWIRE-SERVICES-FILTER']);
  t.same(listedChains(nat), ['PODWIRE-SEP-OLD'], 'the agent chain is not ours');
  t.equal(jumpId('nat', ir.tables.nat.jumps[0]), 'nat PREROUTING -> PODWIRE-SERVICES');
});

// ---------------------------------------------------------------------------------------------
// the tracer

const POD_A = '10.244.1.7';
const OUTSIDE = '192.168.56.1';
const tcp = (srcIp: string, dstIp: string, dstPort: number, node = 'node-a', hook: TracePacket['hook'] = 'prerouting'): TracePacket => ({
  srcIp, dstIp, protocol: 'TCP', dstPort, hook, localAddresses: F.localAddresses(node),
});
const udp = (srcIp: string, dstIp: string, dstPort: number, node: string, hook: TracePacket['hook'] = 'prerouting'): TracePacket => ({
  ...tcp(srcIp, dstIp, dstPort, node, hook), protocol: 'UDP',
});
const trace = (node: string, pkt: TracePacket, opts?: TraceOptions) => tracePacket(renderIptablesIR(F.input(F.CASES, node)), pkt, opts);
const WEB_EPS = ['10.244.1.5:8080', '10.244.2.5:8080', '10.244.3.5:8080'];

t.test('trace: pod → ClusterIP picks among 3 endpoints, no masquerade', async (t) => {
  const r = trace('node-a', tcp(POD_A, '10.96.0.10', 80));
  t.equal(r.verdict, 'dnat');
  t.same(r.candidates, WEB_EPS);
  t.equal(r.masquerade, false);
  t.same(r.path.slice(0, 3), ['nat:PREROUTING', IPT_CHAINS.services, chainName(PREFIX.svc, svcKey('clusterip'))]);
  t.ok(r.path.includes('filter:FORWARD') && r.path.includes('nat:POSTROUTING'), 'forwarded to the pod');
  const picks = [0, 1, 2, 3].map((randomPick) => trace('node-a', tcp(POD_A, '10.96.0.10', 80), { randomPick }).dnatTo);
  t.same(picks, [...WEB_EPS, WEB_EPS[0]], 'randomPick selects each arm, modulo the arms');
  t.equal(trace('node-a', tcp(POD_A, '10.96.0.10', 81)).verdict, 'accept', 'another port: untouched');
});

t.test('trace: node → ClusterIP is masqueraded', async (t) => {
  const r = trace('node-a', tcp(F.NODE_IP['node-a'], '10.96.0.10', 80, 'node-a', 'output'), { randomPick: 1 });
  t.equal(r.verdict, 'dnat');
  t.equal(r.dnatTo, '10.244.2.5:8080');
  t.equal(r.masquerade, true);
  t.same(r.path.slice(0, 2), ['nat:OUTPUT', IPT_CHAINS.services]);
});

t.test('trace: outside → NodePort / external IP / LB IP', async (t) => {
  for (const [dst, port] of [[F.NODE_IP['node-a'], 30080], ['192.0.2.10', 80], ['198.51.100.10', 80]] as const) {
    const r = trace('node-a', tcp(OUTSIDE, dst, port), { randomPick: 2 });
    t.same([r.verdict, r.dnatTo, r.masquerade], ['dnat', '10.244.3.5:8080', true], `${dst}:${port} Cluster policy: any endpoint, masqueraded`);
    t.same(r.candidates, WEB_EPS);
    t.ok(r.path.includes(chainName(PREFIX.ext, svcKey('nodeport-lb'))), 'through EXT');
  }
  t.equal(trace('node-a', tcp(OUTSIDE, F.NODE_IP['node-a'], 30081)).verdict, 'accept', 'no such NodePort: untouched');
  t.equal(trace('node-a', tcp('127.0.0.1', '127.0.0.1', 30080, 'node-a', 'output')).verdict, 'accept', 'no NodePorts on loopback');
});

t.test('trace: Local external policy', async (t) => {
  for (const randomPick of [0, 1]) {
    const r = trace('node-a', udp(OUTSIDE, F.NODE_IP['node-a'], 30053, 'node-a'), { randomPick });
    t.same([r.verdict, r.dnatTo, r.masquerade], ['dnat', '10.244.1.8:5353', false], 'only the local endpoint, client IP kept');
    t.ok(r.path.includes(chainName(PREFIX.svl, svcKey('local-policy'))));
  }
  const ext = trace('node-a', udp(OUTSIDE, '192.0.2.40', 53, 'node-a'));
  t.same([ext.verdict, ext.dnatTo, ext.masquerade], ['dnat', '10.244.1.8:5353', false], 'external IP too');
  t.same(trace('node-c', udp(OUTSIDE, F.NODE_IP['node-c'], 30053, 'node-c')).verdict, 'drop', 'no local endpoint: NodePort dropped');
  t.same(trace('node-c', udp(OUTSIDE, '192.0.2.40', 53, 'node-c')).verdict, 'drop', 'no local endpoint: external IP dropped');
  const pod = trace('node-c', udp('10.244.3.7', '192.0.2.40', 53, 'node-c'), { randomPick: 1 });
  t.same([pod.verdict, pod.dnatTo, pod.masquerade], ['dnat', '10.244.2.8:5353', false], 'a pod goes cluster-wide, unmasqueraded');
  t.same(pod.candidates, ['10.244.1.8:5353', '10.244.2.8:5353']);
  const node = trace('node-c', udp(F.NODE_IP['node-c'], '192.0.2.40', 53, 'node-c', 'output'));
  t.same([node.verdict, node.masquerade], ['dnat', true], 'the node itself goes cluster-wide, masqueraded');
  const cip = trace('node-c', udp(OUTSIDE, '10.96.0.40', 53, 'node-c'));
  t.same([cip.verdict, cip.masquerade], ['dnat', true], 'the ClusterIP keeps the Cluster internal policy');
});

t.test('trace: Local internal policy', async (t) => {
  const info = F.service('inner', { clusterIPs: ['10.96.0.60'], internalPolicyLocal: true });
  const render = (node: string) => renderIptablesIR({
    ...F.input([], node),
    ports: [servicePortEndpoints(info, F.endpoints(['10.244.2.6@node-b']).map((e) => ({ ...e, isLocal: e.nodeName === node })))],
  });
  const onB = tracePacket(render('node-b'), tcp('10.244.2.7', '10.96.0.60', 80, 'node-b'));
  t.same([onB.verdict, onB.dnatTo, onB.masquerade], ['dnat', '10.244.2.6:8080', false], 'the local endpoint');
  t.ok(onB.path.includes(chainName(PREFIX.svl, info.key)), 'through SVL');
  const fromNodeB = tracePacket(render('node-b'), tcp(F.NODE_IP['node-b'], '10.96.0.60', 80, 'node-b', 'output'));
  t.equal(fromNodeB.masquerade, true, 'the node is still masqueraded');
  t.equal(tracePacket(render('node-a'), tcp(POD_A, '10.96.0.60', 80)).verdict, 'drop', 'no local endpoint: dropped, not rejected');
});

t.test('trace: no endpoints → reject', async (t) => {
  for (const [src, dst, port, hook] of [[POD_A, '10.96.0.50', 80, 'prerouting'], [OUTSIDE, F.NODE_IP['node-a'], 30050, 'prerouting'],
    [OUTSIDE, '192.0.2.50', 80, 'prerouting'], [F.NODE_IP['node-a'], '10.96.0.50', 80, 'output']] as const) {
    const r = trace('node-a', tcp(src, dst, port, 'node-a', hook));
    t.equal(r.verdict, 'reject', `${src} → ${dst}:${port}`);
    t.ok(r.path.includes(IPT_CHAINS.servicesFilter));
  }
  const text = fixtureText('proxy-iptables-no-endpoints.txt');
  t.match(text, /-d 10\.96\.0\.50\/32 -p tcp -m comment --comment "default\/empty:http\/TCP has no endpoints" -m tcp --dport 80 -j REJECT --reject-with tcp-reset/);
});

t.test('trace: hairpin and affinity', async (t) => {
  const hairpin = trace('node-a', tcp('10.244.1.5', '10.96.0.10', 80), { randomPick: 0 });
  t.same([hairpin.dnatTo, hairpin.masquerade], ['10.244.1.5:8080', true], 'a pod reaching itself is masqueraded');
  t.equal(trace('node-a', tcp('10.244.1.5', '10.96.0.10', 80), { randomPick: 1 }).masquerade, false, 'reaching another pod is not');
  const sep = chainName(PREFIX.sep, endpointId(svcKey('affinity'), '10.244.2.6', 8080));
  for (const randomPick of [0, 1]) {
    const r = trace('node-a', tcp(POD_A, '10.96.0.30', 80), { randomPick, affinity: { [sep]: [POD_A] } });
    t.same([r.dnatTo, r.candidates], ['10.244.2.6:8080', undefined], 'a recorded client goes back to its endpoint');
  }
  const fresh = trace('node-a', tcp(POD_A, '10.96.0.30', 80), { randomPick: 0 });
  t.same(fresh.candidates, ['10.244.1.6:8080', '10.244.2.6:8080'], 'a new client is balanced');
});

// ---------------------------------------------------------------------------------------------
// the real iptables-restore, in a fresh pw- netns (never the root netns)


const skip = !isRoot ? 'needs root for a netns' : !haveCommand('iptables-restore') ? 'iptables-restore not installed' : false;
const save = (ns: string, table: string) => run(ns, 'iptables-save', ['-t', table]);

t.test('iptables-restore --test --noflush accepts each golden', { skip, timeout: 60_000 }, async (t) => {
  for (const c of F.CASES) {
    const ns = freshNetns(t, 'iptc');
    const script = fixtureText(`proxy-iptables-${c}.txt`);
    t.doesNotThrow(() => run(ns, 'iptables-restore', ['--test', '--noflush', '-w', '5'], script), `${c}: --test`);
    // --test (nf_tables backend) does not validate hooks, e.g. MASQUERADE reachable from
    // PREROUTING passes it: applying in the throwaway netns does.
    t.doesNotThrow(() => run(ns, 'iptables-restore', ['--noflush', '-w', '5'], script), `${c}: applied`);
    const nat = save(ns, 'nat');
    for (const chain of renderIptablesIR(F.input([c])).tables.nat.chains) t.match(nat, `:${chain.name} - `, `${c}: ${chain.name} exists`);
    for (const stale of c === 'no-endpoints' ? STALE_EMPTY : []) t.notMatch(nat, stale, `${c}: ${stale} deleted`);
  }
});

t.test('resync in a netns: jumps once, stale chains deleted, the agent chain untouched', { skip, timeout: 60_000 }, async (t) => {
  const ns = freshNetns(t, 'iptr');
  const restore = (script: string) => run(ns, 'iptables-restore', ['--noflush', '-w', '5'], script);
  restore(renderIptablesMasq({ clusterCidrs: [F.CLUSTER_CIDR], podCidr: '10.244.1.0/24' }, 4, { jumpMissing: true })!);
  const agentBefore = save(ns, 'nat').split('\n').filter((l) => l.includes('PODWIRE-POSTRTG'));
  const sync = (ir: IptIR) => {
    const listed = { nat: save(ns, 'nat'), filter: save(ns, 'filter') };
    const keep = (table: 'nat' | 'filter') => new Set(ir.tables[table].chains.map((c) => c.name));
    const stale = { nat: listedChains(listed.nat).filter((c) => !keep('nat').has(c)), filter: listedChains(listed.filter).filter((c) => !keep('filter').has(c)) };
    restore(serialize(ir, { missingJumps: findMissingJumps(ir, listed), staleChains: stale }));
  };
  const full = renderIptablesIR(F.input(F.CASES));
  sync(full);
  sync(full);
  const nat = save(ns, 'nat');
  t.equal(nat.split('\n').filter((l) => / -j PODWIRE-SERVICES$/.test(l)).length, 2, 'PREROUTING and OUTPUT jump once each');
  t.equal(save(ns, 'filter').split('\n').filter((l) => l.endsWith('-j PODWIRE-SERVICES-FILTER')).length, 3);
  const shopChains = [PREFIX.svc, PREFIX.ext].map((p) => chainName(p, svcKey('nodeport-lb')));
  for (const c of shopChains) t.match(nat, `:${c} `);
  sync(renderIptablesIR(F.input(F.CASES.filter((c) => c !== 'nodeport-lb'))));
  const after = save(ns, 'nat');
  for (const c of shopChains) t.notMatch(after, c, `${c} deleted with its service`);
  t.same(after.split('\n').filter((l) => l.includes('PODWIRE-POSTRTG')), agentBefore, 'the agent chain and its jump are untouched');
});

t.test('the backend in a netns: partial syncs write only changed chains and converge to a full sync; a full sync repairs a flushed chain', { skip, timeout: 60_000 }, async (t) => {
  const [ns, fresh] = [freshNetns(t, 'iptb'), freshNetns(t, 'iptf')];
  const scripts: string[] = [];
  const inner = netnsRunner(ns);
  const recording: CommandRunner = { run: (cmd, args, input) => (cmd === 'iptables-restore' && input !== undefined && scripts.push(input), inner.run(cmd, args, input)) };
  const backend = new IptablesProxyBackend(recording);
  const ours = (n: string, table: string) => save(n, table).split('\n').filter((l) => /PODWIRE-(?!POSTRTG)/.test(l) && !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')).sort();
  const all = F.input(F.CASES);
  t.equal(backend.sync(all, undefined).scope, 'full');
  // one endpoint of shop moves: its chains and the endpoint's are rewritten, nothing else
  const moved = F.input(F.CASES, 'node-a', (c, eps) => (c === 'nodeport-lb' ? eps.map((e) => (e.ip === '10.244.2.5' ? { ...e, ip: '10.244.2.9' } : e)) : eps));
  const shopKey = svcKey('nodeport-lb');
  const r1 = backend.sync(moved, new Set([shopKey]));
  t.equal(r1.scope, 'partial');
  const declared = (s: string) => s.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]);
  const oldSep = chainName(PREFIX.sep, endpointId(shopKey, '10.244.2.5', 8080));
  const newSep = chainName(PREFIX.sep, endpointId(shopKey, '10.244.2.9', 8080));
  t.same(declared(scripts.at(-1)!).sort(), [chainName(PREFIX.svc, shopKey), newSep, oldSep].sort(), 'declared: shop\'s service chain (its -EXT chain only jumps there: unchanged), the new endpoint chain, the old one (to delete)');
  t.match(scripts.at(-1)!, new RegExp(`-X ${oldSep}\\n`), 'the gone endpoint\'s chain deleted');
  t.notMatch(scripts.at(-1)!, /PODWIRE-SERVICES|-I /, 'the dispatch chains and the built-in jumps untouched');
  t.equal(backend.sync(moved, new Set([shopKey])).bytes, 0, 'the same again: nothing written');
  // a service goes: its chains deleted, the dispatch rewritten
  const fewer = F.input(F.CASES.filter((c) => c !== 'nodeport-lb'), 'node-a');
  t.equal(backend.sync(fewer, new Set([shopKey])).scope, 'partial');
  t.match(scripts.at(-1)!, new RegExp(`-X ${chainName(PREFIX.svc, shopKey)}\\n`));
  new IptablesProxyBackend(netnsRunner(fresh)).sync(fewer, undefined);
  t.same(ours(ns, 'nat'), ours(fresh, 'nat'), 'nat: the partial syncs\' kernel state equals one full sync\'s');
  t.same(ours(ns, 'filter'), ours(fresh, 'filter'), 'filter too');
  // someone flushes one of our chains: a periodic (full) resync sees it and writes again
  run(ns, 'iptables', ['-t', 'nat', '-F', 'PODWIRE-SERVICES']);
  t.ok(backend.sync(fewer, undefined).bytes > 0, 'full sync: a flushed chain is rewritten');
  t.same(ours(ns, 'nat'), ours(fresh, 'nat'), 'and the state is whole again');
  t.equal(backend.sync(fewer, undefined).bytes, 0, 'a full sync with nothing to repair writes nothing');
});
