// The netlink benchmark: N veth pairs are created, configured (both ends up, an IPv4 /30 on the `a`
// end, a /32 route via the peer) and deleted, three ways, one after another in the same process:
// through podwire's netlink library, through one `ip` process per command, and through a single
// `ip -batch` process. Every method works in its own fresh netns and is checked with `ip -j` after
// each phase, so a number can never come from a run that did not do the work.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { machine as baseMachine, sleep, table } from './util.js';
import { addrAdd } from '../src/netlink/address.js';
import { NETLINK_ROUTE } from '../src/netlink/constants.js';
import { linkAdd, linkDel, linkGet, linkList, linkSet } from '../src/netlink/link.js';
import { routeAdd } from '../src/netlink/route.js';
import { NetlinkSocket } from '../src/netlink/socket.js';
import { createNetns, deleteNetns, listNetns, netnsExists, openNetns, withNetns, type NetnsRef } from '../src/netns/netns.js';

export const summary = 'create + configure + delete N veth pairs: library vs `ip` per command vs `ip -batch`';

export const flags: FlagSpecs = {
  pairs: { type: 'int', default: 500, min: 1, max: 5000, help: 'veth pairs per method (default 500)' },
  repeat: { type: 'int', default: 1, min: 1, max: 50, help: 'runs of every method; each column is the median (default 1)' },
  methods: { type: 'string', default: 'lib,exec,batch', help: 'comma-separated subset of lib,lib-get,exec,batch (default lib,exec,batch)' },
};

const OPS_PER_PAIR = 6; // link add, link set up ×2, addr add, route add, link del
const YIELD_EVERY = 50; // pairs between returns to the event loop, so SIGINT/SIGTERM are handled promptly
// The kernel tears a deleted netns down asynchronously (cleanup_net, under the RTNL lock), and a new
// one is set up with work of its own: let that finish before the clock starts, or the next method pays.
const SETTLE_MS = 300;
const FLOOR_EXECS = 100;

interface Pair {
  a: string;
  b: string;
  cidr: string; // on the a end, e.g. 10.100.0.1/30
  peer: string; // the b side of the /30, gateway of the route
  dst: string; // e.g. 10.200.0.0/32
}

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Pair i: /30 number i of 10.100.0.0/14 and address i of 10.200.0.0/16 (room for 65536 pairs). */
function vethPairs(n: number): Pair[] {
  const pairs: Pair[] = [];
  for (let i = 0; i < n; i++) {
    const net = ((10 << 24) | (100 << 16)) + 4 * i;
    pairs.push({ a: `bv${i}a`, b: `bv${i}b`, cidr: `${ipv4(net + 1)}/30`, peer: ipv4(net + 2), dst: `${ipv4(((10 << 24) | (200 << 16)) + i)}/32` });
  }
  return pairs;
}

/** The `ip` command lines of both ip methods: all link adds first, then per pair the configuration. */
function ipCommands(pairs: Pair[]): { create: string[][]; remove: string[][] } {
  const create = pairs.map((p) => ['link', 'add', p.a, 'type', 'veth', 'peer', 'name', p.b]);
  for (const p of pairs) {
    create.push(['link', 'set', p.a, 'up'], ['link', 'set', p.b, 'up']);
    create.push(['addr', 'add', p.cidr, 'dev', p.a], ['route', 'add', p.dst, 'via', p.peer, 'dev', p.a]);
  }
  return { create, remove: pairs.map((p) => ['link', 'del', p.a]) };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function eachPair<T>(items: T[], fn: (item: T) => void): Promise<void> {
  for (let i = 0; i < items.length; i++) {
    fn(items[i]);
    if ((i + 1) % YIELD_EVERY === 0) await tick();
  }
}

/** One `ip` process forked from inside the netns (no `ip netns exec`): fails with ip's own message. */
function ipExec(ref: NetnsRef, args: string[]): void {
  try {
    withNetns(ref, () => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

// ---- the methods -------------------------------------------------------------------------------

/** One method run in one netns; create and destroy are the two timed phases. */
interface Session {
  create(): Promise<void>;
  destroy(): Promise<void>;
  close(): void;
}

interface Method {
  id: string;
  label: string;
  start(ns: string, ref: NetnsRef, pairs: Pair[]): Session;
}

/** The library: one NETLINK_ROUTE socket bound to the netns, ifindexes from one dump (or a get per link). */
function librarySession(ns: string, pairs: Pair[], lookup: 'list' | 'get'): Session {
  let sock: NetlinkSocket | undefined;
  const index = new Map<string, number>();
  const ifindex = (s: NetlinkSocket, name: string): number => {
    if (lookup === 'get') return linkGet(s, name).index;
    const found = index.get(name);
    if (found === undefined) throw new Error(`link ${name} is missing from the link dump after creation`);
    return found;
  };
  return {
    async create() {
      const s = (sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns }));
      await eachPair(pairs, (p) => linkAdd(s, { kind: 'veth', name: p.a, peer: { name: p.b } }));
      if (lookup === 'list') for (const link of linkList(s)) index.set(link.name, link.index);
      await eachPair(pairs, (p) => {
        const a = ifindex(s, p.a);
        const b = ifindex(s, p.b);
        index.set(p.a, a);
        linkSet(s, a, { up: true });
        linkSet(s, b, { up: true });
        addrAdd(s, { ifindex: a, cidr: p.cidr });
        routeAdd(s, { dst: p.dst, gateway: p.peer, ifindex: a });
      });
    },
    async destroy() {
      const s = sock!;
      await eachPair(pairs, (p) => linkDel(s, index.get(p.a)!));
      s.close();
      sock = undefined;
    },
    close() {
      sock?.close();
    },
  };
}

function execSession(ref: NetnsRef, pairs: Pair[]): Session {
  const cmds = ipCommands(pairs);
  return {
    create: () => eachPair(cmds.create, (args) => ipExec(ref, args)),
    destroy: () => eachPair(cmds.remove, (args) => ipExec(ref, args)),
    close() {},
  };
}

/** Writing the batch file is part of the timed phase: it is what using `ip -batch` costs. */
function batchSession(ref: NetnsRef, pairs: Pair[]): Session {
  const cmds = ipCommands(pairs);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-bench-'));
  const runBatch = async (name: string, lines: string[][]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, lines.map((l) => l.join(' ') + '\n').join(''));
    ipExec(ref, ['-batch', file]);
  };
  return {
    create: () => runBatch('create', cmds.create),
    destroy: () => runBatch('delete', cmds.remove),
    close: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

const METHODS: Method[] = [
  { id: 'lib', label: 'library', start: (ns, _ref, pairs) => librarySession(ns, pairs, 'list') },
  { id: 'lib-get', label: 'library+get', start: (ns, _ref, pairs) => librarySession(ns, pairs, 'get') },
  { id: 'exec', label: 'ip exec', start: (_ns, ref, pairs) => execSession(ref, pairs) },
  { id: 'batch', label: 'ip -batch', start: (_ns, ref, pairs) => batchSession(ref, pairs) },
];

// ---- verification: an independent oracle (`ip -n NS -j`, iproute2 enters the netns itself) -----

function ipJson(ns: string, args: string[]): any[] {
  const out = execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return out.trim() ? JSON.parse(out) : [];
}

function verifyConfigured(ns: string, pairs: Pair[]): void {
  const links = new Map(ipJson(ns, ['link', 'show']).map((l) => [l.ifname as string, l]));
  const addrs = new Map(ipJson(ns, ['-4', 'addr', 'show']).map((l) => [l.ifname as string, l.addr_info ?? []]));
  const routes = new Set(
    ipJson(ns, ['-4', 'route', 'show']).map((r) => `${r.dst.includes('/') ? r.dst : r.dst + '/32'} ${r.gateway ?? '-'} ${r.dev}`),
  );
  const problems: string[] = [];
  if (links.size !== 2 * pairs.length + 1) problems.push(`${links.size} links, expected ${2 * pairs.length + 1}`);
  if (routes.size !== 2 * pairs.length) problems.push(`${routes.size} IPv4 routes, expected ${2 * pairs.length}`);
  for (const p of pairs) {
    for (const end of [p.a, p.b]) {
      if (!links.get(end)?.flags?.includes('UP')) problems.push(`${end} missing or not up`);
    }
    const [local, len] = p.cidr.split('/');
    if (!addrs.get(p.a)?.some((x: any) => x.local === local && x.prefixlen === Number(len))) problems.push(`${p.a} lacks ${p.cidr}`);
    if (!routes.has(`${p.dst} ${p.peer} ${p.a}`)) problems.push(`route ${p.dst} via ${p.peer} dev ${p.a} missing`);
    if (problems.length > 5) break;
  }
  if (problems.length) throw new Error(`after create+configure: ${problems.slice(0, 5).join('; ')}`);
}

function verifyDeleted(ns: string): void {
  const links = ipJson(ns, ['link', 'show']).map((l) => l.ifname as string);
  const routes = ipJson(ns, ['-4', 'route', 'show']);
  if (links.join() !== 'lo' || routes.length) {
    throw new Error(`after delete: links [${links.slice(0, 5).join(', ')}${links.length > 5 ? ', …' : ''}], ${routes.length} IPv4 routes left; expected only lo`);
  }
}

// ---- namespaces: always removed, also on SIGINT/SIGTERM/SIGHUP and on exit ---------------------

const liveNetns = new Set<string>();

function dropNetns(name: string): void {
  liveNetns.delete(name);
  try {
    if (netnsExists(name)) deleteNetns(name);
  } catch (err) {
    process.stderr.write(`bench: could not delete netns ${name}: ${(err as Error).message}; run: ip netns del ${name}\n`);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  for (const name of [...liveNetns]) dropNetns(name);
  process.stderr.write(`\nbench netlink: interrupted by ${signal}; bench namespaces removed\n`);
  process.exit(128 + (os.constants.signals[signal] ?? 1));
}
const dropAll = () => [...liveNetns].forEach(dropNetns);
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

async function inFreshNetns<T>(name: string, fn: (ref: NetnsRef) => Promise<T>): Promise<T> {
  createNetns(name);
  liveNetns.add(name);
  let ref: NetnsRef | undefined;
  try {
    ref = openNetns(name);
    ipExec(ref, ['link', 'set', 'lo', 'up']);
    return await fn(ref);
  } finally {
    ref?.close();
    dropNetns(name);
  }
}

// ---- measurement ------------------------------------------------------------------------------

interface Snapshot {
  wall: number;
  user: number; // ms of CPU, this process
  sys: number;
  childUser: number; // ms of CPU, waited-for children (the ip processes)
  childSys: number;
}

let clockTicks = 100;

function snapshot(): Snapshot {
  const cpu = process.cpuUsage();
  // /proc/self/stat after the ")" of comm: field 3 is index 0, so cutime (16) and cstime (17) are 13 and 14.
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / clockTicks;
  return { wall: performance.now(), user: cpu.user / 1000, sys: cpu.system / 1000, childUser: Number(fields[13]) * tick, childSys: Number(fields[14]) * tick };
}

function since(a: Snapshot, b: Snapshot): Snapshot {
  return { wall: b.wall - a.wall, user: b.user - a.user, sys: b.sys - a.sys, childUser: b.childUser - a.childUser, childSys: b.childSys - a.childSys };
}

const add = (a: Snapshot, b: Snapshot): Snapshot => ({
  wall: a.wall + b.wall, user: a.user + b.user, sys: a.sys + b.sys, childUser: a.childUser + b.childUser, childSys: a.childSys + b.childSys,
});

interface Result {
  createMs: number;
  deleteMs: number;
  total: Snapshot;
}

async function runMethod(method: Method, pairs: Pair[]): Promise<Result> {
  const name = `pw-bench-${randomBytes(4).toString('hex')}-${method.id}`;
  return inFreshNetns(name, async (ref) => {
    const session = method.start(name, ref, pairs);
    try {
      await sleep(SETTLE_MS);
      const t0 = snapshot();
      await session.create();
      const created = since(t0, snapshot());
      verifyConfigured(name, pairs);
      const t1 = snapshot();
      await session.destroy();
      const deleted = since(t1, snapshot());
      verifyDeleted(name);
      return { createMs: created.wall, deleteMs: deleted.wall, total: add(created, deleted) };
    } catch (err) {
      throw new Error(`${method.label}: ${(err as Error).message}`);
    } finally {
      session.close();
    }
  });
}

/** The cost of a process as such: fork+exec of /bin/true and of `ip -V` (ip's startup, no netlink). */
async function execFloor(count: number): Promise<{ trueMs: number; ipMs: number }> {
  return inFreshNetns(`pw-bench-${randomBytes(4).toString('hex')}-floor`, async (ref) => {
    const timed = (cmd: string, args: string[]) => {
      const t0 = performance.now();
      withNetns(ref, () => execFileSync(cmd, args, { stdio: 'ignore' }));
      return performance.now() - t0;
    };
    let trueMs = 0;
    let ipMs = 0;
    for (let i = 0; i < count; i++) {
      trueMs += timed('true', []); // interleaved, so drift of the machine hits both alike
      ipMs += timed('ip', ['-V']);
    }
    return { trueMs: trueMs / count, ipMs: ipMs / count };
  });
}

// ---- report -----------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function medianResult(rs: Result[]): Result {
  const pick = (f: (r: Result) => number) => median(rs.map(f));
  const t = (k: keyof Snapshot) => pick((r) => r.total[k]);
  return {
    createMs: pick((r) => r.createMs),
    deleteMs: pick((r) => r.deleteMs),
    total: { wall: t('wall'), user: t('user'), sys: t('sys'), childUser: t('childUser'), childSys: t('childSys') },
  };
}

const ms = (x: number) => x.toFixed(x < 100 ? 1 : 0);

/** method time / library time, in words; within ±5% it is a tie, not a winner. */
function ratioText(x: number): string {
  if (x >= 1.05) return `${x.toFixed(1)}× slower`;
  if (x <= 1 / 1.05) return `${(1 / x).toFixed(1)}× faster`;
  return `on par (${x.toFixed(2)}×)`;
}

const ratioCell = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)}×`;

function machineLine(): string {
  const ipVersion = execFileSync('ip', ['-V'], { encoding: 'utf8' }).trim().match(/iproute2-[\w.]+/)?.[0] ?? 'iproute2 ?';
  return `${baseMachine()}, ${ipVersion}`;
}

function report(n: number, repeat: number, results: Map<Method, Result[]>, floor: { trueMs: number; ipMs: number }): void {
  const ops = OPS_PER_PAIR * n;
  const medians = new Map([...results].map(([m, rs]) => [m, medianResult(rs)]));
  const lib = medians.get(METHODS[0]);
  const vsLib = (m: Method, f: (r: Result) => number) => (lib ? ratioCell(f(medians.get(m)!) / f(lib)) : '—');
  const main = [['method', 'create+configure ms', 'delete ms', 'total ms', 'ops/s', 'total vs library', 'create+configure vs library']];
  const cpu = [['method', 'wall ms', 'node user', 'node sys', 'ip user', 'ip sys', 'wall − CPU']];
  for (const [m, r] of medians) {
    const t = r.total;
    main.push([m.label, ms(r.createMs), ms(r.deleteMs), ms(t.wall), Math.round(ops / (t.wall / 1000)).toString(), vsLib(m, (x) => x.total.wall), vsLib(m, (x) => x.createMs)]);
    cpu.push([m.label, ms(t.wall), ms(t.user), ms(t.sys), ms(t.childUser), ms(t.childSys), ms(t.wall - t.user - t.sys - t.childUser - t.childSys)]);
  }
  const out = [
    `podwire bench netlink — ${n} veth pairs, ${ops} operations per method (per pair: link add, link set up ×2, addr add, route add, link del)`,
    `machine: ${machineLine()}; ${new Date().toISOString().slice(0, 10)}`,
    `${repeat === 1 ? '1 run' : `median of ${repeat} runs (each column separately)`} per method, each in a fresh netns, verified with ip -j after each phase`,
    '',
    table(main),
    '',
  ];
  for (const [m, r] of medians) {
    if (!lib || m === METHODS[0]) continue;
    const vs = ratioText(r.total.wall / lib.total.wall);
    out.push(`${m.label}: ${vs.startsWith('on par') ? vs.replace('on par', 'on par with the library') : `${vs} than the library`} in total ` +
      `(create+configure ${ratioText(r.createMs / lib.createMs)}, delete ${ratioText(r.deleteMs / lib.deleteMs)})`);
  }
  out.push('', 'where the time goes (CPU ms; "ip" = the ip child processes; wall − CPU = waiting, e.g. RCU grace periods in link delete):', table(cpu));
  out.push('', `process floor: fork+exec from this node process of /bin/true ${floor.trueMs.toFixed(2)} ms, of \`ip -V\` ${floor.ipMs.toFixed(2)} ms (mean of ${FLOOR_EXECS} each)`);
  process.stdout.write(out.join('\n') + '\n');
}

function selectMethods(spec: string): Method[] {
  const ids = spec.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = ids.filter((id) => !METHODS.some((m) => m.id === id));
  if (unknown.length || !ids.length) {
    throw new RangeError(`--methods: unknown ${JSON.stringify(unknown.join(',') || spec)} (choose from ${METHODS.map((m) => m.id).join(',')})`);
  }
  return METHODS.filter((m) => ids.includes(m.id));
}

/** Validate flags that the generic parser cannot (throws RangeError → usage error). */
export function check(f: Flags): void {
  selectMethods(String(f.methods));
}

export async function run(f: Flags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces and veth pairs (nothing outside them is touched)');
  const n = Number(f.pairs);
  const repeat = Number(f.repeat);
  const methods = selectMethods(String(f.methods));
  const stale = listNetns().filter((x) => x.startsWith('pw-bench-'));
  if (stale.length) process.stderr.write(`note: other bench namespaces exist (another run, or a killed one): ${stale.join(' ')}\n`);
  try {
    clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  } catch {
    // keep USER_HZ 100
  }
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', dropAll);
  try {
    const pairs = vethPairs(n);
    const results = new Map<Method, Result[]>(methods.map((m) => [m, []]));
    for (let r = 1; r <= repeat; r++) {
      // Each repeat starts with the next method, so no method always runs first (cold) or last.
      const order = methods.map((_, k) => methods[(k + r - 1) % methods.length]);
      for (const method of order) {
        const res = await runMethod(method, pairs);
        results.get(method)!.push(res);
        process.stderr.write(`  run ${r}/${repeat} ${method.label.padEnd(11)} ${ms(res.createMs).padStart(8)} + ${ms(res.deleteMs).padStart(7)} = ${ms(res.total.wall).padStart(8)} ms  verified\n`);
      }
    }
    const floor = await execFloor(FLOOR_EXECS);
    report(n, repeat, results, floor);
  } finally {
    dropAll();
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('exit', dropAll);
  }
}
