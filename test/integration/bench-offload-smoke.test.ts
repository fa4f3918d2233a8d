// `bench offload` must keep working: a tiny run (1 round of 1 s per setting) A/Bs two settings in
// place on one podwire vxlan lab, prints a row with both throughputs and the ratio for each, puts
// every setting back, and leaves no namespace and no process behind. Bad flags are usage errors.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { listNetns } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { BENCH_MAIN, processesWithEnv, runMarked } from '../lib/bench-smoke.js';

const haveTools = spawnSync('iperf3', ['--version'], { stdio: 'ignore' }).status === 0 && ['/usr/sbin/ethtool', '/sbin/ethtool'].some((p) => fs.existsSync(p));

t.test('bench offload: a 1 s × 1 run A/Bs two settings and cleans up', { skip: SKIP_NOT_ROOT || (haveTools ? false : 'iperf3 or ethtool missing (scripts/bootstrap installs them)') }, async (t) => {
  const { r, marker } = runMarked(['offload', '--rounds', '1', '--seconds', '1', '--settings', 'vxlan-tx-csum,underlay-gro'], 'PW_BENCH_OFFLOAD_SMOKE');
  t.equal(r.status, 0, `exits 0${r.status === 0 ? '' : `: ${r.stderr}`}`);
  t.match(r.stdout, /^podwire bench offload — ethtool -K A\/B in place on one 2-node podwire vxlan lab/m, 'title');
  t.match(r.stdout, /^vxlan-tx-csum\s+podwire\.1 tx-checksum-ip-generic\s+on\s+off\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d{3}×\s+\d+\.\d\d$/m, 'the VXLAN checksum row: default on, changed off, both throughputs, the ratio');
  t.match(r.stdout, /^underlay-gro\s+underlay generic-receive-offload\s+(on|off)\s+on\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d{3}×/m, 'the underlay GRO row');
  // Only the bench's own lab: other test files create pw- namespaces at the same time.
  const cleanup = /^cleanup: lab (pw-[0-9a-z]+-) created and removed, no namespace of it left$/m.exec(r.stdout);
  t.ok(cleanup, 'the benchmark checked its own cleanup');
  t.same(listNetns().filter((n) => cleanup && n.startsWith(cleanup[1]!)), [], 'no namespace of its lab left');
  t.same(processesWithEnv(marker), [], 'no process of the run left (iperf3, agents, control plane)');
});

t.test('bench offload: bad flags are usage errors (exit 2)', async (t) => {
  for (const args of [['--settings', 'nope'], ['--rounds', '0'], ['--seconds', '61'], ['extra']]) {
    const r = spawnSync('node', [BENCH_MAIN, 'offload', ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `offload ${args.join(' ')} exits 2`);
    t.match(r.stderr, /^bench: /, `offload ${args.join(' ')} explains: ${r.stderr.split('\n')[0]}`);
  }
});
