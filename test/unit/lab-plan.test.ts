import t from 'tap';
import { underlayAddressing } from '../../src/lab/underlay.js';
import { newLabPrefix, validateLabPrefix, LAB_PREFIX_RE } from '../../src/lab/names.js';
import { formatMatrix, type ProbeResult } from '../../src/lab/connectivity.js';

t.test('underlay addressing: node addresses from .11, bounded by the subnet', async (t) => {
  const p = underlayAddressing('192.0.2.0/24', 3);
  t.same([1, 2, 3].map((i) => p.nodeIp(i)), ['192.0.2.11', '192.0.2.12', '192.0.2.13']);
  t.equal(underlayAddressing('198.51.100.77/24', 1).nodeIp(1), '198.51.100.11', 'host bits of the given address are ignored');
  t.equal(underlayAddressing('10.9.0.0/16', 64).nodeIp(64), '10.9.0.74');
  t.throws(() => underlayAddressing('192.0.2.0/28', 5), /too small for 5 nodes/);
  t.throws(() => underlayAddressing('2001:db8::/64', 2), /only IPv4/);
  t.throws(() => underlayAddressing('192.0.2.0', 2), /invalid CIDR/);
});

t.test('lab prefixes: random ones are valid, hostile ones refused', async (t) => {
  for (let i = 0; i < 20; i++) t.match(newLabPrefix(), LAB_PREFIX_RE);
  for (const bad of ['', 'pw-', 'pw-x', 'x-abc-', 'pw-../-', 'pw-ABC-', 'pw-a/b-', 'pw-0123456789abc-']) {
    t.throws(() => validateLabPrefix(bad), /invalid lab prefix/, JSON.stringify(bad));
  }
});

t.test('connectivity matrix: rows and columns in node order, failures listed, summary line', async (t) => {
  const r = (from: string, to: string, ok: boolean): ProbeResult => ({ from, fromNetns: `x-${from}`, to, toIp: `ip-${to}`, kind: 'ping', ok, detail: ok ? '0.1 ms' : 'timeout' });
  const text = formatMatrix('title', [r('node1', 'node2', true), r('node2', 'node1', false), r('node1', 'node3', true), r('node3', 'node1', true)]);
  const lines = text.split('\n');
  t.equal(lines[0], 'title');
  t.match(lines[1], /^\s+node1\s+node2\s+node3\s*$/);
  t.match(lines[2], /^node1\s+-\s+ok\s+ok\s*$/);
  t.match(lines[3], /^node2\s+FAIL\s+-\s+-\s*$/);
  t.match(text, /FAIL node2 -> node1 \(ip-node1\): timeout/);
  t.equal(lines[lines.length - 1], 'connectivity: 3/4 ok');
});
