// `bench dns` must keep working: a tiny run (100 services, 1 s per dnsperf run, 2,000 qps) checks
// both servers' answers, prints the throughput and latency tables with every figure filled in, the
// ratios and both target lines, and leaves no pw-dnsbench- namespace, temp dir or process behind;
// SIGTERM in the middle of a run cleans up too. Bad flags are usage errors (exit 2).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { listNetns } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { BENCH_MAIN, processesWithEnv, runMarked } from '../lib/bench-smoke.js';
import { missingTools, PREFIX } from '../../bench/dns-procs.js';

const missing = missingTools();
const skip = SKIP_NOT_ROOT || (missing.length ? `needs ${missing.join(', ')} (scripts/bootstrap installs them)` : false);
const benchNetns = () => listNetns().filter((n) => n.startsWith(PREFIX));
const benchDirs = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(PREFIX));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const F = '\\d[\\d,]*'; // an integer as the report prints it (1,234)
const MS = '\\d+\\.\\d+'; // a latency in ms

t.test('bench dns: 100 services, 1 s runs at 2,000 qps: verified, measured, reported, cleaned up', { skip }, async (t) => {
  const [nsBefore, dirsBefore] = [benchNetns(), benchDirs()];
  const { r, marker } = runMarked(['dns', '--services', '100', '--seconds', '1', '--qps', '2000', '--repeat', '1'], 'PW_BENCH_DNS_SMOKE', 60_000);
  t.equal(r.status, 0, `exits 0${r.status === 0 ? '' : `: ${r.stderr}`}`);
  const out = r.stdout;
  t.match(out, /^podwire bench dns — 100 ClusterIP services in 100 namespaces; query file 115 questions \(A 100, SRV 10, NXDOMAIN 5\), UDP$/m, 'title with the query mix');
  t.match(out, /^machine: \d+ cores .*; load average at the end [\d. ]+; \d{4}-\d\d-\d\d$/m, 'machine line');
  t.match(out, /^dnsperf \d+\.\d+\S*, unbound \d+\.\d+\S* /m, 'tool versions');
  for (const s of ['podwire', 'unbound']) {
    // server  qps  runs  lost %  µs CPU/answer  server CPU  dnsperf CPU  irq CPU  other CPU  resp bytes
    t.match(out, new RegExp(`^${s}\\s+${F}\\s+${F}\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\s+(-?\\d+%\\s+){4}\\d+$`, 'm'), `throughput row: ${s}`);
    // server  rate  achieved  p50  p90  p99  p99.9  max  avg  stddev  lost  server CPU  other CPU
    t.match(out, new RegExp(`^${s}\\s+2,000\\s+${F}(\\s+(${MS}|lost)){5}(\\s+${MS}){2}\\s+\\d+\\s+\\d+%\\s+-?\\d+%$`, 'm'), `latency row: ${s}`);
  }
  t.match(out, /^podwire\/unbound\s+\d+\.\d\d×\s+\d+\.\d\d×$/m, 'throughput ratio row (qps, CPU per answer)');
  t.match(out, /^podwire\/unbound\s+2,000(\s+(\d+\.\d\d×|-)){3}\s+\d+\.\d\d×$/m, 'latency ratio row');
  t.match(out, /^target: podwire qps >= 0\.5× unbound: (met|NOT met) \(\d+\.\d\d×\)$/m, 'qps target verdict');
  t.match(out, /^target: podwire p99 < 2 ms at 10,000 qps: not measured \(add 10000 to --qps\)$/m, 'no p99 verdict without a 10,000 qps run');
  const tag = /^server netns (pw-dnsbench-[0-9a-f]{6}-)srv /m.exec(out)?.[1];
  t.ok(tag, 'the report names its namespaces');
  t.same(benchNetns().filter((n) => !nsBefore.includes(n)), [], 'no pw-dnsbench- namespace left');
  t.same(benchDirs().filter((n) => !dirsBefore.includes(n)), [], 'no pw-dnsbench- temp dir left');
  t.same(processesWithEnv(marker), [], 'no process of the run left (server child, unbound, dnsperf)');
});

t.test('bench dns: SIGTERM during a run stops its processes and removes its namespaces', { skip }, async (t) => {
  const [nsBefore, dirsBefore] = [benchNetns(), benchDirs()];
  const marker = `PW_BENCH_DNS_SIGTERM=${randomBytes(6).toString('hex')}`;
  const child = spawn('node', [BENCH_MAIN, 'dns', '--services', '100', '--seconds', '20', '--qps', '1000', '--repeat', '1'], {
    env: { ...process.env, PW_BENCH_DNS_SIGTERM: marker.split('=')[1] }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 15_000;
  while (!/run 1\/1/.test(err) && Date.now() < deadline && child.exitCode === null) await sleep(100);
  t.match(err, /run 1\/1: podwire/, 'the run started');
  await sleep(3000); // the server child started and dnsperf running (the throughput run lasts 20 s)
  const comm = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return ''; // gone meanwhile
    }
  };
  const running = processesWithEnv(marker).map(comm);
  t.ok(running.includes('dnsperf') || running.includes('dig'), `dnsperf (or dig) is running: ${running.join(' ')}`);
  const ours = benchNetns().filter((n) => !nsBefore.includes(n));
  t.equal(ours.length, 2, `it holds its two namespaces (${ours.join(' ')})`);
  child.kill('SIGTERM');
  t.equal(await exited, 143, 'exits 128+SIGTERM');
  t.match(err, /interrupted by SIGTERM/, 'says it was interrupted');
  t.same(benchNetns().filter((n) => !nsBefore.includes(n)), [], 'its namespaces are gone');
  t.same(benchDirs().filter((n) => !dirsBefore.includes(n)), [], 'its temp dir is gone');
  await sleep(200);
  t.same(processesWithEnv(marker), [], 'no process of the run left');
});

t.test('bench dns: bad flags are usage errors (exit 2)', async (t) => {
  for (const args of [['--services', '0'], ['--qps', ''], ['--qps', '5'], ['--qps', '1000,fast'], ['--seconds', '0'], ['--repeat', '0'], ['--nope'], ['extra']]) {
    const r = spawnSync('node', [BENCH_MAIN, 'dns', ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `dns ${args.join(' ')} exits 2`);
    t.match(r.stderr, /^bench: /, `dns ${args.join(' ')} explains: ${r.stderr.split('\n')[0]}`);
  }
});
