// The CNI benchmark: N pods ADDed then DELeted one at a time, as a runtime does, by podwire and by
// the reference bridge+host-local (/usr/lib/cni), with the same config, ipMasq off and on, in the
// same run. Every implementation works in its own fresh host netns (the plugin process runs inside
// it); the pods' netns are created before the clock starts. The two are interleaved pod by pod so
// a drift of the machine's load hits both alike. The work is verified after each phase (N ports on
// cni0 and N reservations with the pod IPs on the pods' eth0, masquerade rules when on; then none),
// so a figure never comes from a run that did nothing. Also measured: the process floor (node's
// start, podwire's VERSION, the reference's VERSION, node + podwire's ADD module graph).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { listFlag, machine as baseMachine, sleep, table } from './util.js';
import { renderNftMasq } from '../src/agent/masq/render.js';
import { delsSettled } from '../test/lib/cni-agent.js';
import { createNetns, deleteNetns, listNetns, netnsExists, netnsPath } from '../src/netns/netns.js';
import { bridgePorts, describe, inetAddrs, invokePlugin, netConf, PODWIRE, PODWIRE_CNI_MAIN, PODWIRE_HOSTLOCAL, populatePluginDir, REFERENCE, reservations, veths, type Variant } from '../test/lib/cni.js';

export const summary = 'N pods ADD then DEL, podwire vs reference bridge+host-local, ipMasq off and on (p50/p99 and ratios)';

export const flags: FlagSpecs = {
  pods: { type: 'int', default: 100, min: 1, max: 250, help: 'pods per implementation and masq setting (default 100; one /24)' },
  masq: { type: 'string', default: 'off,on', help: 'ipMasq settings to run: off, on or off,on (default off,on)' },
  concurrency: { type: 'int', default: 1, min: 1, max: 100, help: 'CNI commands in flight at once (default 1: one after another, implementations interleaved pod by pod; N > 1: each implementation alone, N workers, as a runtime starting many pods)' },
  repeat: { type: 'int', default: 1, min: 1, max: 20, help: 'runs of the whole measurement, the implementations\' order alternating; with 2 or more, the ratios are the medians of the per-run ratios (default 1)' },
  'fast-masq': { type: 'enum', choices: ['node', 'pod'], default: 'node', help: 'podwire-fast with ipMasq on: node (the agent masquerades the node: subnet.env PODWIRE_IPMASQ=true and its one node-level rule, no per-pod work) or pod (a config with ipMasq: true and no agent subnet.env: one nft transaction per pod) (default node)' },
  impls: { type: 'string', default: 'podwire-fast,podwire,reference', help: 'podwire-fast (the native client through an agent\'s CNI server), podwire (the Node plugin, also the fallback), podwire+host-local, reference (default podwire-fast,podwire,reference)' },
};

const IMPLS: Record<string, Variant> = { 'podwire-fast': PODWIRE, podwire: PODWIRE, 'podwire+host-local': PODWIRE_HOSTLOCAL, reference: REFERENCE };
/** The native client (scripts/bundle.js builds it) and the agent side of its fast path without the rest of an agent. */
const CLIENT = path.join(path.dirname(PODWIRE_CNI_MAIN), 'podwire-cni-client');
const CNI_SERVER_CHILD = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'test', 'lib', 'cni-agent-child.js');
// Namespaces and temp dirs: pw-cnibench-*, not pw-bench-*, so this run and the netlink bench's smoke
// test (which checks that no pw-bench-* netns is left) can run at the same time.
export const PREFIX = 'pw-cnibench-';
const SETTLE_MS = 300; // let the kernel finish setting up fresh namespaces before the clock starts
const FLOOR_RUNS = 15;

export function check(f: Flags): void {
  listFlag(String(f.masq), ['off', 'on'], 'masq');
  listFlag(String(f.impls), Object.keys(IMPLS), 'impls');
}

// ---- namespaces and temp dirs: always removed, also on SIGINT/SIGTERM/SIGHUP ------------------

const live = { netns: new Set<string>(), dirs: new Set<string>(), children: new Set<ChildProcess>() };

function newNetns(label: string, tag: string): string {
  const name = `${PREFIX}${tag}-${label}`;
  createNetns(name);
  live.netns.add(name);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

function dropAll(): void {
  // The CNI servers this run started (by their PIDs), before their namespaces go.
  for (const child of [...live.children]) {
    live.children.delete(child);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const name of [...live.netns]) {
    live.netns.delete(name);
    try {
      if (netnsExists(name)) deleteNetns(name);
    } catch (err) {
      process.stderr.write(`bench: could not delete netns ${name}: ${(err as Error).message}; run: ip netns del ${name}\n`);
    }
  }
  for (const dir of [...live.dirs]) {
    live.dirs.delete(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function onSignal(signal: NodeJS.Signals): void {
  dropAll();
  process.stderr.write(`\nbench cni: interrupted by ${signal}; bench namespaces removed\n`);
  process.exit(128 + (os.constants.signals[signal] ?? 1));
}
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

// ---- one implementation, one masq setting ------------------------------------------------------

interface Run {
  impl: string;
  variant: Variant;
  masq: boolean;
  host: string;
  dataDir: string;
  conf: Record<string, any>;
  pods: string[]; // netns names
  /** The CNI_PATH dir: the native client as `podwire` for podwire-fast. */
  bin: string;
  results: any[];
  addMs: number[];
  delMs: number[];
  /** podwire-fast: resolves once the CNI server has no DEL pending (its fast DELs finish after answering). */
  settled?: () => Promise<void>;
  /** ipMasq on through the agent's node-level rule (subnet.env PODWIRE_IPMASQ=true), not per pod. */
  nodeMasq?: boolean;
  /** podwire-fast with N in flight: after the DEL phase's last answer, until every veth was deleted and IP released. */
  delSettleMs?: number;
  /** Wall time of the whole ADD and DEL phase (what a runtime starting N pods at once waits). */
  addWallMs?: number;
  delWallMs?: number;
}

const cid = (i: number) => `bench${String(i).padStart(4, '0')}`;

function invokeFor(r: Run, command: string, i: number, config: object) {
  const pod = i < 0 ? r.pods[r.pods.length - 1] : r.pods[i];
  return invokePlugin({ pluginDir: r.bin, hostNetns: r.host, type: r.variant.type, command, config, containerId: i < 0 ? 'benchwarm' : cid(i), netns: netnsPath(pod), ifname: 'eth0', launcher: 'setns', timeoutMs: 60_000 });
}

async function step(r: Run, command: 'ADD' | 'DEL', i: number): Promise<number> {
  const config = command === 'DEL' && r.results[i] ? { ...r.conf, prevResult: r.results[i] } : r.conf;
  const res = await invokeFor(r, command, i, config);
  if (res.exitCode !== 0) throw new Error(`${r.impl} ipMasq ${r.masq ? 'on' : 'off'}: ${command} pod ${i}: ${describe(res)}`);
  if (command === 'ADD') r.results[i] = res.result;
  return res.ms;
}

function rulesetText(host: string): string {
  const nft = spawnSync('ip', ['netns', 'exec', host, 'nft', 'list', 'ruleset'], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout ?? '';
  const ipt = spawnSync('ip', ['netns', 'exec', host, 'iptables-save', '-t', 'nat'], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout ?? '';
  return nft + ipt;
}

const ipIn = (text: string, ip: string) => new RegExp(`(^|[^0-9.])${ip.replace(/\./g, '\\.')}(?![0-9])`).test(text);

function verifyAdded(r: Run, n: number): void {
  const problems: string[] = [];
  const ports = bridgePorts(r.host).filter((l) => l.linkinfo?.info_kind === 'veth');
  if (ports.length !== n) problems.push(`${ports.length} veths on cni0, expected ${n}`);
  const ips = r.results.slice(0, n).map((x) => String(x?.ips?.[0]?.address ?? ''));
  if (new Set(ips).size !== n) problems.push(`${new Set(ips).size} distinct IPs in the results, expected ${n}`);
  const held = new Set(reservations(r.dataDir).map((x) => x.ip));
  if (held.size !== n || ips.some((a) => !held.has(a.split('/')[0]))) problems.push(`${held.size} reservation files, not matching the ${n} result IPs`);
  const rules = r.masq ? rulesetText(r.host) : '';
  if (r.nodeMasq && !/chain pod-masquerade[\s\S]*10\.244\.1\.0\/24/.test(rules)) problems.push('no node-level masquerade rule for 10.244.1.0/24 (table inet podwire, chain pod-masquerade)');
  for (let i = 0; i < n && problems.length < 5; i++) {
    if (inetAddrs(r.pods[i], 'eth0').join() !== ips[i]) problems.push(`pod ${i}: eth0 lacks ${ips[i]}`);
    if (r.masq && !r.nodeMasq && !ipIn(rules, ips[i].split('/')[0])) problems.push(`pod ${i}: no masquerade rule for ${ips[i]}`);
  }
  if (problems.length) throw new Error(`${r.impl} ipMasq ${r.masq ? 'on' : 'off'} after ADD: ${problems.slice(0, 5).join('; ')}`);
}

function verifyDeleted(r: Run, n: number): void {
  const problems: string[] = [];
  const left = veths(r.host).map((l) => l.ifname);
  if (left.length) problems.push(`veths left: ${left.slice(0, 5).join(' ')}`);
  const held = reservations(r.dataDir);
  if (held.length) problems.push(`${held.length} reservation files left`);
  if (r.masq) {
    const rules = rulesetText(r.host);
    const stale = r.results.slice(0, n).map((x) => String(x?.ips?.[0]?.address ?? '').split('/')[0]).filter((ip) => ipIn(rules, ip));
    if (stale.length) problems.push(`masquerade rules left for ${stale.slice(0, 3).join(' ')}`);
  }
  if (problems.length) throw new Error(`${r.impl} ipMasq ${r.masq ? 'on' : 'off'} after DEL: ${problems.join('; ')}`);
}

/** All implementations for one masq setting, interleaved pod by pod; each in its own fresh host netns. */
/** The CNI server of a podwire-fast run, in its host netns; stopped by PID when the run ends. */
async function startCniServer(host: string): Promise<{ socket: string; stop: () => void; settled: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}agent-`));
  live.dirs.add(dir);
  const child = spawn('ip', ['netns', 'exec', host, process.execPath, CNI_SERVER_CHILD, dir, '0', 'bare'], { stdio: ['ignore', 'pipe', 'inherit'] });
  live.children.add(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!out.includes('ready')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      live.children.delete(child);
      throw new Error(`podwire-fast: the CNI server did not start in ${host}: ${out}`);
    }
    await sleep(50);
  }
  const socket = path.join(dir, 'agent.sock');
  const settled = () => delsSettled(socket, 30_000);
  return {
    socket,
    stop: () => {
      child.kill('SIGKILL');
      live.children.delete(child);
    },
    settled,
  };
}

/** subnet.env as the agent writes it for node 10.244.1.0/24, masquerading the node's pods itself. */
function agentSubnetEnv(dir: string): string {
  const file = path.join(dir, 'subnet.env');
  fs.writeFileSync(file, 'PODWIRE_NETWORK=10.244.0.0/16\nPODWIRE_SUBNET=10.244.1.1/24\nPODWIRE_MTU=1500\nPODWIRE_IPMASQ=true\n');
  return file;
}

/** The agent's node-level masquerade (src/agent/masq), written once into the host netns: setup, not timed. */
function installNodeMasq(host: string): void {
  execFileSync('ip', ['netns', 'exec', host, 'nft', '-f', '-'], { input: renderNftMasq({ clusterCidrs: ['10.244.0.0/16'], podCidr: '10.244.1.0/24' }) });
}

async function runMasq(masq: boolean, impls: string[], n: number, concurrency: number, bins: { node: string; client: string }, tag: string, podsFor: (impl: string) => string[], fastMasq: 'node' | 'pod'): Promise<Run[]> {
  const stops: (() => void)[] = [];
  try {
    const runs: Run[] = [];
    for (const impl of impls) {
      const host = newNetns(`${impl.replace(/[^a-z]/g, '')}-${masq ? 'm' : 'n'}`, tag);
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}ipam-`));
      live.dirs.add(dataDir);
      const variant = IMPLS[impl];
      let conf = netConf(variant, { dataDir, ipMasq: masq });
      let settled: (() => Promise<void>) | undefined;
      const nodeMasq = impl === 'podwire-fast' && masq && fastMasq === 'node';
      if (impl === 'podwire-fast') {
        const server = await startCniServer(host);
        stops.push(server.stop);
        settled = server.settled;
        conf = { ...conf, agentSocket: server.socket };
      }
      if (nodeMasq) {
        // As on a node with the agent: no ipam section, the node subnet and PODWIRE_IPMASQ=true from
        // subnet.env, reservations under the top-level dataDir; the agent's one rule masquerades.
        const { ipam: _ipam, ipMasq: _ipMasq, ...rest } = conf;
        conf = { ...rest, subnetFile: agentSubnetEnv(dataDir), dataDir };
        installNodeMasq(host);
      }
      runs.push({ impl, variant, masq, host, dataDir, conf, pods: podsFor(impl), bin: impl === 'podwire-fast' ? bins.client : bins.node, results: [], addMs: [], delMs: [], ...(settled ? { settled } : {}), ...(nodeMasq ? { nodeMasq } : {}) });
    }
    return await measureRuns(runs, masq, n, concurrency);
  } finally {
    for (const stop of stops) stop();
  }
}

/** Runs op(0..n-1) with `workers` in flight at once; the wall time of the whole phase. */
async function phase(n: number, workers: number, op: (i: number) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(workers, n) }, async () => {
    while (next < n) await op(next++);
  }));
  return performance.now() - t0;
}

async function measureRuns(runs: Run[], masq: boolean, n: number, concurrency: number): Promise<Run[]> {
  await sleep(SETTLE_MS);
  for (const r of runs) {
    // Warm-up outside the clock: page cache, bridge creation; pod n (spare) is left empty again.
    const add = await invokeFor(r, 'ADD', -1, r.conf);
    if (add.exitCode !== 0) throw new Error(`${r.impl}: warm-up ADD: ${describe(add)}`);
    const del = await invokeFor(r, 'DEL', -1, r.conf);
    if (del.exitCode !== 0) throw new Error(`${r.impl}: warm-up DEL: ${describe(del)}`);
  }
  if (concurrency === 1) {
    for (let i = 0; i < n; i++) for (const r of runs) r.addMs.push(await step(r, 'ADD', i));
    for (const r of runs) verifyAdded(r, n);
    // A fast DEL's veth is deleted after its answer: let that finish (untimed) before the next
    // implementation's DEL, so neither waits for the other's kernel work.
    for (let i = 0; i < n; i++) {
      for (const r of runs) {
        r.delMs.push(await step(r, 'DEL', i));
        await r.settled?.();
      }
    }
  } else {
    // Concurrent: one implementation at a time (they would compete for the CPU), N workers each
    // taking the next pod; the DEL phase in the reverse order of implementations.
    for (const r of runs) r.addWallMs = await phase(n, concurrency, async (i) => void (r.addMs[i] = await step(r, 'ADD', i)));
    for (const r of runs) verifyAdded(r, n);
    for (const r of [...runs].reverse()) {
      r.delWallMs = await phase(n, concurrency, async (i) => void (r.delMs[i] = await step(r, 'DEL', i)));
      const t0 = performance.now();
      await r.settled?.();
      if (r.settled) r.delSettleMs = performance.now() - t0;
    }
  }
  for (const r of runs) await r.settled?.();
  for (const r of runs) verifyDeleted(r, n);
  for (const r of runs) process.stderr.write(`  ${r.impl.padEnd(19)} ipMasq ${masq ? 'on ' : 'off'}  ADD p50 ${fmt(pct(r.addMs, 50))} ms  DEL p50 ${fmt(pct(r.delMs, 50))} ms  verified\n`);
  return runs;
}

// ---- the floor: what a process costs before it does any work ----------------------------------

interface Floor {
  nodeStart: number;
  podwireVersion: number;
  referenceVersion: number;
  /** node + importing the module graph an operation loads (without running it), when the modules exist. */
  modules: { ADD?: number; DEL?: number };
}

// What podwire's main imports for each operation (src/cni/main.ts); only imported, nothing runs.
const OP_MODULES = { ADD: ['config.js', 'add.js', 'result.js'], DEL: ['config.js', 'del.js'] };

function timedSpawn(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return performance.now() - t0;
}

async function measureFloor(bin: string, host: string): Promise<Floor> {
  const version = (type: string) => invokePlugin({ pluginDir: bin, hostNetns: host, type, command: 'VERSION', config: { cniVersion: '1.0.0' }, launcher: 'setns' }).then((r) => r.ms);
  const cniDir = path.dirname(PODWIRE_CNI_MAIN);
  const graphs = Object.entries(OP_MODULES)
    .map(([op, mods]) => [op, mods.map((m) => path.join(cniDir, m))] as const)
    .filter(([, mods]) => mods.every((m) => fs.existsSync(m)));
  const samples = { nodeStart: [] as number[], podwireVersion: [] as number[], referenceVersion: [] as number[], modules: new Map<string, number[]>() };
  for (let i = 0; i < FLOOR_RUNS; i++) {
    samples.nodeStart.push(timedSpawn(process.execPath, ['-e', '0']));
    samples.podwireVersion.push(await version('podwire'));
    samples.referenceVersion.push(await version('bridge'));
    for (const [op, mods] of graphs) {
      const script = `await Promise.all(${JSON.stringify(mods)}.map((m) => import(m)))`;
      samples.modules.set(op, [...(samples.modules.get(op) ?? []), timedSpawn(process.execPath, ['--input-type=module', '-e', script])]);
    }
  }
  return {
    nodeStart: pct(samples.nodeStart, 50), podwireVersion: pct(samples.podwireVersion, 50), referenceVersion: pct(samples.referenceVersion, 50),
    modules: Object.fromEntries([...samples.modules].map(([op, xs]) => [op, pct(xs, 50)])),
  };
}

// ---- report ------------------------------------------------------------------------------------

/** Nearest-rank percentile. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const fmt = (x: number) => x.toFixed(x < 100 ? 1 : 0);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function machineLine(): string {
  const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  return `${baseMachine()}; load average at the end ${load}`;
}

/** Each implementation and masq setting's samples of every run together (the percentiles' table). */
function pooled(reps: Run[][], impls: string[], masqs: boolean[]): Run[] {
  const out: Run[] = [];
  for (const masq of masqs) {
    for (const impl of impls) {
      const mine = reps.flatMap((runs) => runs.filter((r) => r.impl === impl && r.masq === masq));
      if (mine.length === 0) continue;
      const wall = (k: 'addWallMs' | 'delWallMs' | 'delSettleMs') => (mine.every((r) => r[k] !== undefined) ? { [k]: pct(mine.map((r) => r[k]!), 50) } : {});
      out.push({ ...mine[0], addMs: mine.flatMap((r) => r.addMs), delMs: mine.flatMap((r) => r.delMs), ...wall('addWallMs'), ...wall('delWallMs'), ...wall('delSettleMs') });
    }
  }
  return out;
}

/** Per run, an implementation's percentile over the reference's in that run; their median and all of them. */
function pairedRatios(reps: Run[][], impl: string, masq: boolean, op: 'addMs' | 'delMs', p: number): { median: number; all: number[] } {
  const all = reps.flatMap((runs) => {
    const mine = runs.find((r) => r.impl === impl && r.masq === masq);
    const ref = runs.find((r) => r.impl === 'reference' && r.masq === masq);
    return mine && ref ? [pct(mine[op], p) / pct(ref[op], p)] : [];
  });
  return { median: pct(all, 50), all };
}

function report(n: number, runs: Run[], floor: Floor, concurrency = 1, reps: Run[][] = [runs], fastMasq: 'node' | 'pod' = 'node'): void {
  const rows = [['implementation', 'ipMasq', 'ADD p50', 'ADD p99', 'DEL p50', 'DEL p99', 'ADD total s', 'DEL total s']];
  for (const r of runs) {
    rows.push([r.impl, r.masq ? 'on' : 'off', fmt(pct(r.addMs, 50)), fmt(pct(r.addMs, 99)), fmt(pct(r.delMs, 50)), fmt(pct(r.delMs, 99)), (sum(r.addMs) / 1000).toFixed(2), (sum(r.delMs) / 1000).toFixed(2)]);
  }
  const out = [
    `podwire bench cni — ${n} pods ADD then DEL per implementation and ipMasq setting (ms per operation, wall time of the plugin process)${concurrency > 1 ? `, ${concurrency} in flight at once` : ''}`,
    `machine: ${machineLine()}; ${new Date().toISOString().slice(0, 10)}`,
    concurrency > 1
      ? `each implementation in its own fresh host netns, alone, ${concurrency} commands at a time; pod netns created beforehand; verified after each phase`
      : 'each implementation in its own fresh host netns, interleaved pod by pod; pod netns created beforehand; verified after each phase',
    `podwire-fast: the native client through the agent's CNI server (fast DEL: answered once the pod is cut off, its veth deleted after); ipMasq on: ${fastMasq === 'node' ? 'node-level, as with the agent (subnet.env PODWIRE_IPMASQ=true, one rule for the node, nothing per pod)' : 'per pod (ipMasq: true, no agent subnet.env)'}`,
    ...(reps.length > 1 ? [`${reps.length} runs, the implementations' order alternating; the table pools every run's samples; ratios are the medians of the per-run ratios`] : []),
    '',
    table(rows),
    '',
  ];
  const ratioRows = [['ratio vs reference', 'ipMasq', 'ADD p50', 'ADD p99', 'DEL p50', 'DEL p99']];
  const perRun: string[] = [];
  for (const r of runs) {
    if (r.impl === 'reference' || !runs.some((x) => x.impl === 'reference' && x.masq === r.masq)) continue;
    const cells = ([['addMs', 50], ['addMs', 99], ['delMs', 50], ['delMs', 99]] as const).map(([op, p]) => pairedRatios(reps, r.impl, r.masq, op, p));
    ratioRows.push([`${r.impl}/reference`, r.masq ? 'on' : 'off', ...cells.map((c) => `${c.median.toFixed(2)}×`)]);
    if (reps.length > 1) perRun.push(`  ${r.impl} ipMasq ${r.masq ? 'on' : 'off'}: ADD p50 ${cells[0].all.map((x) => x.toFixed(2)).join(' ')}; DEL p50 ${cells[2].all.map((x) => x.toFixed(2)).join(' ')}`);
  }
  if (ratioRows.length > 1) out.push(table(ratioRows), '');
  if (perRun.length) out.push('per-run ratios:', ...perRun, '');
  if (concurrency > 1) {
    out.push(`phase wall time with ${concurrency} in flight (s): ${runs.map((r) => `${r.impl} ipMasq ${r.masq ? 'on' : 'off'} ADD ${((r.addWallMs ?? 0) / 1000).toFixed(2)} DEL ${((r.delWallMs ?? 0) / 1000).toFixed(2)}${r.delSettleMs !== undefined ? ` (+${(r.delSettleMs / 1000).toFixed(2)} until the last veth was deleted)` : ''}`).join('; ')}`, '');
  }
  out.push('where the time goes (medians, ms):');
  out.push(`  process floor: \`node -e 0\` ${fmt(floor.nodeStart)}; podwire VERSION ${fmt(floor.podwireVersion)} (node start + entry module); reference VERSION ${fmt(floor.referenceVersion)} (Go binary start)`);
  for (const [op, x] of Object.entries(floor.modules)) out.push(`  node + importing podwire's ${op} modules (${OP_MODULES[op as keyof typeof OP_MODULES].join(', ')}) without running them: ${fmt(x)}`);
  for (const r of runs.filter((x) => x.variant.podwire && x.impl !== 'podwire-fast')) {
    const split = (op: 'ADD' | 'DEL', xs: number[]) => {
      const p50 = pct(xs, 50);
      const load = floor.modules[op] ?? floor.podwireVersion;
      return `${op} p50 ${fmt(p50)} = start+load ${fmt(load)} (${Math.round((100 * load) / p50)}%) + work ${fmt(Math.max(0, p50 - load))}`;
    };
    out.push(`  ${r.impl} ipMasq ${r.masq ? 'on' : 'off'}: ${split('ADD', r.addMs)}; ${split('DEL', r.delMs)}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

export async function run(f: Flags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces (nothing outside them is touched)');
  if (!fs.existsSync('/usr/lib/cni/bridge')) throw new Error('reference plugins missing (/usr/lib/cni/bridge): apt-get install containernetworking-plugins');
  const n = Number(f.pods);
  const concurrency = Number(f.concurrency);
  const masqs = listFlag(String(f.masq), ['off', 'on'], 'masq').map((m) => m === 'on');
  const impls = listFlag(String(f.impls), Object.keys(IMPLS), 'impls');
  const stale = listNetns().filter((x) => x.startsWith(PREFIX));
  if (stale.length) process.stderr.write(`note: other bench namespaces exist (another run, or a killed one): ${stale.slice(0, 5).join(' ')}\n`);
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', dropAll);
  try {
    const tag = randomBytes(3).toString('hex');
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}bin-`));
    live.dirs.add(bin);
    populatePluginDir(bin);
    const client = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}client-`));
    live.dirs.add(client);
    if (impls.includes('podwire-fast')) {
      if (!fs.existsSync(CLIENT)) throw new Error(`podwire-fast: ${CLIENT} is not built (npm run build needs a C compiler); or leave podwire-fast out of --impls`);
      fs.symlinkSync(CLIENT, path.join(client, 'podwire'));
    }
    // n pods + 1 spare (warm-up) per implementation, created before any clock starts, reused across masq settings.
    const pods = new Map(impls.map((impl, k) => [impl, Array.from({ length: n + 1 }, (_, i) => newNetns(`i${k}p${i}`, tag))]));
    const repeat = Number(f.repeat);
    const fastMasq = f['fast-masq'] === 'pod' ? 'pod' : 'node';
    const reps: Run[][] = [];
    for (let k = 0; k < repeat; k++) {
      if (repeat > 1) process.stderr.write(`run ${k + 1}/${repeat}\n`);
      const order = k % 2 === 0 ? impls : [...impls].reverse();
      const runs: Run[] = [];
      for (const masq of masqs) runs.push(...(await runMasq(masq, order, n, concurrency, { node: bin, client }, `${tag}${k}`, (impl) => pods.get(impl)!, fastMasq)));
      reps.push(runs);
    }
    const floor = await measureFloor(bin, reps[0][0].host);
    report(n, pooled(reps, impls, masqs), floor, concurrency, reps, fastMasq);
  } finally {
    dropAll();
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('exit', dropAll);
  }
}
