// What the DNS benchmark (bench/dns.ts) runs and owns: its two netns (server, client) joined by a
// veth, its temp dir, and the processes it starts there (podwire's DNS server child, unbound,
// dnsperf, dig), each stopped by its PID; all of it removed at the end, on failure and on
// SIGINT/SIGTERM/SIGHUP. Plus the CPU counters the report reads (/proc/PID/stat, /proc/stat).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createNetns, deleteNetns, listNetns, netnsExists } from '../src/netns/netns.js';

const exec = promisify(execFile);
export const PREFIX = 'pw-dnsbench-';

const live = { netns: new Set<string>(), dirs: new Set<string>(), procs: new Set<ChildProcess>() };

/** The tool's absolute path (PATH, then the sbin dirs a non-login root shell may lack), or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The Debian packages the benchmark needs that are not installed, as "tool (package)" strings. */
export function missingTools(): string[] {
  const want = [['dnsperf', 'dnsperf'], ['unbound', 'unbound'], ['unbound-checkconf', 'unbound'], ['dig', 'bind9-dnsutils']] as const;
  return want.filter(([tool]) => !findTool(tool)).map(([tool, pkg]) => `${tool} (apt-get install ${pkg})`);
}

export function newDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
  live.dirs.add(dir);
  return dir;
}

function newNetns(name: string): string {
  createNetns(name);
  live.netns.add(name);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export interface Lab {
  server: string;
  client: string;
}

/**
 * pw-dnsbench-<tag>-srv and -cli, a veth between them (made inside the server netns, its peer
 * moved straight into the client's: nothing is created in the root namespace), server addresses
 * on s0, the client's on c0, all in one /24.
 */
export function buildLab(tag: string, serverAddrs: string[], clientAddr: string): Lab {
  const server = newNetns(`${PREFIX}${tag}-srv`);
  const client = newNetns(`${PREFIX}${tag}-cli`);
  const ip = (ns: string, ...args: string[]) => execFileSync('ip', ['-n', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  ip(server, 'link', 'add', 's0', 'type', 'veth', 'peer', 'name', 'c0', 'netns', client);
  for (const a of serverAddrs) ip(server, 'addr', 'add', `${a}/24`, 'dev', 's0');
  ip(client, 'addr', 'add', `${clientAddr}/24`, 'dev', 'c0');
  ip(server, 'link', 'set', 's0', 'up');
  ip(client, 'link', 'set', 'c0', 'up');
  return { server, client };
}

export interface Proc {
  proc: ChildProcess;
  pid: number;
  what: string;
  /** The last 4,000 characters of its stderr. */
  stderr(): string;
  exited: Promise<number | null>;
}

/** CMD inside a netns (`ip netns exec` execs it, so the PID is the command's own); tracked until it exits. */
export function startIn(ns: string, what: string, cmd: string, args: string[], stdout: 'pipe' | 'ignore' | number = 'ignore'): Proc {
  const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', stdout, 'pipe'] });
  if (proc.pid === undefined) throw new Error(`${what}: could not start ${cmd} in ${ns}`);
  live.procs.add(proc);
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => {
    live.procs.delete(proc);
    resolve(code);
  }));
  proc.on('error', () => {}); // reported through exit / the callers' checks
  return { proc, pid: proc.pid, what, stderr: () => err, exited };
}

/** SIGTERM by PID, SIGKILL after 3 s. */
export async function stop(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.stdin?.end();
  p.proc.kill('SIGTERM');
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 3000);
  await p.exited;
  clearTimeout(timer);
}

/** `dig @SERVER ARGS` from the client netns; stdout, or the error naming the server. */
export async function dig(ns: string, server: string, args: string[]): Promise<string> {
  try {
    return (await exec('ip', ['netns', 'exec', ns, 'dig', `@${server}`, '+time=2', '+tries=1', ...args], { timeout: 10_000 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; message: string };
    return e.stdout ?? `dig failed: ${e.message}`;
  }
}

/** Everything still held: processes killed by PID, netns deleted, temp dirs removed. */
export function dropAll(): void {
  for (const p of [...live.procs]) {
    live.procs.delete(p);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
  for (const name of [...live.netns]) {
    live.netns.delete(name);
    try {
      if (netnsExists(name)) deleteNetns(name);
    } catch (err) {
      process.stderr.write(`bench dns: could not delete netns ${name}: ${(err as Error).message}; run: ip netns del ${name}\n`);
    }
  }
  for (const dir of [...live.dirs]) {
    live.dirs.delete(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const leftNetns = (tag: string) => listNetns().filter((n) => n.startsWith(`${PREFIX}${tag}-`));

function onSignal(signal: NodeJS.Signals): void {
  dropAll();
  process.stderr.write(`\nbench dns: interrupted by ${signal}; its processes stopped, its namespaces and temp dir removed\n`);
  process.exit(128 + (os.constants.signals[signal] ?? 1));
}
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function guard(): () => void {
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', dropAll);
  return () => {
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('exit', dropAll);
  };
}

// ---- CPU --------------------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds (NaN when it is gone). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** The machine's CPU seconds from /proc/stat (all cores): in processes (user, nice, system) and in interrupts (irq, softirq: packet processing). */
export function machineCpuSeconds(): { processes: number; interrupts: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { processes: (cpu[0]! + cpu[1]! + cpu[2]!) / CLK_TCK, interrupts: (cpu[5]! + cpu[6]!) / CLK_TCK };
}

/** The netns's UDP RcvbufErrors (/proc/net/snmp is per netns): datagrams dropped because a socket's receive buffer was full. */
export function udpRcvbufErrors(ns: string): number {
  const snmp = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('Udp: '));
  const [names, values] = [snmp[0]?.split(/\s+/) ?? [], snmp[1]?.split(/\s+/) ?? []];
  const i = names.indexOf('RcvbufErrors');
  if (i < 0) throw new Error(`no Udp RcvbufErrors in /proc/net/snmp of ${ns}`);
  return Number(values[i]);
}
