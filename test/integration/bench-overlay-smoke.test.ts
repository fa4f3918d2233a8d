// `bench overlay` must keep working: a tiny run (1 s per measurement, 1 repeat) measures every
// scenario (underlay, hand-built VXLAN and direct routes, flannel vxlan and host-gw with its
// masquerade, podwire vxlan with and without notrack, host-gw and auto) and the node join, prints
// every scenario row, every ratio row and the verdict on each target, and leaves no namespace and
// no process behind; --scenarios measures a subset. Bad flags are usage errors.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { listNetns } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { BENCH_MAIN, processesWithEnv, runMarked } from '../lib/bench-smoke.js';
import { RATIOS, SCENARIOS } from '../../bench/overlay.js';

const haveIperf = spawnSync('iperf3', ['--version'], { stdio: 'ignore' }).status === 0;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

t.test('bench overlay: a 1 s × 1 run measures every scenario and the node join, reports ratios, cleans up', { skip: SKIP_NOT_ROOT || (haveIperf ? false : 'iperf3 missing') }, async (t) => {
  const { r, marker } = runMarked(['overlay', '--seconds', '1', '--repeat', '1'], 'PW_BENCH_OVERLAY_SMOKE');
  t.equal(r.status, 0, `exits 0${r.status === 0 ? '' : `: ${r.stderr}`}`);
  const out = r.stdout;
  t.match(out, /^podwire bench overlay — iperf3 TCP pod↔pod across 2 nodes, 1 s per measurement, -P 1, 1 run\(s\)/m, 'title');
  for (const s of SCENARIOS) t.match(out, new RegExp(`^${esc(s)}\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\d$`, 'm'), `scenario row: ${s}`);
  for (const [a, b, target] of RATIOS) {
    t.match(out, new RegExp(`^${esc(`${a} / ${b}`)}\\s+\\d+\\.\\d{3}×\\s+\\d+\\.\\d{3}×\\s+\\d+\\.\\d{3}×$`, 'm'), `ratio row: ${a} / ${b} (run, of medians, median of runs)`);
    if (target !== undefined) t.match(out, new RegExp(`^target ${esc(`${a} ≥ ${target.toFixed(2)}× ${b}`)}: (met|NOT met) \\(\\d+\\.\\d{3}×, the median of 1 paired run`, 'm'), `verdict: ${a} / ${b} ≥ ${target}`);
  }
  t.equal(RATIOS.filter((r) => r[2] !== undefined).length, 6, 'six targets: three against flannel as deployed, two against the hand-built, one on the same node');
  t.match(out, /^\(a\) registered → other agents synced\s+\d+\s+\d+\s+\d+$/m, 'convergence (a)');
  t.match(out, /^\(b\) agent start → pod reachable\s+\d+\s+\d+\s+\d+$/m, 'convergence (b)');
  const labs = SCENARIOS.length + 1;
  const cleanup = new RegExp(`^cleanup: ${labs} labs created and removed \\(((?:pw-[0-9a-z]+- ?){${labs}})\\), no namespace of theirs left$`, 'm').exec(out);
  t.ok(cleanup, `the benchmark checked its own cleanup (${labs} labs: ${SCENARIOS.length} scenarios and the join)`);
  const prefixes = cleanup?.[1]?.trim().split(' ') ?? [];
  t.same(listNetns().filter((n) => prefixes.some((p) => n.startsWith(p))), [], 'no namespace of those labs left');
  t.same(processesWithEnv(marker), [], 'no process of the run left (iperf3, echo servers, agents, control planes)');
});

t.test('bench overlay: --scenarios measures only those, ratios only where both were measured', { skip: SKIP_NOT_ROOT || (haveIperf ? false : 'iperf3 missing') }, async (t) => {
  const { r } = runMarked(['overlay', '--seconds', '1', '--repeat', '1', '--scenarios', 'podwire vxlan,flannel vxlan'], 'PW_BENCH_OVERLAY_SMOKE2');
  t.equal(r.status, 0, `exits 0${r.status === 0 ? '' : `: ${r.stderr}`}`);
  const rows = r.stdout.split('\n').filter((l) => /\d+\.\d\d$/.test(l) && !l.includes(' / ')).map((l) => l.replace(/\s+[\d.]+\s+[\d.]+$/, ''));
  t.same(rows, ['flannel vxlan', 'podwire vxlan'], 'the two scenarios, in the report\'s order');
  t.match(r.stdout, /^podwire vxlan \/ flannel vxlan\s/m);
  t.notMatch(r.stdout, /^(underlay|hand-built|flannel host-gw|podwire host-gw|podwire auto|podwire vxlan, tracked|bare bridge|podwire, same node)\b/m, 'no row or ratio of a scenario not measured');
  t.match(r.stdout, /^target podwire vxlan ≥ 1\.00× flannel vxlan: (met|NOT met)/m);
});

t.test('bench overlay: bad flags are usage errors (exit 2)', async (t) => {
  for (const args of [['--scenarios', 'podwire vxlan,nope'], ['--scenarios', ''], ['--seconds', '0'], ['--seconds', '121'], ['--repeat', '0'], ['--parallel', '0'], ['--parallel', 'two'], ['--nope'], ['extra']]) {
    const r = spawnSync('node', [BENCH_MAIN, 'overlay', ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `overlay ${args.join(' ')} exits 2`);
    t.match(r.stderr, /^bench: /, `overlay ${args.join(' ')} explains: ${r.stderr.split('\n')[0]}`);
  }
});
