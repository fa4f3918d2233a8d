// `bench cni` must keep working: a tiny run (3 pods, ipMasq off and on, podwire-fast, podwire and the reference)
// does the work, verifies it, prints p50/p99, the ratios and the floor, and leaves no namespace or
// temp dir behind. Bad flags are usage errors.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { listNetns } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { BENCH_MAIN } from '../lib/bench-smoke.js';
import { SKIP_NO_REFERENCE } from '../lib/cni.js';
import { PREFIX } from '../../bench/cni.js';

const benchDirs = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(PREFIX)).sort();

t.test('bench cni: a 3-pod run of podwire-fast, podwire and the reference, masq off and on, is verified and reported', { skip: SKIP_NOT_ROOT || SKIP_NO_REFERENCE }, async (t) => {
  const dirsBefore = benchDirs();
  const out = execFileSync('node', [BENCH_MAIN, 'cni', '--pods', '3'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  for (const impl of ['podwire-fast', 'podwire', 'reference']) {
    for (const masq of ['off', 'on']) t.match(out, new RegExp(`^${impl}\\s+${masq}\\s+\\d+(\\.\\d)?\\s+\\d`, 'm'), `${impl} ipMasq ${masq} row`);
  }
  t.match(out, /^podwire\/reference\s+off\s+\d+\.\d\d×/m, 'ratio row, masq off');
  t.match(out, /^podwire\/reference\s+on\s+\d+\.\d\d×/m, 'ratio row, masq on');
  t.match(out, /^podwire-fast\/reference\s+off\s+\d+\.\d\d×/m, 'fast path ratio row');
  t.match(out, /process floor: `node -e 0` \d/, 'process floor');
  t.match(out, /podwire ipMasq off: ADD p50 [\d.]+ = start\+load/, 'where podwire\'s time goes');
  t.same(listNetns().filter((n) => n.startsWith(PREFIX)), [], 'no bench namespace left');
  t.same(benchDirs(), dirsBefore, 'no bench temp dir left');
});

t.test('bench cni --concurrency: commands in flight at once, each implementation alone, phase wall times', { skip: SKIP_NOT_ROOT || SKIP_NO_REFERENCE }, async (t) => {
  const dirsBefore = benchDirs();
  const out = execFileSync('node', [BENCH_MAIN, 'cni', '--pods', '4', '--concurrency', '3', '--masq', 'off'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  t.match(out, /^podwire bench cni — 4 pods .*, 3 in flight at once$/m, 'title says so');
  for (const impl of ['podwire-fast', 'podwire', 'reference']) {
    t.match(out, new RegExp(`^${impl}\\s+off\\s+\\d+(\\.\\d)?\\s+\\d`, 'm'), `${impl} row`);
    t.match(out, new RegExp(`${impl} ipMasq off ADD \\d+\\.\\d\\d DEL \\d+\\.\\d\\d`), `${impl} phase wall times`);
  }
  t.same(listNetns().filter((n) => n.startsWith(PREFIX)), [], 'no bench namespace left');
  t.same(benchDirs(), dirsBefore, 'no bench temp dir left');
});

t.test('bench cni --repeat: runs in alternating order, medians of the per-run ratios; podwire-fast\'s ipMasq on is node-level', { skip: SKIP_NOT_ROOT || SKIP_NO_REFERENCE }, async (t) => {
  const dirsBefore = benchDirs();
  const r = spawnSync('node', [BENCH_MAIN, 'cni', '--pods', '3', '--repeat', '2', '--impls', 'podwire-fast,reference'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `exits 0${r.status === 0 ? '' : `: ${r.stderr}`}`);
  t.match(r.stdout, /^2 runs, the implementations' order alternating; .*medians of the per-run ratios$/m, 'says how the ratios are made');
  t.match(r.stdout, /ipMasq on: node-level, as with the agent/, 'podwire-fast\'s ipMasq on is the agent\'s node-level masquerade');
  t.match(r.stdout, /^ {2}podwire-fast ipMasq off: ADD p50 \d+\.\d\d \d+\.\d\d; DEL p50 \d+\.\d\d \d+\.\d\d$/m, 'two per-run ratios each');
  t.match(r.stderr, /^run 2\/2$/m, 'two runs');
  t.same(listNetns().filter((n) => n.startsWith(PREFIX)), [], 'no bench namespace left');
  t.same(benchDirs(), dirsBefore, 'no bench temp dir left');
});

t.test('bench cni: bad flags are usage errors (exit 2) that change nothing', async (t) => {
  for (const args of [['--concurrency', '0'], ['--concurrency', '101'], ['--pods', '0'], ['--pods', '251'], ['--masq', 'maybe'], ['--impls', 'podwire,flannel'], ['--repeat', '0'], ['--fast-masq', 'both'], ['extra']]) {
    const r = spawnSync('node', [BENCH_MAIN, 'cni', ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `cni ${args.join(' ')} exits 2`);
    t.match(r.stderr, /^bench: /, `cni ${args.join(' ')} explains: ${r.stderr.split('\n')[0]}`);
  }
});
