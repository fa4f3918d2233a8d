// bench ipvs: the IPVS mode against `ipvsadm --restore`, in the same run, in a kernel with IPVS.
// This machine's kernel has none, so by default the bench runs itself inside the kernel VM
// (scripts/kernel-vm: Debian's kernel, this machine's userland, TCG) and prints what it printed;
// where the kernel has IPVS (`--here`, or inside the VM) it runs in pw-ipvsb-* netns:
//   node: IPVS + podwire's nftables objects (bench/ipvs-child.ts runs the backend there);
//   cli:  10.99.0.2, default route via node (10.99.0.1): the latency client;
//   srv:  10.99.1.2-7 on one veth, one echo server on 0.0.0.0:8080 (the 5 endpoints + one spare);
//   ref:  a netns of its own where `ipvsadm -R` loads the same services (IPVS state is per netns).
// Per size: full sync from nothing (the IPVS part timed apart from the whole sync: the nft
// transaction and binding the ClusterIPs on the dummy are extra work ipvsadm does not do), one
// endpoint changed CHANGES times (partial syncs), connection latency client → ClusterIP:80 (and
// to an endpoint directly), then `ipvsadm -R` of the same set. TCG is slow in absolute terms: the
// ratios are the result.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { machine, table } from './util.js';
import { BENCH_NET, clusterIp } from './ipvs-child.js';

export const summary = 'IPVS mode vs ipvsadm --restore (in the kernel VM): full sync of N services × 5, one change, connect latency at 10 vs N services';

export const flags: FlagSpecs = {
  sizes: { type: 'string', default: '10,1000,10000', help: 'service counts, ascending (default 10,1000,10000)' },
  connects: { type: 'int', default: 1000, min: 10, max: 100_000, help: 'measured connects per latency figure (default 1000)' },
  changes: { type: 'int', default: 5, min: 1, max: 50, help: 'one-endpoint changes timed per size (default 5)' },
  here: { type: 'bool', help: 'run in this kernel (it must have IPVS) instead of the kernel VM' },
  'vm-mem': { type: 'int', default: 4096, min: 1024, max: 16384, help: 'the kernel VM\'s memory, MiB (default 4096)' },
};

const TARGETS = { restoreRatio: 1.0, changeMs: 20, latencyRatio: 1.1 };
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const DIST = path.join(ROOT, 'dist');
const say = (line: string) => process.stderr.write(`  ${line}\n`);

export function parseSizes(raw: string): number[] {
  const n = raw.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : NaN));
  if (n.some((x, i) => !(x >= 1 && x <= 30_000) || (i > 0 && x <= n[i - 1]!))) throw new RangeError(`--sizes: ascending integers, each 1..30000, got ${JSON.stringify(raw)}`);
  return n;
}

export function check(f: Flags): void {
  parseSizes(String(f.sizes));
}

/** IPVS already loaded here (never modprobe'd by the bench on the host: loading a module changes the host's kernel). */
function ipvsHere(): boolean {
  return fs.existsSync('/proc/net/ip_vs');
}

/** Runs this bench with --here inside the kernel VM and prints its output. */
function inVm(f: Flags): void {
  const run = path.join(ROOT, 'scripts', 'kernel-vm', 'run');
  const job = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pw-ipvsbench-')), 'job.sh');
  const args = ['--sizes', String(f.sizes), '--connects', String(f.connects), '--changes', String(f.changes), '--here'];
  // The modules loaded and nft run once first: their first load under TCG from the 9p root takes
  // longer than a command's 15 s limit in src/exec/runner.ts.
  const mods = 'ip_vs ip_vs_rr dummy veth nf_tables nft_ct nft_nat nft_masq nft_reject_inet nft_chain_nat nf_nat nft_numgen';
  // The VM runs a job script (sh, in ROOT: --cwd). Its only variable part is the bench's own
  // arguments, numbers and comma lists checked against a strict character set and single-quoted,
  // so none can be read as shell syntax.
  const quoted = args.map((a) => {
    if (!/^[A-Za-z0-9,._=-]+$/.test(a)) throw new Error(`bench ipvs: argument ${JSON.stringify(a)} cannot go to the kernel VM (letters, digits and ,._=- only)`);
    return `'${a}'`;
  });
  fs.writeFileSync(job, `set -e\nmodprobe -a ${mods}\nnft list ruleset >/dev/null\nipvsadm -Ln >/dev/null\nexec node dist/bench/main.js ipvs ${quoted.join(' ')}\n`);
  say(`this kernel has no IPVS: running in the kernel VM (scripts/kernel-vm, ${f['vm-mem']} MiB, TCG; several minutes)`);
  try {
    const r = spawnSync('bash', [run, '--mem', String(f['vm-mem']), '--cwd', ROOT, job, '3600'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`the kernel VM run failed (exit ${r.status}): see its output above; is the VM built (bash scripts/kernel-vm/build)?`);
  } finally {
    fs.rmSync(path.dirname(job), { recursive: true, force: true });
  }
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const inNs = (ns: string, cmd: string, args: string[], input?: string) => execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', input, maxBuffer: 64 << 20, stdio: ['pipe', 'pipe', 'pipe'] });

interface Net { node: string; cli: string; srv: string; ref: string; all: string[] }

function buildNet(prefix: string): Net {
  const n: Net = { node: `${prefix}-node`, cli: `${prefix}-cli`, srv: `${prefix}-srv`, ref: `${prefix}-ref`, all: [] };
  for (const ns of [n.node, n.cli, n.srv, n.ref]) {
    ip('netns', 'add', ns);
    n.all.push(ns);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  }
  ip('-n', n.node, 'link', 'add', 'to-cli', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.cli);
  ip('-n', n.node, 'link', 'add', 'to-srv', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.srv);
  inNs(n.node, 'ip', ['addr', 'add', `${BENCH_NET.nodeIp}/24`, 'dev', 'to-cli']);
  inNs(n.node, 'ip', ['addr', 'add', '10.99.1.1/24', 'dev', 'to-srv']);
  for (const l of ['to-cli', 'to-srv']) inNs(n.node, 'ip', ['link', 'set', l, 'up']);
  inNs(n.node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  inNs(n.cli, 'ip', ['addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
  inNs(n.cli, 'ip', ['link', 'set', 'eth0', 'up']);
  inNs(n.cli, 'ip', ['route', 'add', 'default', 'via', BENCH_NET.nodeIp]);
  for (const a of [...BENCH_NET.endpoints, BENCH_NET.altEndpoint]) inNs(n.srv, 'ip', ['addr', 'add', `${a}/24`, 'dev', 'eth0']);
  inNs(n.srv, 'ip', ['link', 'set', 'eth0', 'up']);
  inNs(n.srv, 'ip', ['route', 'add', 'default', 'via', '10.99.1.1']);
  return n;
}

function teardown(net: Net, procs: ChildProcess[]): void {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of net.all) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

function child(net: Net, args: string[]): Record<string, unknown> {
  const out = inNs(net.node, process.execPath, [path.join(DIST, 'bench', 'ipvs-child.js'), ...args]);
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

interface Latency { p50: number; p99: number; failed: number }
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! / 1000;

function latency(net: Net, target: string, connects: number): Latency {
  // 5 s per connect: TCG on a busy 2-core host stalls for seconds at times.
  const out = inNs(net.cli, process.execPath, [path.join(DIST, 'src', 'lab', 'echo.js'), 'latency', String(connects), String(Math.min(100, connects)), '5000', target]);
  const r = JSON.parse(out.trim()) as { ok: number; failed: number; errors: object; answerUs: number[] };
  if (r.ok < connects * 0.98) throw new Error(`latency to ${target}: ${r.failed} of ${connects} connects failed: ${JSON.stringify(r.errors)}`);
  // A failed connect counts as slower than any answer (as bench dns's lost queries).
  const s = [...r.answerUs.sort((a, b) => a - b), ...Array.from({ length: r.failed }, () => Infinity)];
  return { p50: pct(s, 50), p99: pct(s, 99), failed: r.failed };
}

function restoreMs(net: Net, n: number): number {
  const file = path.join(os.tmpdir(), `pw-ipvsb-restore-${n}.txt`);
  child(net, ['restore-file', String(n), file]);
  try {
    inNs(net.ref, 'ipvsadm', ['-C']);
    const t0 = performance.now();
    inNs(net.ref, 'ipvsadm', ['-R'], fs.readFileSync(file, 'utf8'));
    const ms = performance.now() - t0;
    const listed = inNs(net.ref, 'ipvsadm', ['-S', '-n']).split('\n').filter((l) => l.startsWith('-A ')).length;
    if (listed !== n) throw new Error(`ipvsadm -R loaded ${listed} services, want ${n}`);
    inNs(net.ref, 'ipvsadm', ['-C']);
    return ms;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

interface Row {
  n: number;
  fullMs: number;
  fullIpvsMs: number;
  bindMs: number;
  restoreMs: number;
  changeMs: number;
  changeIpvsMs: number;
  svc: Latency;
  direct: Latency;
}

const num = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function here(f: Flags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces (nothing outside them is touched)');
  const sizes = parseSizes(String(f.sizes));
  execFileSync('ipvsadm', ['--version'], { stdio: 'ignore' });
  const net = buildNet(`pw-ipvsb-${randomBytes(3).toString('hex')}`);
  const procs: ChildProcess[] = [];
  const onSignal = () => { teardown(net, procs); process.exit(130); };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const rows: Row[] = [];
  const t0 = performance.now();
  try {
    const echo = spawn('ip', ['netns', 'exec', net.srv, process.execPath, path.join(DIST, 'src', 'lab', 'echo.js'), 'serve', String(BENCH_NET.port), 'srv'], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(echo);
    await new Promise<void>((resolve, reject) => {
      echo.stdout!.once('data', () => resolve());
      echo.once('exit', (c) => reject(new Error(`echo server exited ${c}`)));
    });
    for (const n of sizes) {
      say(`N=${n}: full sync, ${f.changes} changes`);
      const m = child(net, ['measure', String(n), String(f.changes)]) as { fullMs: number; fullIpvsMs: number; bindMs: number; services: number; changes: { ms: number; ipvsMs: number }[] };
      if (m.services !== n) throw new Error(`N=${n}: IPVS holds ${m.services} services after the sync, want ${n}`);
      say(`N=${n}: latency (${f.connects} connects)`);
      const middle = clusterIp(Math.floor(n / 2));
      const svc = latency(net, `${middle}:80`, Number(f.connects));
      const direct = latency(net, `${BENCH_NET.endpoints[0]}:${BENCH_NET.port}`, Number(f.connects));
      say(`N=${n}: ipvsadm -R`);
      const restore = restoreMs(net, n);
      rows.push({
        n, fullMs: m.fullMs, fullIpvsMs: m.fullIpvsMs, bindMs: m.bindMs, restoreMs: restore,
        changeMs: median(m.changes.map((c) => c.ms)), changeIpvsMs: median(m.changes.map((c) => c.ipvsMs)), svc, direct,
      });
    }
    child(net, ['remove']);
  } finally {
    teardown(net, procs);
  }
  const left = fs.readdirSync('/run/netns').filter((x) => net.all.includes(x));
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const lines = [
    `podwire bench ipvs — N ClusterIP services × 5 endpoints (N = ${sizes.join(', ')}), ${f.connects} connects per latency figure, ${f.changes} changes per size`,
    `machine: ${machine()}, ${execFileSync('ipvsadm', ['--version'], { encoding: 'utf8' }).trim()}; ${new Date().toISOString().slice(0, 10)}; ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    'full sync: IpvsProxyBackend.sync from nothing (IPVS part: the netlink service/real-server requests only; bind: the ClusterIPs added to podwire-ipvs0); ipvsadm -R: the same services and real servers restored in a fresh netns; one change: one endpoint replaced, a partial sync (median); latency: cli netns → ClusterIP:80 (IPVS, masquerading forward) → echo, connect() → end of answer; direct: → the endpoint itself',
    '',
    table([
      ['N', 'full sync ms', 'IPVS part ms', 'bind ms', 'ipvsadm -R ms', 'IPVS/ipvsadm', 'change ms', 'change IPVS ms', 'svc p50 ms', 'svc p99 ms', 'direct p50 ms', 'failed connects'],
      ...rows.map((r) => [String(r.n), num(r.fullMs), num(r.fullIpvsMs), num(r.bindMs), num(r.restoreMs), `${(r.fullIpvsMs / r.restoreMs).toFixed(2)}×`, num(r.changeMs), num(r.changeIpvsMs), num(r.svc.p50), num(r.svc.p99), num(r.direct.p50), `${r.svc.failed} / ${r.direct.failed}`]),
    ]),
    '',
    `target: full sync of ${last.n} ≤ ${TARGETS.restoreRatio}× ipvsadm --restore: ${last.fullIpvsMs / last.restoreMs <= TARGETS.restoreRatio ? 'met' : 'NOT met'} (IPVS part ${(last.fullIpvsMs / last.restoreMs).toFixed(2)}×; the whole sync, with nft and the addresses, ${(last.fullMs / last.restoreMs).toFixed(2)}×)`,
    `target: one change at ${last.n} < ${TARGETS.changeMs} ms: ${last.changeMs < TARGETS.changeMs ? 'met' : 'NOT met'} (${num(last.changeMs)} ms median, under TCG)`,
    `target: latency at ${last.n} within ${TARGETS.latencyRatio}× of ${first.n}: ${last.svc.p50 <= first.svc.p50 * TARGETS.latencyRatio ? 'met' : 'NOT met'} (p50 ${num(last.svc.p50)} vs ${num(first.svc.p50)} ms: ${(last.svc.p50 / first.svc.p50).toFixed(2)}×; p99 ${(last.svc.p99 / first.svc.p99).toFixed(2)}×)`,
    left.length ? `cleanup: LEFT BEHIND ${left.join(' ')}` : `cleanup: namespaces ${net.all.join(' ')} removed`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

export async function run(f: Flags): Promise<void> {
  if (f.here || ipvsHere()) return here(f);
  inVm(f);
}
