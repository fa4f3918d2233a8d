// The control plane benchmark: N watchers on the pods of one namespace, W pod writes (the first
// half creates, then one update of each created pod, with optimistic concurrency on the create's
// resourceVersion), C writes in flight, against podwire-controlplane processes using the SQLite
// store and the etcd store. Every write carries its send time (process.hrtime.bigint(): Linux's
// CLOCK_MONOTONIC, the same clock in every process); a watcher takes its receive time when the
// event line is parsed, so a sample is write sent → event parsed, end to end (HTTP, validation,
// store commit, watch fan-out, JSON on both sides). The watchers run in child processes (this file
// forked with WORKER_ARG), so their parsing does not queue behind the writer; each one checks that
// it got every write exactly once, in resourceVersion order, with the resourceVersion and type the
// writer was acknowledged — a run that lost, repeated or reordered an event fails.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { listFlag, machine as baseMachine, sleep, table } from './util.js';
import { ApiClient, type WatchStream } from '../src/client/api-client.js';
import type { Pod, WatchEventBody } from '../src/api/objects.js';
import { CONTROLPLANE_MAIN, startControlPlane } from '../test/lib/controlplane-process.js';
import { haveEtcd, startEtcd } from '../test/lib/etcd.js';

export const summary = 'N watchers, W pod writes (creates then updates): writes/s and p50/p99 watch delivery latency, SQLite vs etcd store';

export const flags: FlagSpecs = {
  watchers: { type: 'int', default: 100, min: 1, max: 2000, help: 'watch streams on the pods of namespace bench (default 100)' },
  writes: { type: 'int', default: 2000, min: 1, max: 100_000, help: 'pod writes: ceil(W/2) creates, then updates (default 2000)' },
  concurrency: { type: 'int', default: 16, min: 1, max: 256, help: 'writes in flight (default 16)' },
  stores: { type: 'string', default: 'sqlite,etcd', help: 'sqlite, etcd or sqlite,etcd (default sqlite,etcd)' },
  'watcher-procs': { type: 'int', default: 2, min: 1, max: 32, help: 'child processes the watchers are split over (default 2)' },
};

export const PREFIX = 'pw-bench-cp-';
const STORES = ['sqlite', 'etcd'];
const NS = 'bench';
const SENT = 'bench.podwire.io/sent-ns';
const WRITE = 'bench.podwire.io/write';
const WORKER_ARG = '--podwire-bench-watch-worker';
const WARMUP_WRITES = 200; // in namespace bench-warmup, before the watchers open; not measured
const DELIVERY_TIMEOUT_MS = 120_000;
const THIS_FILE = fileURLToPath(import.meta.url);

export function check(f: Flags): void {
  listFlag(String(f.stores), STORES, 'stores');
}

// ---- the watch worker (a child process) ---------------------------------------------------------

interface Watcher { seen: Uint8Array; rv: Float64Array; type: Uint8Array; lat: Float64Array; n: number; lastRv: number; errors: string[]; ended: boolean; stream?: WatchStream }
const TYPE_CODE: Record<string, number> = { ADDED: 1, MODIFIED: 2, DELETED: 3 };

function onEvent(w: Watcher, ev: WatchEventBody, writes: number): void {
  const now = process.hrtime.bigint();
  if (ev.type === 'BOOKMARK') return;
  const meta = (ev.object as Pod).metadata ?? {};
  const rv = Number(meta.resourceVersion);
  const id = Number(meta.annotations?.[WRITE]);
  const bad = (msg: string) => w.errors.length < 5 && w.errors.push(msg);
  if (ev.type === 'ERROR') return void bad(`ERROR event: ${JSON.stringify(ev.object).slice(0, 200)}`);
  if (!(rv > w.lastRv)) bad(`resourceVersion ${meta.resourceVersion} after ${w.lastRv}: out of order`);
  w.lastRv = rv;
  if (!Number.isInteger(id) || id < 0 || id >= writes) return void bad(`event for an unknown write ${JSON.stringify(meta.annotations?.[WRITE])}`);
  if (w.seen[id]) return void bad(`write ${id} delivered twice`);
  w.seen[id] = 1;
  w.rv[id] = rv;
  w.type[id] = TYPE_CODE[ev.type] ?? 0;
  w.lat[id] = Number(now - BigInt(meta.annotations![SENT]!)) / 1e6;
  w.n++;
}

interface WorkerState { client: ApiClient; ws: Watcher[]; base: number; writes: number; all: Promise<void>; lastRecv: bigint; cpu0?: NodeJS.CpuUsage }

async function openWatches(m: { url: string; token: string; count: number; base: number; writes: number }): Promise<WorkerState> {
  const client = new ApiClient({ server: m.url, token: m.token });
  let remaining = m.count;
  let resolveAll!: () => void;
  const state: WorkerState = { client, ws: [], base: m.base, writes: m.writes, all: new Promise<void>((r) => (resolveAll = r)), lastRecv: 0n };
  for (let k = 0; k < m.count; k++) {
    const W = m.writes;
    const w: Watcher = { seen: new Uint8Array(W), rv: new Float64Array(W), type: new Uint8Array(W), lat: new Float64Array(W), n: 0, lastRv: 0, errors: [], ended: false };
    state.ws.push(w);
    w.stream = await client.watch({ plural: 'pods', namespace: NS }, { allowWatchBookmarks: 'true' }, (ev) => {
      const before = w.n;
      onEvent(w, ev, W);
      if (w.n === before) return;
      state.lastRecv = process.hrtime.bigint();
      if (w.n === W && --remaining === 0) resolveAll();
    });
    w.stream.done.then(() => (w.ended = true), (e: Error) => ((w.ended = true), w.errors.push(`stream failed: ${e.message}`)));
  }
  state.cpu0 = process.cpuUsage();
  return state;
}

async function finish(s: WorkerState, m: { rvs: Float64Array; types: Uint8Array }) {
  await Promise.race([s.all, sleep(DELIVERY_TIMEOUT_MS)]);
  const errors: string[] = [];
  const samples: Float64Array[] = [];
  for (const [k, w] of s.ws.entries()) {
    const name = `watcher ${s.base + k}`;
    errors.push(...w.errors.map((e) => `${name}: ${e}`));
    if (w.n !== s.writes) errors.push(`${name}: ${w.n} of ${s.writes} events within ${DELIVERY_TIMEOUT_MS / 1000} s${w.ended ? ' (its stream ended)' : ''}`);
    for (let id = 0; id < s.writes; id++) {
      if (w.seen[id] && (w.rv[id] !== m.rvs[id] || w.type[id] !== m.types[id])) {
        errors.push(`${name}: write ${id} arrived as type ${w.type[id]} rv ${w.rv[id]}, acknowledged as type ${m.types[id]} rv ${m.rvs[id]}`);
        break;
      }
    }
    samples.push(w.lat.filter((_, id) => w.seen[id] === 1));
    w.stream?.close();
  }
  s.client.close();
  const cpu = process.cpuUsage(s.cpu0);
  return { op: 'result', samples, events: s.ws.reduce((a, w) => a + w.n, 0), errors: errors.slice(0, 20), lastRecv: String(s.lastRecv), cpuMs: (cpu.user + cpu.system) / 1000 };
}

function workerMain(): void {
  process.on('disconnect', () => process.exit(0));
  let state: WorkerState | undefined;
  process.on('message', (m: any) => {
    const work = m.op === 'open' ? openWatches(m).then((s) => ((state = s), { op: 'opened' })) : finish(state!, m);
    work.then(
      (reply) => process.send!(reply, () => m.op !== 'open' && process.disconnect()),
      (e: Error) => process.send!({ op: 'error', message: e.message }),
    );
  });
}

if (process.argv[2] === WORKER_ARG && process.send && path.resolve(process.argv[1] ?? '') === THIS_FILE) workerMain();

// ---- processes and temp dirs: always stopped and removed, also on SIGINT/SIGTERM/SIGHUP ----------

/** Stop functions (idempotent), run newest first: workers, control plane, etcd, temp dir. */
const live = new Set<(hurry: boolean) => Promise<unknown>>();

async function stopAll(hurry = false): Promise<void> {
  for (const stop of [...live].reverse()) {
    live.delete(stop);
    await stop(hurry).catch((e: Error) => process.stderr.write(`bench controlplane: cleanup: ${e.message}\n`));
  }
}

function onSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`\nbench controlplane: interrupted by ${signal}; stopping its processes\n`);
  void Promise.race([stopAll(true), sleep(15_000)]).then(() => process.exit(128 + (os.constants.signals[signal] ?? 1)));
}
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function untilExit(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

/** The next message `op` from a worker; rejects on its 'error' message, its exit or the timeout. */
function reply<T>(child: ChildProcess, op: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = (err: Error | undefined, m?: T) => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    const onMsg = (m: any) => (m.op === op ? done(undefined, m) : m.op === 'error' ? done(new Error(`watch worker ${child.pid}: ${m.message}`)) : undefined);
    const onExit = (code: number | null, sig: string | null) => done(new Error(`watch worker ${child.pid} exited (${code ?? sig}) before '${op}'`));
    const timer = setTimeout(() => done(new Error(`watch worker ${child.pid}: no '${op}' within ${timeoutMs / 1000} s`)), timeoutMs);
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

async function startWorkers(url: string, token: string, watchers: number, procs: number, writes: number): Promise<ChildProcess[]> {
  const n = Math.min(procs, watchers);
  const counts = Array.from({ length: n }, (_, i) => Math.floor(watchers / n) + (i < watchers % n ? 1 : 0));
  const children = counts.map(() => {
    const child = fork(THIS_FILE, [WORKER_ARG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    live.add(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await untilExit(child);
    });
    return child;
  });
  let base = 0;
  await Promise.all(children.map((child, i) => {
    const opened = reply(child, 'opened', 60_000);
    child.send({ op: 'open', url, token, count: counts[i], base, writes });
    base += counts[i];
    return opened;
  }));
  return children;
}

// ---- the writer ---------------------------------------------------------------------------------

function podBody(name: string, i: number, update: number | undefined, rv?: string): object {
  const status = update === undefined ? { phase: 'Pending' } : { phase: 'Running', podIP: `10.244.${(update >> 8) & 255}.${update & 255}`, podIPs: [{ ip: `10.244.${(update >> 8) & 255}.${update & 255}` }] };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'bench' }, annotations: { [SENT]: String(process.hrtime.bigint()), [WRITE]: String(i) }, ...(rv ? { resourceVersion: rv } : {}) },
    spec: { nodeName: 'bench-node', containers: [{ name: 'c', image: 'registry.example/bench:1', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status,
  };
}

interface Writes { rvs: Float64Array; types: Uint8Array; ackMs: Float64Array; startNs: bigint; endNs: bigint }

/** W writes with C in flight: write i < ceil(W/2) creates pod i, write ceil(W/2)+j updates pod j (after its create). */
async function writeAll(client: ApiClient, ns: string, W: number, C: number): Promise<Writes> {
  const creates = Math.ceil(W / 2);
  const out: Writes = { rvs: new Float64Array(W), types: new Uint8Array(W), ackMs: new Float64Array(W), startNs: 0n, endNs: 0n };
  const created: Promise<Pod>[] = [];
  let next = 0;
  const one = async (i: number): Promise<Pod> => {
    const j = i < creates ? i : i - creates;
    const name = `pod-${String(j).padStart(5, '0')}`;
    const prev = i < creates ? undefined : await created[j];
    const t0 = performance.now();
    const ref = { plural: 'pods', namespace: ns, name };
    const res = prev ? await client.update<Pod>(ref, podBody(name, i, j, prev.metadata.resourceVersion)) : await client.create<Pod>(ref, podBody(name, i, undefined));
    out.ackMs[i] = performance.now() - t0;
    out.rvs[i] = Number(res.metadata.resourceVersion);
    out.types[i] = prev ? TYPE_CODE.MODIFIED : TYPE_CODE.ADDED;
    return res;
  };
  const lane = async () => {
    for (let i = next++; i < W; i = next++) {
      const p = one(i);
      if (i < creates) created[i] = p;
      await p;
    }
  };
  out.startNs = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(C, W) }, lane));
  out.endNs = process.hrtime.bigint();
  return out;
}

// ---- one store ----------------------------------------------------------------------------------

interface Result { store: string; writes: number; writesPerS: number; events: number; lat: Float64Array; ackMs: Float64Array; tailMs: number; rssMB: number; hwmMB: number; cpCpuS: number; etcdRssMB?: number; etcdCpuS?: number; workerCpuS: number; writerCpuS: number; otherCpuS: number; windowS: number; procs: number }

function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds all processes of the machine have used since boot (/proc/stat: all but idle and iowait). */
function machineBusyS(): number {
  const [user, nice, system, , , irq, softirq, steal] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** utime + stime of a process, in seconds (USER_HZ is 100 on Linux). */
function procCpuS(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function runStore(store: string, f: Flags, n: number): Promise<Result> {
  const [watchers, W, C, procs] = [Number(f.watchers), Number(f.writes), Number(f.concurrency), Number(f['watcher-procs'])];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
  live.add(async () => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync('node', [CONTROLPLANE_MAIN, 'init', '--data-dir', dir], { stdio: 'pipe' });
  let args = ['--store', 'sqlite'];
  const etcd = store === 'etcd' ? await startEtcd('pw-bench') : undefined;
  if (etcd) {
    live.add(() => etcd.stop());
    args = ['--store', 'etcd', '--etcd-endpoints', etcd.url, '--etcd-prefix', `/bench-${n}`];
  }
  const cp = await startControlPlane({ dir, args });
  live.add((hurry) => cp.stop(hurry ? 'SIGKILL' : 'SIGTERM'));
  const client = new ApiClient({ server: cp.url, token: cp.token });
  live.add(async () => client.close());
  await writeAll(client, 'bench-warmup', Math.min(WARMUP_WRITES, W), C);
  const workers = await startWorkers(cp.url, cp.token, watchers, procs, W);
  const cpu0 = procCpuS(cp.child.pid!);
  const etcdCpu0 = etcd ? procCpuS(etcd.pid) : 0;
  const [busy0, self0, t0] = [machineBusyS(), process.cpuUsage(), performance.now()];
  const w = await writeAll(client, NS, W, C);
  const results = await Promise.all(workers.map((child) => {
    const r = reply<{ samples: Float64Array[]; events: number; errors: string[]; lastRecv: string; cpuMs: number }>(child, 'result', DELIVERY_TIMEOUT_MS + 30_000);
    child.send({ op: 'finish', rvs: w.rvs, types: w.types });
    return r;
  }));
  const cpCpuS = procCpuS(cp.child.pid!) - cpu0;
  const etcdCpuS = etcd ? procCpuS(etcd.pid) - etcdCpu0 : undefined;
  const self = process.cpuUsage(self0);
  const workerCpuS = results.reduce((a, r) => a + r.cpuMs, 0) / 1000;
  const otherCpuS = machineBusyS() - busy0 - cpCpuS - (etcdCpuS ?? 0) - workerCpuS - (self.user + self.system) / 1e6;
  const errors = results.flatMap((r) => r.errors);
  if (errors.length) throw new Error(`${store}: watch delivery check failed:\n  ${errors.slice(0, 20).join('\n  ')}`);
  const events = results.reduce((a, r) => a + r.events, 0);
  if (events !== watchers * W) throw new Error(`${store}: ${events} events delivered, expected ${watchers} × ${W}`);
  const lat = new Float64Array(events);
  let at = 0;
  for (const s of results.flatMap((r) => r.samples)) {
    lat.set(s, at);
    at += s.length;
  }
  const lastRecv = results.reduce((a, r) => (BigInt(r.lastRecv) > a ? BigInt(r.lastRecv) : a), 0n);
  return {
    store, writes: W, writesPerS: W / (Number(w.endNs - w.startNs) / 1e9), events, lat: lat.sort(), ackMs: w.ackMs.slice().sort(), tailMs: Number(lastRecv - w.endNs) / 1e6,
    rssMB: procStatus(cp.child.pid!, 'VmRSS'), hwmMB: procStatus(cp.child.pid!, 'VmHWM'), cpCpuS, etcdRssMB: etcd ? procStatus(etcd.pid, 'VmRSS') : undefined, etcdCpuS,
    workerCpuS, writerCpuS: (self.user + self.system) / 1e6, otherCpuS: Math.max(0, otherCpuS), windowS: (performance.now() - t0) / 1000, procs: workers.length,
  };
}

// ---- report -------------------------------------------------------------------------------------

/** Nearest-rank percentile of sorted samples. */
const pct = (s: Float64Array, p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));

function machineLine(): string {
  const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  return `${baseMachine()}; load average at the end ${load}`;
}

function report(f: Flags, rs: Result[]): void {
  const W = Number(f.writes);
  const rows = [['store', 'writes', 'writes/s', 'events', 'p50 ms', 'p99 ms', 'max ms', 'RSS MB', 'peak RSS MB']];
  for (const r of rs) rows.push([r.store, String(r.writes), r.writesPerS.toFixed(0), String(r.events), fmt(pct(r.lat, 50)), fmt(pct(r.lat, 99)), fmt(r.lat[r.lat.length - 1]), r.rssMB.toFixed(0), r.hwmMB.toFixed(0)]);
  const out = [
    `podwire bench controlplane — ${f.watchers} watchers, ${W} pod writes (${Math.ceil(W / 2)} creates, then ${Math.floor(W / 2)} updates), ${Math.min(Number(f.concurrency), W)} in flight`,
    `machine: ${machineLine()}; ${new Date().toISOString().slice(0, 10)}`,
    `watchers in ${rs[0]?.procs ?? 0} child process${rs[0]?.procs === 1 ? '' : 'es'}, writer in the bench process; latency = event parsed by a watcher − write sent (CLOCK_MONOTONIC), over every watcher × event; every watcher got every write once, in resourceVersion order (verified)`,
    '',
    table(rows),
    '',
  ];
  const sq = rs.find((r) => r.store === 'sqlite');
  const et = rs.find((r) => r.store === 'etcd');
  if (sq && et) {
    const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    out.push(table([['ratio', 'writes/s', 'p50', 'p99', 'max', 'RSS'], ['etcd/sqlite', x(et.writesPerS, sq.writesPerS), x(pct(et.lat, 50), pct(sq.lat, 50)), x(pct(et.lat, 99), pct(sq.lat, 99)), x(et.lat[et.lat.length - 1], sq.lat[sq.lat.length - 1]), x(et.rssMB, sq.rssMB)]]), '');
  }
  for (const r of rs) {
    const etcd = r.etcdRssMB !== undefined ? `, etcd ${r.etcdCpuS!.toFixed(2)} s; etcd RSS ${r.etcdRssMB.toFixed(0)} MB` : '';
    out.push(`  ${r.store}: write round trip p50 ${fmt(pct(r.ackMs, 50))} ms, p99 ${fmt(pct(r.ackMs, 99))} ms; last event parsed ${fmt(r.tailMs)} ms after the last write returned`);
    out.push(`    CPU in the ${r.windowS.toFixed(1)} s from the first write to the watchers' reports: control plane ${r.cpCpuS.toFixed(2)} s, watcher processes ${r.workerCpuS.toFixed(2)} s, writer ${r.writerCpuS.toFixed(2)} s${etcd}; other processes on the machine ${r.otherCpuS.toFixed(2)} s (${Math.round((100 * r.otherCpuS) / r.windowS)}% of a core)`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

export async function run(f: Flags): Promise<void> {
  const stores = listFlag(String(f.stores), STORES, 'stores');
  if (stores.includes('etcd') && !haveEtcd()) throw new Error('etcd not installed (apt-get install etcd-server), or pass --stores sqlite');
  if (!fs.existsSync(CONTROLPLANE_MAIN)) throw new Error(`${CONTROLPLANE_MAIN} missing: run npm run build`);
  for (const s of SIGNALS) process.on(s, onSignal);
  const results: Result[] = [];
  try {
    for (const [n, store] of stores.entries()) {
      try {
        results.push(await runStore(store, f, n));
      } finally {
        await stopAll();
      }
      const r = results[results.length - 1];
      if (r) process.stderr.write(`  ${store.padEnd(6)} ${r.writesPerS.toFixed(0)} writes/s, delivery p50 ${fmt(pct(r.lat, 50))} ms, ${r.events} events verified\n`);
    }
    report(f, results);
  } finally {
    await stopAll(true);
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}
