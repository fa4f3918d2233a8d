// The cluster DNS benchmark: podwire's DnsServer (src/dns, a LiveDnsIndex of N ClusterIP services,
// in a process of its own as in production: test/lib/dns-server-child.js) against unbound holding
// the same N names as local-data (the reference for in-memory authoritative answers), both asked by
// dnsperf. Server and client each in a fresh netns (pw-dnsbench-<tag>-srv / -cli) joined by a veth;
// one server runs at a time (podwire on 192.0.2.1:53, unbound on 192.0.2.3:53), the order swapped
// every repeat. Per server and repeat: started, its answers checked with dig (A, SRV, NXDOMAIN; a
// wrong answer ends the run, exit 1), a warm-up pass through the query file, then (a) throughput:
// dnsperf without a rate limit, (b) latency at each --qps rate: dnsperf -Q RATE -v, every answer's
// latency and rcode read from its verbose lines (dnsperf 2.10 has no latency histogram), p50/p99
// over all queries sent, a lost query counting as slower than any answer. Targets: podwire qps ≥
// 0.5× unbound's, podwire p99 < 2 ms at 10,000 qps.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { machine, sleep, table } from './util.js';
import {
  benchServices, expectedRcodes, median, mixCounts, NEGATIVE_TTL, parseDnsperfSummary, parseVerbose, percentile, queryFile, queryMix,
  serviceObjects, srvName, TTL, unboundConfig, ZONE, type BenchService, type Query,
} from './dns-tools.js';
import { buildLab, dig, dropAll, findTool, guard, leftNetns, machineCpuSeconds, missingTools, newDir, processCpuSeconds, startIn, stop, udpRcvbufErrors, type Lab, type Proc } from './dns-procs.js';

export { PREFIX } from './dns-procs.js';
export const summary = 'podwire\'s cluster DNS server vs unbound (local-data), N ClusterIP services, dnsperf: max qps, p50/p99 at fixed rates';

export const flags: FlagSpecs = {
  services: { type: 'int', default: 10_000, min: 1, max: 100_000, help: 'ClusterIP services in 100 namespaces (default 10000)' },
  qps: { type: 'string', default: '10000', help: 'rates for the latency runs, comma-separated (default 10000)' },
  seconds: { type: 'int', default: 10, min: 1, max: 300, help: 'seconds per dnsperf run (default 10)' },
  repeat: { type: 'int', default: 3, min: 1, max: 20, help: 'runs per server, order swapped each time; medians (default 3)' },
  clients: { type: 'int', default: 4, min: 1, max: 256, help: 'dnsperf -c for the throughput run (default 4)' },
  outstanding: { type: 'int', default: 200, min: 1, max: 10_000, help: 'dnsperf -q for the throughput run (default 200)' },
};

const SERVER_CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'lib', 'dns-server-child.js');
const ADDR = { podwire: '192.0.2.1', unbound: '192.0.2.3', client: '192.0.2.2' };
type ServerName = 'podwire' | 'unbound';
const WARMUP_QUERIES = 20_000;
const TARGETS = { qpsRatio: 0.5, p99Ms: 2, atQps: 10_000 };
const say = (line: string) => process.stderr.write(`  ${line}\n`);

export function parseQps(raw: string): number[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const n = items.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (!items.length || n.some((x) => !(x >= 10 && x <= 1_000_000))) throw new RangeError(`--qps: comma-separated rates, each 10..1000000 queries/s, got ${JSON.stringify(raw)}`);
  return [...new Set(n)];
}

export function check(f: Flags): void {
  parseQps(String(f.qps));
}

// ---- the two servers ----------------------------------------------------------------------------

interface Ctx {
  lab: Lab;
  dir: string;
  services: BenchService[];
  queries: Query[];
  expected: Map<string, string>;
  queryPath: string;
  unboundConf: string;
}

async function readyLine(p: Proc, timeoutMs: number): Promise<Record<string, unknown>> {
  const lines = readline.createInterface({ input: p.proc.stdout! });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${p.what}: no ready line in ${timeoutMs} ms; stderr: ${p.stderr()}`)), timeoutMs);
      void p.exited.then((code) => reject(new Error(`${p.what} exited (${code}) before it was ready; stderr: ${p.stderr()}`)));
      lines.once('line', (line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as Record<string, unknown>);
        } catch {
          reject(new Error(`${p.what}: not JSON: ${line.slice(0, 200)}`));
        }
      });
    });
  } finally {
    lines.close();
  }
}

async function startPodwire(ctx: Ctx): Promise<Proc> {
  const p = startIn(ctx.lab.server, 'podwire DNS server', process.execPath, [SERVER_CHILD], 'pipe');
  const spec = { index: { zone: ZONE, ttl: TTL, negativeTtl: NEGATIVE_TTL }, server: { listen: { host: ADDR.podwire, port: 53 }, upstreams: [], loopProbe: false }, services: serviceObjects(ctx.services) };
  p.proc.stdin!.write(`${JSON.stringify(spec)}\n`);
  const ready = await readyLine(p, 120_000);
  if (ready.ready !== true) {
    await stop(p);
    throw new Error(`podwire DNS server did not start: ${JSON.stringify(ready)}; stderr: ${p.stderr()}`);
  }
  p.proc.stdout!.resume(); // later lines (none expected) must not fill the pipe
  return p;
}

async function startUnbound(ctx: Ctx): Promise<Proc> {
  const p = startIn(ctx.lab.server, 'unbound', findTool('unbound')!, ['-d', '-c', ctx.unboundConf]);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (p.proc.exitCode !== null) throw new Error(`unbound exited (${p.proc.exitCode}) at start; stderr: ${p.stderr()}; config ${ctx.unboundConf}`);
    const out = await dig(ctx.lab.client, ADDR.unbound, ['+time=1', `${ZONE}.`, 'SOA']);
    if (/status: NOERROR/.test(out)) return p;
    if (Date.now() > deadline) {
      await stop(p);
      throw new Error(`unbound does not answer on ${ADDR.unbound}:53 after 60 s; stderr: ${p.stderr()}`);
    }
    await sleep(200);
  }
}

/** dig a few names of each kind; throws with every wrong answer (a run that answers wrong measures nothing). */
async function verify(ctx: Ctx, server: ServerName): Promise<void> {
  const at = ADDR[server];
  const n = ctx.services.length;
  const problems: string[] = [];
  const answers = (out: string) => out.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.trim().split(/\s+/));
  for (const s of [...new Set([ctx.services[0]!, ctx.services[Math.floor(n / 2)]!, ctx.services[n - 1]!])]) {
    const out = await dig(ctx.lab.client, at, ['+noall', '+answer', '+comments', s.fqdn, 'A']);
    const rrs = answers(out);
    const ok = /status: NOERROR/.test(out) && rrs.length === 1 && rrs[0]!.join(' ') === `${s.fqdn}. ${TTL} IN A ${s.clusterIp}`;
    if (!ok) problems.push(`${s.fqdn} A: want ${s.clusterIp} TTL ${TTL}, got ${JSON.stringify(rrs.map((r) => r.join(' ')))} (${/status: (\w+)/.exec(out)?.[1] ?? out.trim().slice(0, 200)})`);
  }
  const srvQ = ctx.queries.find((q) => q.type === 'SRV');
  if (srvQ) {
    const s = ctx.services.find((x) => srvName(x) === srvQ.name)!;
    const rrs = answers(await dig(ctx.lab.client, at, ['+noall', '+answer', srvQ.name, 'SRV']));
    if (rrs.length !== 1 || rrs[0]!.join(' ') !== `${srvQ.name}. ${TTL} IN SRV 0 100 80 ${s.fqdn}.`) problems.push(`${srvQ.name} SRV: want 0 100 80 ${s.fqdn}., got ${JSON.stringify(rrs.map((r) => r.join(' ')))}`);
  }
  const nx = ctx.queries.find((q) => q.rcode === 'NXDOMAIN');
  if (nx) {
    const out = await dig(ctx.lab.client, at, [nx.name, 'A']);
    if (!/status: NXDOMAIN/.test(out) || !new RegExp(`^${ZONE.replace('.', '\\.')}\\.\\s+${NEGATIVE_TTL}\\s+IN\\s+SOA\\s`, 'm').test(out)) problems.push(`${nx.name} A: want NXDOMAIN with the SOA (TTL ${NEGATIVE_TTL}), got ${/status: (\w+)/.exec(out)?.[1] ?? out.trim().slice(0, 200)}`);
  } else if (n > 7) {
    problems.push(`the query mix has no NXDOMAIN name (bench bug: see queryMix)`);
  }
  if (problems.length) throw new Error(`${server} at ${at}:53 answers wrong: ${problems.join('; ')}`);
}

// ---- dnsperf --------------------------------------------------------------------------------------

interface Measured {
  summary: ReturnType<typeof parseDnsperfSummary>;
  serverCpuPct: number;
  clientCpuPct: number;
  /** Process CPU of the machine minus the server's and dnsperf's: other work on the machine. */
  otherCpuPct: number;
  /** irq + softirq time: most of the veth and UDP receive path. */
  irqCpuPct: number;
  /** The server's CPU time per answer (µs): what an answer costs it, whatever else the machine runs. */
  cpuUsPerAnswer: number;
  /** UDP datagrams dropped at a full receive buffer during the run: the server's netns (queries) and the client's (answers). */
  drops: { server: number; client: number };
  verbose?: ReturnType<typeof parseVerbose>;
}

async function dnsperf(ctx: Ctx, server: ServerName, serverPid: number, args: string[], verbose: boolean): Promise<Measured> {
  const outPath = path.join(ctx.dir, `dnsperf-${server}.out`);
  const fd = fs.openSync(outPath, 'w');
  const all = ['-s', ADDR[server], '-p', '53', '-d', ctx.queryPath, '-t', '1', ...args, ...(verbose ? ['-v'] : [])];
  const drops0 = [udpRcvbufErrors(ctx.lab.server), udpRcvbufErrors(ctx.lab.client)];
  const cpu0 = processCpuSeconds(serverPid), machine0 = machineCpuSeconds(), t0 = performance.now();
  let p: Proc;
  try {
    p = startIn(ctx.lab.client, 'dnsperf', findTool('dnsperf')!, all, fd);
  } finally {
    fs.closeSync(fd);
  }
  let clientCpu = 0; // dnsperf's own CPU, sampled while it runs (its last 200 ms are missed)
  const sampler = setInterval(() => {
    const c = processCpuSeconds(p.pid);
    if (!Number.isNaN(c)) clientCpu = c;
  }, 200);
  const limit = args.includes('-l') ? Number(args[args.indexOf('-l') + 1]) : 60;
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 60_000 + 2000 * limit); // a hung dnsperf, killed by its PID
  const code = await p.exited;
  clearTimeout(timer);
  clearInterval(sampler);
  const wall = (performance.now() - t0) / 1000;
  const cpu = processCpuSeconds(serverPid) - cpu0, machine1 = machineCpuSeconds();
  const others = machine1.processes - machine0.processes - cpu - clientCpu, irq = machine1.interrupts - machine0.interrupts;
  const drops = { server: udpRcvbufErrors(ctx.lab.server) - drops0[0]!, client: udpRcvbufErrors(ctx.lab.client) - drops0[1]! };
  const out = fs.readFileSync(outPath, 'utf8');
  fs.rmSync(outPath, { force: true });
  if (code !== 0) throw new Error(`dnsperf ${all.join(' ')} against ${server} exited ${code ?? `on ${p.proc.signalCode}`}: ${p.stderr().trim() || out.slice(-500)}`);
  const summary = parseDnsperfSummary(out);
  const bad = Object.entries(summary.rcodes).filter(([rc]) => rc !== 'NOERROR' && rc !== 'NXDOMAIN');
  if (bad.length) throw new Error(`${server}: dnsperf got rcodes the query file never asks for: ${bad.map(([rc, k]) => `${rc} ${k}`).join(', ')}`);
  const m: Measured = { summary, serverCpuPct: (100 * cpu) / wall, clientCpuPct: (100 * clientCpu) / wall, otherCpuPct: (100 * others) / wall, irqCpuPct: (100 * irq) / wall, cpuUsPerAnswer: (1e6 * cpu) / Math.max(1, summary.completed), drops };
  if (verbose) {
    m.verbose = parseVerbose(out, ctx.expected);
    if (m.verbose.wrongCount) throw new Error(`${server}: ${m.verbose.wrongCount} answers with the wrong rcode, e.g. ${m.verbose.wrong.join('; ')}`);
    if (m.verbose.latenciesMs.length !== summary.completed) throw new Error(`${server}: ${m.verbose.latenciesMs.length} verbose answer lines for ${summary.completed} completed queries (dnsperf output format changed?)`);
  } else {
    const nxShare = (summary.rcodes.NXDOMAIN ?? 0) / Math.max(1, summary.completed);
    const want = mixCounts(ctx.queries).nxdomain / ctx.queries.length;
    if (Math.abs(nxShare - want) > 0.02) throw new Error(`${server}: ${(100 * nxShare).toFixed(1)}% NXDOMAIN answers, the query file has ${(100 * want).toFixed(1)}%`);
  }
  return m;
}

interface ThroughputRun { qps: number; lostPct: number; serverCpuPct: number; clientCpuPct: number; otherCpuPct: number; irqCpuPct: number; cpuUsPerAnswer: number; drops: { server: number; client: number }; responseBytes: number }
interface LatencyRun { rate: number; qps: number; p50: number; p90: number; p99: number; p999: number; max: number; avg: number; stddev: number; lost: number; interrupted: number; drops: { server: number; client: number }; sent: number; serverCpuPct: number; clientCpuPct: number; otherCpuPct: number }

async function measureServer(ctx: Ctx, server: ServerName, f: Flags, rates: number[], out: { tput: ThroughputRun[]; lat: Map<number, LatencyRun[]> }): Promise<void> {
  const p = server === 'podwire' ? await startPodwire(ctx) : await startUnbound(ctx);
  try {
    await verify(ctx, server);
    // Warm-up, not measured: at least 20,000 answers (caches, Node's JIT), whatever the file's size.
    await dnsperf(ctx, server, p.pid, ['-n', String(Math.max(2, Math.ceil(WARMUP_QUERIES / ctx.queries.length))), '-q', '100'], false);
    await sleep(300);
    const s = Number(f.seconds);
    const t = await dnsperf(ctx, server, p.pid, ['-l', String(s), '-c', String(f.clients), '-q', String(f.outstanding), '-T', '1'], false);
    out.tput.push({ qps: t.summary.qps, lostPct: (100 * t.summary.lost) / Math.max(1, t.summary.sent), serverCpuPct: t.serverCpuPct, clientCpuPct: t.clientCpuPct, otherCpuPct: t.otherCpuPct, irqCpuPct: t.irqCpuPct, cpuUsPerAnswer: t.cpuUsPerAnswer, drops: t.drops, responseBytes: t.summary.responseBytes });
    say(`${server}: throughput ${Math.round(t.summary.qps)} qps, lost ${t.summary.lost}/${t.summary.sent} (rcvbuf drops: server ${t.drops.server}, client ${t.drops.client}), CPU server ${Math.round(t.serverCpuPct)}% dnsperf ${Math.round(t.clientCpuPct)}% other ${Math.round(t.otherCpuPct)}%`);
    for (const rate of rates) {
      await sleep(300);
      // -q: room for a 200 ms stall at this rate, so a slow answer does not hold back the sending (no coordinated omission).
      const m = await dnsperf(ctx, server, p.pid, ['-l', String(s), '-Q', String(rate), '-c', '1', '-T', '1', '-q', String(Math.max(100, Math.ceil(rate / 5)))], true);
      const sorted = [...m.verbose!.latenciesMs].sort((a, b) => a - b).concat(Array(m.summary.lost).fill(Infinity));
      const run: LatencyRun = {
        rate, qps: m.summary.qps, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9), max: sorted[sorted.length - 1] ?? NaN,
        avg: m.summary.avgLatencyMs, stddev: m.summary.stddevLatencyMs, lost: m.summary.lost, interrupted: m.summary.interrupted, drops: m.drops, sent: m.summary.sent, serverCpuPct: m.serverCpuPct, clientCpuPct: m.clientCpuPct, otherCpuPct: m.otherCpuPct,
      };
      out.lat.set(rate, [...(out.lat.get(rate) ?? []), run]);
      say(`${server}: at ${rate} qps p50 ${ms(run.p50)} p99 ${ms(run.p99)} ms, lost ${run.lost}/${run.sent} (rcvbuf drops: server ${run.drops.server}, client ${run.drops.client}), other CPU ${Math.round(run.otherCpuPct)}%`);
    }
  } finally {
    await stop(p);
  }
}

// ---- report ---------------------------------------------------------------------------------------

const ms = (x: number) => (x === Infinity ? 'lost' : Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(3) : x.toFixed(1));
const int = (x: number) => Math.round(x).toLocaleString('en-US');
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : '-');
const pctOf = (xs: number[]) => `${Math.round(median(xs))}%`;

function version(cmd: string, args: string[]): string {
  try {
    const r = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return /Version (\S+)/.exec(r)?.[1] ?? '?';
  } catch (err) {
    return /Version (\S+)/.exec(String((err as { stdout?: string }).stdout ?? ''))?.[1] ?? '?';
  }
}

type Results = Record<ServerName, { tput: ThroughputRun[]; lat: Map<number, LatencyRun[]> }>;

function report(ctx: Ctx, f: Flags, rates: number[], r: Results): boolean {
  const n = ctx.services.length, mix = mixCounts(ctx.queries);
  const out = [
    `podwire bench dns — ${int(n)} ClusterIP services in ${Math.min(n, 100)} namespaces; query file ${int(ctx.queries.length)} questions (A ${int(mix.a)}, SRV ${int(mix.srv)}, NXDOMAIN ${int(mix.nxdomain)}), UDP`,
    `machine: ${machine()}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${new Date().toISOString().slice(0, 10)}`,
    `dnsperf ${version(findTool('dnsperf')!, ['-H'])}, unbound ${version(findTool('unbound')!, ['-V'])} (num-threads 1, local-zone static + local-data); podwire: one node process (DnsServer, LiveDnsIndex)`,
    `server netns ${ctx.lab.server} (podwire ${ADDR.podwire}:53, unbound ${ADDR.unbound}:53, one at a time), client netns ${ctx.lab.client} (${ADDR.client}) over a veth; ${f.repeat} run(s) per server, order swapped each run; medians; answers checked with dig before each run, every rcode during it`,
    '',
    `throughput: dnsperf -l ${f.seconds} -c ${f.clients} -q ${f.outstanding} -T 1, no rate limit`,
  ];
  const rows = [['server', 'qps', 'runs', 'lost %', 'µs CPU/answer', 'server CPU', 'dnsperf CPU', 'irq CPU', 'other CPU', 'resp bytes']];
  for (const s of ['podwire', 'unbound'] as const) {
    const t = r[s].tput;
    rows.push([s, int(median(t.map((x) => x.qps))), t.map((x) => int(x.qps)).join(' / '), median(t.map((x) => x.lostPct)).toFixed(2), median(t.map((x) => x.cpuUsPerAnswer)).toFixed(1), pctOf(t.map((x) => x.serverCpuPct)), pctOf(t.map((x) => x.clientCpuPct)), pctOf(t.map((x) => x.irqCpuPct)), pctOf(t.map((x) => x.otherCpuPct)), String(Math.round(median(t.map((x) => x.responseBytes))))]);
  }
  const qpsRatio = median(r.podwire.tput.map((x) => x.qps)) / median(r.unbound.tput.map((x) => x.qps));
  const cpuRatio = median(r.podwire.tput.map((x) => x.cpuUsPerAnswer)) / median(r.unbound.tput.map((x) => x.cpuUsPerAnswer));
  rows.push(['podwire/unbound', ratio(qpsRatio, 1), '', '', ratio(cpuRatio, 1), '', '', '', '', '']);
  out.push(table(rows));
  const unboundCpu = median(r.unbound.tput.map((x) => x.serverCpuPct));
  if (unboundCpu < 90) out.push(`(unbound used ${Math.round(unboundCpu)}% of a core: dnsperf, not unbound, set its figure, so unbound can do more and the ratio is an upper bound)`);
  out.push(`(µs CPU/answer: the server's CPU time over the answers it gave, the figure least moved by other load; CPU in % of one core over the run; irq = the machine's irq + softirq time (packet processing); other = the machine's process time minus the server's and dnsperf's: other work on the machine)`, '');
  out.push(`latency (ms) at a fixed rate: dnsperf -Q RATE -l ${f.seconds} -c 1 -v, every answer's latency; percentiles over all queries sent (lost = slower than any)`);
  const lrows = [['server', 'rate', 'achieved', 'p50', 'p90', 'p99', 'p99.9', 'max', 'avg', 'stddev', 'lost', 'server CPU', 'other CPU']];
  const med = (xs: LatencyRun[], k: keyof LatencyRun) => median(xs.map((x) => x[k] as number));
  for (const rate of rates) {
    for (const s of ['podwire', 'unbound'] as const) {
      const xs = r[s].lat.get(rate) ?? [];
      lrows.push([s, int(rate), int(med(xs, 'qps')), ms(med(xs, 'p50')), ms(med(xs, 'p90')), ms(med(xs, 'p99')), ms(med(xs, 'p999')), ms(med(xs, 'max')), ms(med(xs, 'avg')), ms(med(xs, 'stddev')), xs.map((x) => String(x.lost)).join('/'), pctOf(xs.map((x) => x.serverCpuPct)), pctOf(xs.map((x) => x.otherCpuPct))]);
    }
    const [pw, ub] = [r.podwire.lat.get(rate) ?? [], r.unbound.lat.get(rate) ?? []];
    lrows.push(['podwire/unbound', int(rate), '', ratio(med(pw, 'p50'), med(ub, 'p50')), ratio(med(pw, 'p90'), med(ub, 'p90')), ratio(med(pw, 'p99'), med(ub, 'p99')), '', '', ratio(med(pw, 'avg'), med(ub, 'avg')), '', '', '', '']);
  }
  out.push(table(lrows));
  out.push('(lost: no answer within 1 s (dnsperf -t 1), per run; such a query counts as slower than any answer in the percentiles)');
  const dropped = (s: ServerName, k: 'server' | 'client') => [...r[s].lat.values()].flat().map((x) => x.drops[k]).join('/');
  out.push(`(of them dropped at a full UDP receive buffer, per run: podwire's socket ${dropped('podwire', 'server')}, dnsperf's ${dropped('podwire', 'client')}; unbound's ${dropped('unbound', 'server')}, dnsperf's ${dropped('unbound', 'client')})`);
  for (const s of ['podwire', 'unbound'] as const) {
    const cut = [...r[s].lat.values()].flat().reduce((a, x) => a + x.interrupted, 0);
    if (cut) out.push(`(${s}: ${cut} queries still in flight when a run's time limit hit, left out of the percentiles)`);
  }
  out.push('');
  const qpsMet = qpsRatio >= TARGETS.qpsRatio;
  out.push(`target: podwire qps >= ${TARGETS.qpsRatio}× unbound: ${qpsMet ? 'met' : 'NOT met'} (${ratio(qpsRatio, 1)})`);
  const at = r.podwire.lat.get(TARGETS.atQps);
  let p99Met = false;
  if (at) {
    const p99 = med(at, 'p99');
    p99Met = p99 < TARGETS.p99Ms;
    out.push(`target: podwire p99 < ${TARGETS.p99Ms} ms at ${int(TARGETS.atQps)} qps: ${p99Met ? 'met' : 'NOT met'} (median p99 ${ms(p99)} ms, runs ${at.map((x) => ms(x.p99)).join(' / ')})`);
  } else {
    out.push(`target: podwire p99 < ${TARGETS.p99Ms} ms at ${int(TARGETS.atQps)} qps: not measured (add ${TARGETS.atQps} to --qps)`);
  }
  process.stdout.write(out.join('\n').replace(/ +$/gm, '') + '\n');
  return qpsMet && p99Met;
}

export async function run(f: Flags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces (nothing outside them is touched)');
  const missing = missingTools();
  if (missing.length) throw new Error(`missing tools: ${missing.join(', ')} (scripts/bootstrap installs them)`);
  if (!fs.existsSync(SERVER_CHILD)) throw new Error(`${SERVER_CHILD} missing: run npm run build`);
  const rates = parseQps(String(f.qps));
  const unguard = guard();
  const tag = randomBytes(3).toString('hex');
  try {
    const dir = newDir();
    const services = benchServices(Number(f.services));
    const queries = queryMix(services);
    const queryPath = path.join(dir, 'queries.txt');
    fs.writeFileSync(queryPath, queryFile(queries));
    const unboundConf = path.join(dir, 'unbound.conf');
    fs.writeFileSync(unboundConf, unboundConfig({ dir, address: ADDR.unbound, port: 53, threads: 1, services }));
    execFileSync(findTool('unbound-checkconf')!, [unboundConf], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lab = buildLab(tag, [ADDR.podwire, ADDR.unbound], ADDR.client);
    const ctx: Ctx = { lab, dir, services, queries, expected: expectedRcodes(queries), queryPath, unboundConf };
    const results: Results = { podwire: { tput: [], lat: new Map() }, unbound: { tput: [], lat: new Map() } };
    for (let i = 0; i < Number(f.repeat); i++) {
      const order: ServerName[] = i % 2 === 0 ? ['podwire', 'unbound'] : ['unbound', 'podwire'];
      say(`run ${i + 1}/${f.repeat}: ${order.join(', ')}`);
      for (const s of order) await measureServer(ctx, s, f, rates, results[s]);
    }
    report(ctx, f, rates, results);
  } finally {
    dropAll();
    unguard();
    const left = leftNetns(tag);
    if (left.length) throw new Error(`netns left behind: ${left.join(' ')}; remove with ip netns del`);
  }
}
