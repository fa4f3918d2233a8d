// The service proxy benchmark: N ClusterIP services × 5 endpoints, nftables and iptables mode in the
// same run, one 2-node vxlan cluster per mode. node1: the client pod (relabelled app=client, so no
// endpoint); node2: the 5 echo pods. N−1 services select app=echo (80 → 8080); the N-th, bench-change,
// has no selector and Endpoints written here, so one change is one API write and one watch event.
// Both agents are stopped while services are created (on 2 cores they would slow the control plane);
// node2's stays stopped (its kernel state stays; it has no part in node1's NAT). Per size, ascending:
//   first sync: node1's rules of the mode removed (the backend's remove()), then its agent started
//     with N services and Endpoints in the API: its lastSync.ms (render + one nft / iptables-restore
//     transaction) and start → /v1/status showing N ports, 5N endpoints;
//   latency: in the client pod, CONNECTS sequential connects (after 100 unmeasured) to the middle
//     service's ClusterIP:80, connect() → end of the echo's answer; and to one pod IP:8080 (baseline);
//   one change: bench-change's Endpoints switched between 8080 and 8081 (where a second echo server
//     answers NAME-alt): write sent → start of the first connection answered by the new port (a
//     prober in the client pod, one connection every 2 ms; CLOCK_MONOTONIC in both processes);
//   RSS: VmRSS / VmHWM of node1's agent after the changes, and its V8 heap in use (its status);
//   services read: GET /v1/debug/services (podwire services' counters) for the middle service, then
//     for all, after RSS is taken; node1's RSS again after them;
//   restart sync: the agent stopped and started again, the kernel holding exactly its rules.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { CommandRunner } from '../src/exec/runner.js';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { machine as baseMachine, sleep, table } from './util.js';
import type { Endpoints, Service } from '../src/api/objects.js';
import { listNetns } from '../src/netns/netns.js';
import { addPod, agentStatus, BIN, createCluster, destroyCluster, ECHO_PORT, restartAgent, type ClusterNode, type ClusterPod, type LabCluster } from '../src/lab/cluster.js';
import { registerCleanup } from '../src/lab/cleanup.js';
import type { Lab } from '../src/lab/lab.js';
import { newLabPrefix } from '../src/lab/names.js';
import { isAlive, killTracked, procStartTime, type TrackedProc } from '../src/lab/procs.js';
import { IptablesProxyBackend } from '../src/proxy/iptables/backend.js';
import { NftProxyBackend } from '../src/proxy/nft/backend.js';
import { ApiClient } from '../src/client/api-client.js';

export const summary = 'N ClusterIP services × 5 endpoints, nftables vs iptables mode: connect latency p50/p99, full sync, one change to the kernel, agent RSS';

export const flags: FlagSpecs = {
  sizes: { type: 'string', default: '10,1000,10000', help: 'service counts, ascending (default 10,1000,10000)' },
  connects: { type: 'int', default: 2000, min: 10, max: 100_000, help: 'measured connects per latency figure (default 2000)' },
  modes: { type: 'string', default: 'nftables,iptables', help: 'nftables, iptables or both (default nftables,iptables)' },
  changes: { type: 'int', default: 5, min: 1, max: 50, help: 'one-service changes timed per size (default 5)' },
  'sync-timeout': { type: 'int', default: 120, min: 10, max: 3600, help: 'seconds a sync may take; also given up after 2 failed syncs (default 120)' },
};

export const MODES = ['nftables', 'iptables'] as const;
type Mode = (typeof MODES)[number];
const ALT_PORT = 8081;
const TARGETS = { latency: 1.1, fullSyncMs: 2000, changeMs: 50, rssMB: 150 };
const now = () => performance.now();
const say = (line: string) => process.stderr.write(`  ${line}\n`);

export function parseSizes(raw: string): number[] {
  const n = raw.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : NaN));
  if (n.some((x, i) => !(x >= 2 && x <= 20_000) || (i > 0 && x <= n[i - 1]))) throw new RangeError(`--sizes: ascending integers, each 2..20000, got ${JSON.stringify(raw)}`);
  return n;
}

export function parseModes(raw: string): Mode[] {
  const items = [...new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))];
  if (!items.length || items.some((m) => !(MODES as readonly string[]).includes(m))) throw new RangeError(`--modes: ${JSON.stringify(raw)} (choose from ${MODES.join(',')})`);
  return items as Mode[];
}

export function check(f: Flags): void {
  parseSizes(String(f.sizes));
  parseModes(String(f.modes));
}

// ---- processes: CPU accounting, an agent and its children ---------------------------------------

function statFields(pid: number | 'self'): string[] {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** CPU ticks (USER_HZ 100) of this process and the lab's live ones, each with what it reaped. */
function ourTicks(lab: Lab): number {
  const ticks = (pid: number | 'self') => statFields(pid).slice(11, 15).reduce((a, x) => a + Number(x), 0);
  let t = ticks('self');
  for (const p of lab.state.procs) {
    try {
      if (isAlive(p)) t += ticks(p.pid);
    } catch { /* exited in between: in our cutime once reaped */ }
  }
  return t;
}

/** CPU ticks of all processes (/proc/stat user + nice + system; irq/softirq, mostly our own packets, left out). */
function machineTicks(): number {
  const [user, nice, system] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return user + nice + system;
}

type CpuMark = { machine: number; ours: number; at: number };
const cpuMark = (lab: Lab): CpuMark => ({ machine: machineTicks(), ours: ourTicks(lab), at: now() });
/** % of one core used since the mark by processes that are not this benchmark's. */
const otherPct = (lab: Lab, m: CpuMark) => Math.max(0, (machineTicks() - m.machine - (ourTicks(lab) - m.ours)) / ((now() - m.at) / 1000));

/** Every descendant of the given processes (an agent's nft / iptables-restore), from /proc. */
function descendants(roots: number[]): TrackedProc[] {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const ppid = Number(statFields(Number(d))[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
    } catch { /* gone */ }
  }
  const out: TrackedProc[] = [];
  for (let todo = [...roots]; todo.length;) {
    for (const pid of kids.get(todo.pop()!) ?? []) {
      const startTime = procStartTime(pid);
      if (startTime !== undefined) out.push({ pid, startTime, what: 'descendant' });
      todo.push(pid);
    }
  }
  return out;
}

/** SIGKILL the lab's processes and all they started (a killed agent's iptables-restore would run on). */
function killAll(lab: Lab): void {
  const tracked = lab.state.procs.filter(isAlive);
  for (const p of [...tracked, ...descendants(tracked.map((x) => x.pid))]) killTracked(p);
}

/** SIGTERM (the agent leaves the kernel state as it is); SIGKILL, with its children, after 25 s. */
async function stopAgent(node: ClusterNode): Promise<void> {
  const child = node.agent;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  if (await Promise.race([gone.then(() => true), sleep(25_000).then(() => false)])) return;
  const tree = descendants([child.pid!]);
  child.kill('SIGKILL');
  tree.forEach((p) => killTracked(p));
  await gone;
}

function memMB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } catch {
    return NaN; // the agent is gone
  }
}

/** The mode's remove() in node1's netns (agent stopped), without the agent runner's 1 MiB output limit. */
function clearRules(node: ClusterNode, mode: Mode): void {
  const runner: CommandRunner = {
    run(cmd, args, input) {
      const r = spawnSync('ip', ['netns', 'exec', node.netns, cmd, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 30, timeout: 600_000 });
      return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr || String(r.error ?? '') };
    },
  };
  (mode === 'nftables' ? new NftProxyBackend(runner) : new IptablesProxyBackend(runner)).remove();
}

// ---- the cluster ---------------------------------------------------------------------------------

interface Setup { client: ClusterPod; pods: ClusterPod[]; changeIp: string; changeEp: Endpoints; ips: string[] }
const svcRef = { plural: 'services', namespace: 'default' };
const epRef = { plural: 'endpoints', namespace: 'default' };
const serviceBody = (name: string, selector?: Record<string, string>) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name },
  spec: { type: 'ClusterIP', ...(selector ? { selector } : {}), ports: [{ name: 'http', port: 80, targetPort: ECHO_PORT, protocol: 'TCP' }] },
});
const changeEndpoints = (pods: ClusterPod[], port: number, rv?: string) => ({
  apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'bench-change', ...(rv ? { resourceVersion: rv } : {}) },
  subsets: [{ addresses: pods.map((p) => ({ ip: p.ip, nodeName: p.node })), ports: [{ name: 'http', port, protocol: 'TCP' }] }],
});

/** echo.js in a lab netns, killed after timeoutMs; `done`: its stdout lines once it exited 0. */
function echo(lab: Lab, netns: string, args: string[], timeoutMs: number, onLine?: (line: string) => void): { child: ChildProcess; done: Promise<string[]> } {
  const child = lab.spawn(netns, process.execPath, [BIN.echo, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const done = new Promise<string[]>((resolve, reject) => {
    const [lines, timer] = [[] as string[], setTimeout(() => child.kill('SIGKILL'), timeoutMs)];
    let [buf, err] = ['', ''];
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      for (buf += d; buf.includes('\n'); buf = buf.slice(buf.indexOf('\n') + 1)) {
        lines.push(buf.slice(0, buf.indexOf('\n')));
        onLine?.(lines[lines.length - 1]);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(lines);
      else reject(new Error(`echo.js ${args[0]} in ${netns} exited ${code ?? signal}: ${err.trim().slice(0, 300)}`));
    });
  });
  return { child, done };
}

/** 4 more pods on node2, the client relabelled, echo servers on 8081, bench-change and its Endpoints. */
async function setup(c: LabCluster): Promise<Setup> {
  // The benchmark's N services are its own: the control plane's kube-system/kube-dns (backed by
  // every node's DNS server) would add two ports to every count the measurements wait for.
  await c.admin.delete({ plural: 'services', namespace: 'kube-system', name: 'kube-dns' });
  const node2 = c.nodes[1];
  for (let i = 2; i <= 5; i++) c.pods.push(await addPod(c.lab, node2, i));
  const client = c.pods.find((p) => p.node === c.nodes[0].name)!;
  const pods = c.pods.filter((p) => p.node === node2.name);
  await c.admin.patch({ plural: 'pods', namespace: 'default', name: client.name }, { metadata: { labels: { app: 'client' } } });
  for (const p of pods) {
    const alt = c.lab.spawn(p.netns, process.execPath, [BIN.echo, 'serve', String(ALT_PORT), `${p.name}-alt`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve, reject) => {
      alt.stdout!.once('data', () => resolve());
      alt.once('exit', (code) => reject(new Error(`echo server on ${ALT_PORT} in ${p.netns} exited (${code})`)));
    });
  }
  const svc = await c.admin.create<Service>(svcRef, serviceBody('bench-change'));
  const changeEp = await c.admin.create<Endpoints>(epRef, changeEndpoints(pods, ECHO_PORT));
  return { client, pods, changeIp: svc.spec.clusterIP!, changeEp, ips: [] };
}

/** Services svc-00000… selecting app=echo until there are `count` (16 creates in flight), and their Endpoints. */
async function grow(c: LabCluster, st: Setup, count: number): Promise<void> {
  const [from, t0] = [st.ips.length, now()];
  let next = from;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) {
      st.ips[i] = (await c.admin.create<Service>(svcRef, serviceBody(`svc-${String(i).padStart(5, '0')}`, { app: 'echo' }))).spec.clusterIP!;
      if ((i + 1) % 2000 === 0) say(`  ${i + 1} services created`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  if (count > from) say(`created ${count - from} services in ${((now() - t0) / 1000).toFixed(1)} s (${((count - from) / ((now() - t0) / 1000)).toFixed(0)}/s)`);
  for (const deadline = now() + 60_000 + count * 20; ; await sleep(1000)) {
    const eps = (await c.admin.list<Endpoints>(epRef)).items;
    const full = eps.filter((e) => e.metadata.name.startsWith('svc-') && (e.subsets ?? []).reduce((n, s) => n + (s.addresses?.length ?? 0), 0) === 5).length;
    if (full === count) return;
    if (now() > deadline) throw new Error(`endpoints controller: ${full} of ${count} Endpoints list the 5 pods after ${((now() - t0) / 1000).toFixed(0)} s`);
  }
}

// ---- measurements ----------------------------------------------------------------------------------

interface ProxySync { at: string; scope: string; changed: number; bytes: number; ms: number; error?: string }
interface Synced { ok: boolean; wallMs: number; sync?: ProxySync; error?: string }
const lastSync = async (node: ClusterNode) => ((await agentStatus(node).catch(() => ({}))) as { proxy?: { servicePorts: number; endpoints: number; lastSync?: ProxySync } }).proxy;

/** Starts node1's agent; waits until its status shows n ports and 5n endpoints without an error. */
async function startSynced(c: LabCluster, node: ClusterNode, n: number, timeoutS: number): Promise<Synced> {
  const t0 = now();
  restartAgent(c, node);
  for (const failed = new Set<string>(); ; await sleep(25)) {
    const p = await lastSync(node);
    const s = p?.lastSync;
    if (s && !s.error && p.servicePorts === n && p.endpoints === 5 * n) return { ok: true, wallMs: now() - t0, sync: s };
    if (s?.error) failed.add(s.at);
    if (failed.size >= 2 || now() - t0 > timeoutS * 1000) {
      const why = failed.size >= 2 ? `2 failed syncs, the last: ${s!.error}` : `not synced within ${timeoutS} s${s?.error ? ` (last error: ${s.error})` : ''}`;
      return { ok: false, wallMs: now() - t0, error: why.slice(0, 300) };
    }
  }
}

interface Latency { p50: number; p99: number; connectP50: number; podP50: number }
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] / 1000;

async function latency(c: LabCluster, st: Setup, clusterIp: string, connects: number): Promise<Latency> {
  const one = async (to: string) => {
    const [line] = await echo(c.lab, st.client.netns, ['latency', String(connects), String(Math.min(100, connects)), '2000', to], 60_000 + connects * 100).done;
    const r = JSON.parse(line) as { ok: number; failed: number; errors: object; connectUs: number[]; answerUs: number[] };
    if (r.ok < connects * 0.99) throw new Error(`latency to ${to}: ${r.failed} of ${connects} connects failed: ${JSON.stringify(r.errors)}`);
    return { answer: r.answerUs.sort((a, b) => a - b), connect: r.connectUs.sort((a, b) => a - b) };
  };
  const svc = await one(`${clusterIp}:80`);
  const pod = await one(`${st.pods[0].ip}:${ECHO_PORT}`);
  return { p50: pct(svc.answer, 50), p99: pct(svc.answer, 99), connectP50: pct(svc.connect, 50), podP50: pct(pod.answer, 50) };
}

/** Rejects once the agent reports 2 failed syncs started after `since` (epoch ms); stop.done ends it. */
async function syncFailures(node: ClusterNode, since: number, stop: { done: boolean }): Promise<never> {
  for (const failed = new Set<string>(); !stop.done; await sleep(200)) {
    const s = (await lastSync(node))?.lastSync;
    if (s?.error && Date.parse(s.at) >= since) failed.add(s.at);
    if (failed.size >= 2) throw new Error(`the agent's syncs fail: ${s!.error!.slice(0, 300)}`);
  }
  return new Promise<never>(() => undefined);
}

interface Change { ms: number; resolutionMs: number; agentMs: number }

/** bench-change's Endpoints to the other port: API write sent → first connection answered there. */
async function change(c: LabCluster, st: Setup, k: number, timeoutS: number): Promise<Change> {
  const toAlt = st.changeEp.subsets![0].ports![0].port === ECHO_PORT;
  let [ready, onReady] = [false, () => undefined as void];
  const isReady = new Promise<void>((r) => (onReady = r));
  const probe = echo(c.lab, st.client.netns, ['switch', String(timeoutS * 1000), '2', `${st.changeIp}:80`, toAlt ? '-alt' : '!-alt'], timeoutS * 1000 + 10_000, (l) => l === 'ready' && ((ready = true), onReady()));
  await Promise.race([isReady, probe.done]);
  if (!ready) throw new Error(`change ${k + 1}: the prober never saw the old port answer: ${(await probe.done).join(' ')}`);
  const [wall0, t0, stop] = [Date.now(), process.hrtime.bigint(), { done: false }];
  st.changeEp = await c.admin.update<Endpoints>({ ...epRef, name: 'bench-change' }, changeEndpoints(st.pods, toAlt ? ALT_PORT : ECHO_PORT, st.changeEp.metadata.resourceVersion));
  const lines = await Promise.race([probe.done, syncFailures(c.nodes[0], wall0, stop)]).catch((e: Error) => {
    probe.child.kill('SIGKILL');
    throw new Error(`change ${k + 1}: ${e.message}`);
  }).finally(() => (stop.done = true));
  const r = JSON.parse(lines.find((l) => l.startsWith('{'))!) as { ok: boolean; hitNs: string; prevNs: string; error?: string };
  if (!r.ok) throw new Error(`change ${k + 1}: ${r.error}`);
  return { ms: Number(BigInt(r.hitNs) - t0) / 1e6, resolutionMs: Number(BigInt(r.hitNs) - BigInt(r.prevNs)) / 1e6, agentMs: (await lastSync(c.nodes[0]))?.lastSync?.ms ?? NaN };
}

export interface Row {
  mode: Mode; n: number; first?: Synced; restart?: Synced; lat?: Latency; changes: Change[];
  rssMB?: number; hwmMB?: number; heapMB?: number; otherPct?: number; latOtherPct?: number; error?: string;
  /** GET /v1/debug/services on node1's agent: every service (one ruleset listing), one service (its own chains/elements); RSS after them. */
  readAllMs?: number; readOneMs?: number; rssAfterReadMB?: number; hwmAfterReadMB?: number;
}

/** Wall ms of one GET of node1's debug services route (podwire services' counters). */
async function timedServicesRead(node: ClusterNode, query: string): Promise<number> {
  const c = new ApiClient({ server: 'http://podwire-agent', socketPath: node.socket, timeoutMs: 60_000 });
  const t0 = now();
  try {
    const body = await c.request<{ services: unknown[] }>('GET', `/v1/debug/services${query}`);
    if (!Array.isArray(body.services) || body.services.length === 0) throw new Error(`GET /v1/debug/services${query}: no services in the answer`);
    return now() - t0;
  } finally {
    c.close();
  }
}

async function latencyAndChanges(c: LabCluster, st: Setup, row: Row, f: Flags): Promise<void> {
  const mark = cpuMark(c.lab);
  row.lat = await latency(c, st, st.ips[Math.floor((row.n - 1) / 2)], Number(f.connects));
  row.latOtherPct = otherPct(c.lab, mark);
  say(`${row.mode} N=${row.n}: latency p50 ${row.lat.p50.toFixed(3)} ms, p99 ${row.lat.p99.toFixed(3)} ms (pod IP p50 ${row.lat.podP50.toFixed(3)} ms)`);
  for (let k = 0; k < Number(f.changes); k++, await sleep(100)) row.changes.push(await change(c, st, k, Number(f['sync-timeout'])));
  say(`${row.mode} N=${row.n}: one change ${row.changes.map((x) => x.ms.toFixed(0)).join(', ')} ms`);
}

const syncText = (s: Synced) => (s.ok ? `${s.sync!.ms} ms (agent), ${s.wallMs.toFixed(0)} ms start → synced` : `FAILED after ${(s.wallMs / 1000).toFixed(0)} s: ${s.error}`);

async function runSize(c: LabCluster, st: Setup, row: Row, f: Flags): Promise<void> {
  const [node, n, timeoutS] = [c.nodes[0], row.n, Number(f['sync-timeout'])];
  await grow(c, st, n - 1);
  clearRules(node, row.mode);
  const mark = cpuMark(c.lab);
  row.first = await startSynced(c, node, n, timeoutS);
  say(`${row.mode} N=${n}: first sync ${syncText(row.first)}`);
  if (row.first.ok) await latencyAndChanges(c, st, row, f).catch((e: Error) => (row.error = e.message));
  [row.rssMB, row.hwmMB] = [memMB(node.agent.pid!, 'VmRSS'), memMB(node.agent.pid!, 'VmHWM')];
  row.heapMB = ((await agentStatus(node).catch(() => ({}))) as { process?: { heapUsedMB: number } }).process?.heapUsedMB;
  if (row.first.ok) {
    try {
      row.readOneMs = await timedServicesRead(node, `?namespace=default&name=svc-${String(Math.floor((n - 1) / 2)).padStart(5, '0')}`);
      row.readAllMs = await timedServicesRead(node, '');
      [row.rssAfterReadMB, row.hwmAfterReadMB] = [memMB(node.agent.pid!, 'VmRSS'), memMB(node.agent.pid!, 'VmHWM')];
      say(`${row.mode} N=${n}: services read: one ${row.readOneMs.toFixed(0)} ms, all ${row.readAllMs.toFixed(0)} ms; RSS after ${row.rssAfterReadMB} MB (peak ${row.hwmAfterReadMB})`);
    } catch (e) {
      row.error = `services read: ${(e as Error).message}`;
    }
  }
  if (row.first.ok) {
    await stopAgent(node);
    row.restart = await startSynced(c, node, n, timeoutS);
    say(`${row.mode} N=${n}: restart sync ${syncText(row.restart)}`);
  }
  row.otherPct = otherPct(c.lab, mark);
  await stopAgent(node);
}

const prefixes: string[] = [];

async function runMode(mode: Mode, sizes: number[], f: Flags): Promise<Row[]> {
  const prefix = newLabPrefix();
  prefixes.push(prefix);
  say(`${mode}: cluster ${prefix} (2 nodes, vxlan, --proxy-mode ${mode})`);
  const c = await createCluster({ nodes: 2, backend: 'vxlan', podsPerNode: 1, proxyMode: mode, prefix });
  const guard = registerCleanup(() => killAll(c.lab)); // runs before the lab's own teardown, also on SIGINT/SIGTERM
  const rows: Row[] = sizes.map((n) => ({ mode, n, changes: [] }));
  try {
    const st = await setup(c);
    await Promise.all(c.nodes.map(stopAgent));
    for (const row of rows) {
      await runSize(c, st, row, f);
      if (!row.first?.ok) break; // a larger size will not sync either
    }
    for (const row of rows) if (!row.first) row.error = 'not run: a smaller size did not sync';
  } finally {
    guard.run();
    const leaks = destroyCluster(c);
    if (leaks.length) process.stderr.write(`bench services: ${mode}: left behind: ${leaks.join(', ')}\n`);
  }
  return rows;
}

// ---- report ----------------------------------------------------------------------------------------

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
const num = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !Number.isFinite(a / b) ? '—' : `${(a / b).toFixed(2)}×`);
const syncMs = (s: Synced | undefined) => (s?.ok ? s.sync!.ms : undefined);
const syncCell = (s: Synced | undefined) => (s === undefined ? '—' : s.ok ? num(s.sync!.ms) : 'FAILED');
const changeMs = (r: Row | undefined) => (r?.changes.length ? median(r.changes.map((c) => c.ms)) : undefined);
const pctCell = (x: number | undefined) => (x === undefined ? '—' : `${x.toFixed(0)}%`);

function tables(rows: Row[]): string[] {
  const main = [['mode', 'N', 'p50 ms', 'p99 ms', 'full sync ms', 'one change ms', 'RSS MB']];
  const detail = [['mode', 'N', 'connect p50', 'pod IP p50', 'start→synced', 'sync bytes', 'restart sync', 'change max', 'change agent', 'resolution', 'peak RSS', 'heap', 'other CPU', 'in latency']];
  const reads = [['mode', 'N', 'services read, one ms', 'services read, all ms', 'RSS after MB', 'peak RSS after MB']];
  for (const r of rows) {
    const ch = (f: (c: Change) => number, agg: (xs: number[]) => number, d = 0) => (r.changes.length ? num(agg(r.changes.map(f)), d) : '—');
    main.push([r.mode, String(r.n), num(r.lat?.p50, 3), num(r.lat?.p99, 3), syncCell(r.first), num(changeMs(r)), num(r.rssMB)]);
    detail.push([r.mode, String(r.n), num(r.lat?.connectP50, 3), num(r.lat?.podP50, 3), r.first?.ok ? num(r.first.wallMs) : '—', r.first?.ok ? String(r.first.sync!.bytes) : '—', syncCell(r.restart),
      ch((c) => c.ms, (xs) => Math.max(...xs)), ch((c) => c.agentMs, median), ch((c) => c.resolutionMs, (xs) => Math.max(...xs), 1), num(r.hwmMB), num(r.heapMB), pctCell(r.otherPct), pctCell(r.latOtherPct)]);
    reads.push([r.mode, String(r.n), num(r.readOneMs), num(r.readAllMs), num(r.rssAfterReadMB), num(r.hwmAfterReadMB)]);
  }
  return [table(main), '', table(detail), '', table(reads)];
}

function ratioTable(rows: Row[], sizes: number[], modes: Mode[]): string {
  const get = (m: Mode, n: number) => rows.find((r) => r.mode === m && r.n === n);
  const out = [['ratio', ...sizes.map((n) => `N=${n}`)]];
  for (const m of modes) {
    out.push([`${m} p50 / p50 at N=${sizes[0]}`, ...sizes.map((n) => ratio(get(m, n)?.lat?.p50, get(m, sizes[0])?.lat?.p50))]);
    out.push([`${m} p99 / p99 at N=${sizes[0]}`, ...sizes.map((n) => ratio(get(m, n)?.lat?.p99, get(m, sizes[0])?.lat?.p99))]);
  }
  type Pick = [string, (r: Row | undefined) => number | undefined];
  const picks: Pick[] = [['p50', (r) => r?.lat?.p50], ['p99', (r) => r?.lat?.p99], ['full sync', (r) => syncMs(r?.first)], ['one change', changeMs], ['RSS', (r) => r?.rssMB]];
  if (modes.length === 2) for (const [what, f] of picks) out.push([`iptables / nftables ${what}`, ...sizes.map((n) => ratio(f(get('iptables', n)), f(get('nftables', n))))]);
  return table(out);
}

/** The issue's four nftables targets, judged on the rows N=10 and N=10000; a missing figure is NOT met. */
export function verdicts(rows: Row[]): string[] {
  const small = rows.find((r) => r.mode === 'nftables' && r.n === 10);
  const big = rows.find((r) => r.mode === 'nftables' && r.n === 10_000);
  if (!big) return ['targets (nftables): not evaluated (they need --modes with nftables and --sizes with 10 and 10000)'];
  const v = (ok: boolean, what: string, detail: string) => `target ${what}: ${ok ? 'met' : 'NOT met'} (${detail})`;
  const [l10, l10k] = [small?.lat, big.lat];
  const r50 = l10 && l10k ? l10k.p50 / l10.p50 : undefined;
  const worst = Math.max(syncMs(big.first) ?? Infinity, syncMs(big.restart) ?? Infinity);
  const ch = changeMs(big);
  return [
    v(r50 !== undefined && r50 <= TARGETS.latency, `latency at 10k ≤ ${TARGETS.latency}× latency at 10 (p50)`, l10 && l10k ? `${r50!.toFixed(2)}×: p50 ${l10k.p50.toFixed(3)} vs ${l10.p50.toFixed(3)} ms; p99 ${(l10k.p99 / l10.p99).toFixed(2)}×` : 'not measured'),
    v(worst < TARGETS.fullSyncMs, `full sync of 10k < ${TARGETS.fullSyncMs} ms (first and restart)`, [['first', big.first], ['restart', big.restart]].map(([w, x]) => `${w} ${syncCell(x as Synced)}${(x as Synced)?.ok ? ' ms' : ''}`).join(', ')),
    v(ch !== undefined && ch < TARGETS.changeMs, `one change at 10k < ${TARGETS.changeMs} ms (median)`, ch === undefined ? 'not measured' : `median ${ch.toFixed(0)} ms, max ${Math.max(...big.changes.map((c) => c.ms)).toFixed(0)} ms`),
    v(big.rssMB !== undefined && big.rssMB < TARGETS.rssMB, `agent RSS at 10k < ${TARGETS.rssMB} MB`, `${num(big.rssMB)} MB, peak ${num(big.hwmMB)} MB`),
  ];
}

function machineLine(): string {
  const ver = (cmd: string) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).stdout?.trim().split('\n')[0] || `${cmd} missing`;
  return `${baseMachine()}, ${ver('nft')}, ${ver('iptables')}`;
}

export async function run(f: Flags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces (nothing outside them is touched)');
  execFileSync('nft', ['--version'], { stdio: 'ignore' });
  const [sizes, modes] = [parseSizes(String(f.sizes)), parseModes(String(f.modes))];
  const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
  const [started, load0, m0, t0] = [new Date().toISOString(), load(), machineTicks(), now()];
  const rows: Row[] = [];
  for (const mode of modes) rows.push(...(await runMode(mode, sizes, f)));
  const busy = (machineTicks() - m0) / ((now() - t0) / 1000);
  const left = listNetns().filter((n) => prefixes.some((p) => n.startsWith(p)));
  const notes = rows.flatMap((r) => [[r.first, 'first'], [r.restart, 'restart']].flatMap(([s, what]) => (s && !(s as Synced).ok ? [`  ${r.mode} N=${r.n}: ${what} sync ${syncText(s as Synced)}`] : []))
    .concat(r.error ? [`  ${r.mode} N=${r.n}: ${r.error}`] : []));
  process.stdout.write([
    `podwire bench services — N ClusterIP services × 5 endpoints (N = ${sizes.join(', ')}), modes ${modes.join(', ')}, ${f.connects} connects per latency figure, ${f.changes} changes per size`,
    `machine: ${machineLine()}; ${started.slice(0, 10)}; load average at the start ${load0}, at the end ${load()}; the whole machine was ${busy.toFixed(0)}% of a core busy over the ${((now() - t0) / 1000).toFixed(0)} s run`,
    'latency: client pod (node1) → ClusterIP:80 of the middle service (5 echo pods on node2, vxlan), connect() → end of the answer; full sync: node1 agent lastSync.ms, started with N services present and none of its rules in the kernel; one change: Endpoints write → first connection answered by the new port (median); RSS: node1 agent VmRSS (heap: V8 heap in use, from its status); other CPU: % of a core used by processes not of this run, over the size / during the latency runs',
    '', ...tables(rows), '', ratioTable(rows, sizes, modes), '', ...verdicts(rows), ...notes, '',
    left.length ? `cleanup: LEFT BEHIND ${left.join(' ')}` : `cleanup: ${prefixes.length} clusters created and removed (${prefixes.join(' ')}), no namespace of theirs left`,
  ].join('\n') + '\n');
  if (left.length) throw new Error(`namespaces left behind: ${left.join(' ')}`);
}
