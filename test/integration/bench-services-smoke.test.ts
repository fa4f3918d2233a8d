// `bench services` must keep working: a tiny run (10 services, 50 connects, 2 changes, both proxy
// modes) prints a row per mode in the main table with every figure filled in, the detail and ratio
// tables, says the targets were not evaluated (no 10,000 row), and leaves no namespace and no
// process behind. Bad flags are usage errors (exit 2).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { listNetns } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { BENCH_MAIN, processesWithEnv, runMarked } from '../lib/bench-smoke.js';

const haveTools = ['nft', 'iptables-restore'].every((cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0);

t.test('bench services: 10 services × 50 connects in both modes is measured, reported and cleaned up', { skip: SKIP_NOT_ROOT || (haveTools ? false : 'nft or iptables-restore missing') }, async (t) => {
  const { r, marker } = runMarked(['services', '--sizes', '10', '--connects', '50', '--changes', '2'], 'PW_BENCH_SERVICES_SMOKE');
  t.equal(r.status, 0, `exits 0${r.status === 0 ? '' : `: ${r.stderr}`}`);
  const out = r.stdout;
  t.match(out, /^podwire bench services — N ClusterIP services × 5 endpoints \(N = 10\), modes nftables, iptables, 50 connects per latency figure, 2 changes per size$/m, 'title');
  t.match(out, /^machine: .*the whole machine was \d+% of a core busy/m, 'machine and load line');
  for (const mode of ['nftables', 'iptables']) {
    // mode  N  p50  p99  full sync  one change  RSS: every figure present, none FAILED or —
    t.match(out, new RegExp(`^${mode}\\s+10\\s+\\d+\\.\\d{3}\\s+\\d+\\.\\d{3}\\s+\\d+\\s+\\d+\\s+\\d+$`, 'm'), `main row: ${mode}`);
    t.match(out, new RegExp(`^${mode}\\s+10(\\s+\\d+\\.\\d{3}){2}\\s+\\d+\\s+\\d+\\s+\\d+(\\s+\\d+){2}\\s+\\d+\\.\\d\\s+\\d+\\s+\\d+\\s+\\d+%\\s+\\d+%$`, 'm'), `detail row: ${mode} (… peak RSS, heap, other CPU, in latency)`);
    t.match(out, new RegExp(`^${mode} p50 / p50 at N=10\\s+1\\.00×$`, 'm'), `ratio row: ${mode}`);
  }
  t.match(out, /^iptables \/ nftables p50\s+\d+\.\d\d×$/m, 'mode ratio row');
  t.match(out, /^targets \(nftables\): not evaluated/m, 'no verdict without a 10,000 row');
  t.notMatch(out, /FAILED/, 'nothing failed');
  const cleanup = /^cleanup: 2 clusters created and removed \(((?:pw-[0-9a-z]+- ?){2})\), no namespace of theirs left$/m.exec(out);
  t.ok(cleanup, 'the benchmark checked its own cleanup');
  const prefixes = cleanup?.[1]?.trim().split(' ') ?? [];
  t.same(listNetns().filter((n) => prefixes.some((p) => n.startsWith(p))), [], 'no namespace of those clusters left');
  t.same(processesWithEnv(marker), [], 'no process of the run left (agents, nft, control planes, echo servers, probers)');
});

t.test('bench services: bad flags are usage errors (exit 2)', async (t) => {
  const bad = [['--sizes', '1000,10'], ['--sizes', '10,10'], ['--sizes', '1'], ['--sizes', '30000'], ['--sizes', 'ten'], ['--sizes', ''], ['--connects', '5'], ['--connects', 'many'],
    ['--modes', 'ipvs'], ['--modes', ''], ['--changes', '0'], ['--sync-timeout', '1'], ['--nope'], ['extra']];
  for (const args of bad) {
    const r = spawnSync('node', [BENCH_MAIN, 'services', ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `services ${args.join(' ')} exits 2`);
    t.match(r.stderr, /^bench: /, `services ${args.join(' ')} explains: ${r.stderr.split('\n')[0]}`);
  }
});
