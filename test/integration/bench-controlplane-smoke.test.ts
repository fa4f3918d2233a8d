// `bench controlplane` must keep working: a tiny run (3 watchers, 30 writes; the etcd store only
// when etcd is installed) verifies delivery, prints a row per store (and the etcd/sqlite ratios),
// and leaves no temp dir and no process behind. The run gets its own TMPDIR, which every process it
// starts inherits: afterwards that dir must be empty and no process may have it in its environment.
// Bad flags are usage errors.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { haveEtcd } from '../lib/etcd.js';
import { BENCH_MAIN, processesWithEnv } from '../lib/bench-smoke.js';


t.test('bench controlplane: a 3-watcher, 30-write run is verified, reported and cleaned up', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-benchcp-smoke-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const etcd = haveEtcd();
  if (!etcd) t.comment('etcd not installed: sqlite store only');
  const stores = etcd ? ['sqlite', 'etcd'] : ['sqlite'];
  const args = [BENCH_MAIN, 'controlplane', '--watchers', '3', '--writes', '30', ...(etcd ? [] : ['--stores', 'sqlite'])];
  const r = spawnSync('node', args, { encoding: 'utf8', env: { ...process.env, TMPDIR: tmp }, timeout: 180_000 });
  t.equal(r.status, 0, `exits 0${r.status === 0 ? '' : `: ${r.stderr}`}`);
  t.match(r.stdout, /^podwire bench controlplane — 3 watchers, 30 pod writes \(15 creates, then 15 updates\), 16 in flight$/m, 'title');
  t.match(r.stdout, /^watchers in 2 child processes/m, 'says where the watchers ran');
  for (const store of stores) {
    // store  writes  writes/s  events  p50  p99  max  RSS  peak RSS
    t.match(r.stdout, new RegExp(`^${store}\\s+30\\s+\\d+\\s+90(\\s+\\d+(\\.\\d+)?){3}\\s+\\d+\\s+\\d+$`, 'm'), `${store} row: 30 writes, 90 events`);
    t.match(r.stdout, new RegExp(`^  ${store}: write round trip p50 [\\d.]+ ms`, 'm'), `${store} notes`);
  }
  if (etcd) t.match(r.stdout, /^etcd\/sqlite(\s+\d+\.\d\d×){5}$/m, 'ratio row');
  t.same(fs.readdirSync(tmp), [], 'no temp dir left (data dirs, etcd data)');
  t.same(processesWithEnv(`TMPDIR=${tmp}`), [], 'no process left (control plane, etcd, watch workers)');
});

t.test('bench controlplane: bad flags are usage errors (exit 2)', async (t) => {
  const bad = [['--watchers', '0'], ['--writes', '0'], ['--concurrency', '0'], ['--watcher-procs', '0'], ['--stores', 'sqlite,mysql'], ['--stores', ''], ['--writes', 'many'], ['--nope'], ['extra']];
  for (const args of bad) {
    const r = spawnSync('node', [BENCH_MAIN, 'controlplane', ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `controlplane ${args.join(' ')} exits 2`);
    t.match(r.stderr, /^bench: /, `controlplane ${args.join(' ')} explains: ${r.stderr.split('\n')[0]}`);
  }
});
