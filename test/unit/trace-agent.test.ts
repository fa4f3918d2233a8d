// `podwire trace`'s agent side, pure: the parser of `nft -a monitor trace` output (fixtures
// captured from a 2-node lab, test/fixtures/trace/: a probe from pod 10.244.1.2 on node1, in the
// agent's own trace table), the chain list's hooks, the trace table's text, the routes' body checks.
import t from 'tap';
import { chainKey, parseChainHooks, parsePacketFields, parseTrace, parseTraceLine } from '../../src/agent/debug/trace-parse.js';
import { deleteTraceTableText, fenceText, traceTableName, traceTablesIn, traceTableText } from '../../src/agent/debug/trace-table.js';
import { removeStaleTraceTables, validateTraceProbe, validateTraceStart } from '../../src/agent/debug/trace.js';
import { fixtureText } from '../lib/fixtures.js';

const hooks1 = () => parseChainHooks(fixtureText('trace/chains-node1.json'));

t.test('parseTraceLine: packet, rule with handle, unknown rule, policy; other lines are not events', async (t) => {
  const text = fixtureText('trace/clusterip-node1.txt');
  const lines = text.split('\n');
  const packet = parseTraceLine(lines.find((l) => / svc-nat-prerouting packet: /.test(l))!);
  t.match(packet, { kind: 'packet', family: 'inet', table: 'podwire', chain: 'svc-nat-prerouting', packet: { iif: 'cni0', saddr: '10.244.1.2', daddr: '10.96.0.2', ipId: 26633, protocol: 'tcp', sport: 24003, dport: 80, tcpFlags: 'syn' } });
  const dnat = parseTraceLine(lines.find((l) => / svc-pick-4 rule dnat /.test(l))!);
  t.same(dnat, { kind: 'rule', traceId: '45906dda', family: 'inet', table: 'podwire', chain: 'svc-pick-4', rule: 'dnat ip to ip daddr . tcp dport . numgen random mod 4 map @svc-eps-tcp-4', handle: 138, verdict: 'accept' });
  t.same(parseTraceLine('trace id d1fc1db5 inet podwire-trace pre unknown rule handle 6 (verdict continue)'), { kind: 'rule', traceId: 'd1fc1db5', family: 'inet', table: 'podwire-trace', chain: 'pre', rule: 'unknown rule handle 6 (added after the trace started)', handle: 6, verdict: 'continue' });
  t.same(parseTraceLine('trace id 7cb6677f inet podwire svc-filter-prerouting policy accept '), { kind: 'policy', traceId: '7cb6677f', family: 'inet', table: 'podwire', chain: 'svc-filter-prerouting', verdict: 'accept' });
  t.match(parseTraceLine('trace id 7cb6677f inet podwire svc-services rule ip daddr . meta l4proto . th dport vmap @svc-ips # handle 109 (verdict goto svc-pick-4)'), { verdict: 'goto svc-pick-4', handle: 109 });
  t.equal(parseTraceLine('add chain inet podwire-trace-x fence-1 # handle 5'), undefined);
  t.equal(parseTraceLine('# new generation 7 by process 6015 (nft)'), undefined);
  t.equal(parseTraceLine(''), undefined);
  t.same(parsePacketFields('iif "eth0" oif "podwire.1" ip saddr 192.0.2.11 ip daddr 10.244.1.2 ip id 39016 ip protocol udp udp sport 53 udp dport 40000'), { iif: 'eth0', oif: 'podwire.1', saddr: '192.0.2.11', daddr: '10.244.1.2', ipId: 39016, protocol: 'udp', sport: 53, dport: 40000 });
});

t.test('parseChainHooks: base chains only', async (t) => {
  const h = hooks1();
  t.equal(h.get(chainKey('inet', 'podwire', 'svc-nat-prerouting')), 'prerouting');
  t.equal(h.get(chainKey('inet', 'podwire', 'pod-masquerade')), 'postrouting');
  t.equal(h.get(chainKey('inet', 'podwire', 'svc-services')), undefined, 'a regular chain has no hook of its own');
  t.throws(() => parseChainHooks('{"x": 1}'), /no "nftables" array/);
  t.throws(() => parseChainHooks('not json'));
});

t.test('parseTrace: each event tied to its packet (IP id across trace ids) and its base chain\'s hook', async (t) => {
  const events = parseTrace(fixtureText('trace/clusterip-node1.txt'), hooks1());
  t.ok(events.length > 20);
  const syn = events.filter((e) => e.ipId === 26633);
  t.same([...new Set(syn.map((e) => e.traceId))].length, 2, 'the SYN has one trace id in prerouting, another in postrouting');
  const rules = syn.filter((e) => e.kind === 'rule' && e.table === 'podwire').map((e) => `${e.hook}/${e.chain}`);
  t.same(rules, ['prerouting/svc-nat-prerouting', 'prerouting/svc-services', 'prerouting/svc-pick-4', 'postrouting/svc-nat-postrouting', 'postrouting/pod-masquerade'], 'regular chains take the hook of the base chain the packet entered');
  const other = events.filter((e) => e.ipId !== undefined && e.ipId !== 26633);
  t.ok(other.length > 0 && other.every((e) => e.kind !== 'rule' || !/dnat/.test(e.rule)), 'later packets of the connection follow conntrack: no DNAT rule');
  t.same(parseTrace('garbage\n\ntrace id zz\n', hooks1()), []);
});

t.test('traceTableText: the table marking only the probe (and, on prerouting, its masqueraded sources)', async (t) => {
  const text = traceTableText({ id: 'ab12cd34', src: '10.244.1.2', sport: 24003, proto: 'TCP', alsoFrom: ['192.0.2.11', '10.244.1.2'] });
  t.equal(text, [
    'create table inet podwire-trace-ab12cd34',
    'add chain inet podwire-trace-ab12cd34 trace-prerouting { type filter hook prerouting priority -301; policy accept; }',
    'add chain inet podwire-trace-ab12cd34 trace-output { type filter hook output priority -301; policy accept; }',
    'add rule inet podwire-trace-ab12cd34 trace-prerouting ip saddr 10.244.1.2 tcp sport 24003 meta nftrace set 1 comment "podwire trace ab12cd34"',
    'add rule inet podwire-trace-ab12cd34 trace-prerouting ip saddr 192.0.2.11 meta l4proto tcp meta nftrace set 1 comment "podwire trace ab12cd34"',
    'add rule inet podwire-trace-ab12cd34 trace-output ip saddr 10.244.1.2 tcp sport 24003 meta nftrace set 1 comment "podwire trace ab12cd34"',
    '',
  ].join('\n'));
  t.match(traceTableText({ id: 'abcd', src: '10.0.0.1', sport: 9, proto: 'UDP' }), /ip saddr 10\.0\.0\.1 udp sport 9 meta nftrace set 1/);
  t.equal(deleteTraceTableText('abcd'), 'delete table inet podwire-trace-abcd\n');
  t.equal(fenceText('abcd', 3), 'add chain inet podwire-trace-abcd fence-3\ndelete chain inet podwire-trace-abcd fence-3\n');
  t.throws(() => traceTableName('Bad;id'), /4-16 lower-case/);
  t.throws(() => traceTableText({ id: 'abcd', src: '10.0.0.1; flush ruleset', sport: 9, proto: 'TCP' }), /not an IPv4/);
  t.throws(() => traceTableText({ id: 'abcd', src: '10.0.0.1', sport: 0, proto: 'TCP' }), /1-65535/);
  t.throws(() => traceTableText({ id: 'abcd', src: '10.0.0.1', sport: 9, proto: 'TCP', alsoFrom: ['x'] }), /alsoFrom "x"/);
});

t.test('validateTraceStart / validateTraceProbe', async (t) => {
  t.same(validateTraceStart({ id: 'abcd1234', src: '10.244.1.2', sport: 24003, proto: 'TCP' }), { id: 'abcd1234', src: '10.244.1.2', sport: 24003, proto: 'TCP', ttlMs: 10_000 });
  t.match(validateTraceStart({ id: 'abcd1234', src: '10.244.1.2', sport: 24003, proto: 'UDP', alsoFrom: ['192.0.2.11'], ttlMs: 5000 }), { alsoFrom: ['192.0.2.11'], ttlMs: 5000 });
  t.match(validateTraceStart(null), /JSON object/);
  t.match(validateTraceStart({ id: 'AB', src: '10.244.1.2', sport: 1, proto: 'TCP' }), /^id must be/);
  t.match(validateTraceStart({ id: 'abcd', src: 'fd00::1', sport: 1, proto: 'TCP' }), /^src must be an IPv4/);
  t.match(validateTraceStart({ id: 'abcd', src: '10.0.0.1', sport: 70000, proto: 'TCP' }), /^sport/);
  t.match(validateTraceStart({ id: 'abcd', src: '10.0.0.1', sport: 1, proto: 'SCTP' }), /^proto must be TCP or UDP/);
  t.match(validateTraceStart({ id: 'abcd', src: '10.0.0.1', sport: 1, proto: 'TCP', ttlMs: 60_000 }), /^ttlMs/);
  t.match(validateTraceStart({ id: 'abcd', src: '10.0.0.1', sport: 1, proto: 'TCP', alsoFrom: '10.0.0.2' }), /^alsoFrom must be a list/);
  t.match(validateTraceStart({ id: 'abcd', src: '10.0.0.1', sport: 1, proto: 'TCP', dst: 'x' }), /unknown field dst/);
  t.same(validateTraceProbe({ srcIp: '10.244.1.2', sport: 24003, dst: '10.96.0.2', dport: 80, proto: 'TCP', timeoutMs: 2000 }), { srcIp: '10.244.1.2', sport: 24003, dst: '10.96.0.2', dport: 80, proto: 'TCP', timeoutMs: 2000 });
  t.match(validateTraceProbe({ srcIp: '10.244.1.2', sport: 24003, dst: '10.96.0.2', dport: 0, proto: 'TCP', timeoutMs: 2000 }), /^dport/);
  t.match(validateTraceProbe({ srcIp: '10.244.1.2', sport: 24003, dst: '10.96.0.2', dport: 80, proto: 'TCP', timeoutMs: 20_000 }), /^timeoutMs/);
  t.match(validateTraceProbe({ srcIp: '10.244.1.2', sport: 24003, dst: 'web', dport: 80, proto: 'TCP', timeoutMs: 2000 }), /^dst must be/);
});

t.test('stale trace tables of an earlier run: only inet podwire-trace-<id> tables are removed', async (t) => {
  const listing = 'table inet podwire\ntable inet podwire-trace-ab12cd\ntable inet podwire-trace-X\ntable inet podwire-tracer-ab12\ntable inet other\ntable inet podwire-trace-zz99\n';
  t.same(traceTablesIn(listing), ['podwire-trace-ab12cd', 'podwire-trace-zz99']);
  const calls: string[][] = [];
  const runner = { run: (cmd: string, args: readonly string[]) => { calls.push([cmd, ...args]); return args[0] === 'list' ? { code: 0, stdout: listing, stderr: '' } : args[3] === 'podwire-trace-zz99' ? { code: 1, stdout: '', stderr: 'Error: Could not process rule: Device or resource busy' } : { code: 0, stdout: '', stderr: '' }; } };
  const problems = removeStaleTraceTables(runner);
  t.same(calls, [['nft', 'list', 'tables', 'inet'], ['nft', 'delete', 'table', 'inet', 'podwire-trace-ab12cd'], ['nft', 'delete', 'table', 'inet', 'podwire-trace-zz99']]);
  t.equal(problems.length, 1);
  t.match(problems[0], /podwire-trace-zz99: Error: Could not process rule/);
  t.same(removeStaleTraceTables({ run: () => ({ code: 1, stdout: '', stderr: 'netlink: Error: Operation not permitted' }) }), ['nft list tables inet: netlink: Error: Operation not permitted']);
});
