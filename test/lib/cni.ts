// A container-runtime-like harness for CNI plugins. Plugins are executed exactly as a runtime does
// it (binary found in CNI_PATH, CNI_* env, config on stdin, result or error JSON on stdout), but
// always with their own process inside a test "host" netns (nsenter --net=…), never in this
// machine's own netns. The conflist runner follows libcni (containernetworking/cni libcni/api.go):
// name + cniVersion injected into every plugin, prevResult chained on ADD, the cached ADD result
// as prevResult of CHECK and DEL (DEL in reverse order), runtimeConfig filtered by capabilities.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { netnsExists, netnsPath } from '../../src/netns/netns.js';
import { spawnInNetns } from '../../src/netns/exec.js';
import { freshNetns, ipJson } from './netns.js';

export const REFERENCE_CNI_DIR = '/usr/lib/cni';
/** dist/test/lib → dist/bin/podwire-cni.mjs, the bundled plugin: what package.json installs (scripts/bundle.js). */
export const PODWIRE_CNI_MAIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'bin', 'podwire-cni.mjs');
export const SKIP_NO_REFERENCE = fs.existsSync(path.join(REFERENCE_CNI_DIR, 'bridge'))
  ? false
  : `reference CNI plugins missing (${REFERENCE_CNI_DIR}/bridge): apt-get install containernetworking-plugins (scripts/bootstrap)`;

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

// ---- one plugin invocation ---------------------------------------------------------------------

export interface CniErrorJson {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

export interface InvokeOptions {
  pluginDir: string;
  type: string;
  command: string;
  containerId?: string;
  /** netns name (under /run/netns) or absolute path; '' = none (libcni passes empty strings). */
  netns?: string;
  ifname?: string;
  args?: string;
  /** An object is sent as JSON; a string is sent verbatim (malformed-input tests). */
  config: unknown;
  /** The netns that plays the node: the plugin process runs in it. */
  hostNetns: string;
  /** Environment overrides; a key set to undefined is removed (missing-variable tests). */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** nsenter (default: a separate, independent way in) or setns (fork from a thread inside the netns; no extra exec, used by the bench). */
  launcher?: 'nsenter' | 'setns';
  /** Write the config only once the plugin waits in read(0) (at most 3 s): a runtime's writer may run
   * after exec (Go's os/exec copies stdin in a goroutine), so a plugin must wait for its input. */
  lateStdin?: boolean;
  /** Called with the child right after spawn (the crash tests kill it). */
  onSpawn?: (child: ChildProcess) => void;
}

export interface InvokeResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  result?: any;
  error?: CniErrorJson;
  stdout: string;
  stderr: string;
  ms: number;
}

const PATH_ENV = `${path.dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

export const asNetnsPath = (ns: string): string => (ns === '' || ns.startsWith('/') ? ns : netnsPath(ns));

/** The whole environment of the plugin: PATH (iptables, node) and CNI_*; nothing else leaks in. */
export function pluginEnv(o: InvokeOptions): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: PATH_ENV,
    CNI_COMMAND: o.command,
    CNI_CONTAINERID: o.containerId ?? '',
    CNI_NETNS: asNetnsPath(o.netns ?? ''),
    CNI_IFNAME: o.ifname ?? '',
    CNI_ARGS: o.args ?? '',
    CNI_PATH: o.pluginDir,
    ...o.env,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export function invokePlugin(o: InvokeOptions): Promise<InvokeResult> {
  const binary = path.join(o.pluginDir, o.type);
  const hostPath = asNetnsPath(o.hostNetns);
  // Never let a plugin run in this machine's netns: the host netns must be a test netns that exists.
  if (!/^\/run\/netns\/pw-/.test(hostPath) || !netnsExists(hostPath)) {
    return Promise.reject(new Error(`invokePlugin: host netns ${hostPath} is not an existing pw-* netns; refusing to run ${o.type}`));
  }
  const input = typeof o.config === 'string' ? o.config : JSON.stringify(o.config);
  const opts = { env: pluginEnv(o), stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'] };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child =
      o.launcher === 'setns' ? spawnInNetns(hostPath, binary, [], opts) : spawn('nsenter', [`--net=${hostPath}`, '--', binary], opts);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${binary}: ${err.message}`));
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, stdout, stderr, ms: performance.now() - t0, ...parseOutput(exitCode, stdout) });
    });
    child.stdin!.on('error', () => {}); // the plugin may exit before reading stdin
    if (o.lateStdin) whenReadingStdin(child, 3000, () => child.stdin!.end(input));
    else child.stdin!.end(input);
    o.onSpawn?.(child);
  });
}

const READ_SYSCALL = process.arch === 'arm64' ? 63 : 0;

/** Call fn once a thread of the child is blocked in read(0, …) (/proc/PID/task/TID/syscall), or after maxMs, or never if it exits first. */
function whenReadingStdin(child: ChildProcess, maxMs: number, fn: () => void): void {
  const end = Date.now() + maxMs;
  const reading = (): boolean => {
    try {
      return fs.readdirSync(`/proc/${child.pid}/task`).some((tid) => fs.readFileSync(`/proc/${child.pid}/task/${tid}/syscall`, 'utf8').startsWith(`${READ_SYSCALL} 0x0 `));
    } catch {
      return false;
    }
  };
  const poll = (): void => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (reading() || Date.now() >= end) fn();
    else setTimeout(poll, 5);
  };
  setTimeout(poll, 5);
}

function parseOutput(exitCode: number | null, stdout: string): { result?: any; error?: CniErrorJson } {
  const text = stdout.trim();
  if (!text) return {};
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (exitCode === 0) return { result: parsed };
  return parsed && typeof parsed.code === 'number' ? { error: parsed } : {};
}

/** One line for assertion messages: how the plugin ended and what it said. */
export function describe(r: InvokeResult): string {
  const said = `${r.stdout.trim()} ${r.stderr.trim()}`.replace(/\s+/g, ' ').trim();
  return `exit ${r.exitCode ?? r.signal}${said ? `: ${said.length > 400 ? said.slice(0, 400) + '…' : said}` : ''}`;
}

// ---- directories -------------------------------------------------------------------------------

/** A temp dir under os.tmpdir(), removed when the test ends. */
export function tempDir(t: Teardown, label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pw-cni-${label}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A CNI_PATH dir: `podwire` → the compiled plugin, plus every reference plugin of /usr/lib/cni. */
export function makePluginDir(t: Teardown): string {
  const dir = tempDir(t, 'bin');
  populatePluginDir(dir);
  return dir;
}

export function populatePluginDir(dir: string): void {
  // A runtime execs the plugin directly: it must be executable (npm run build makes it so).
  if (fs.existsSync(PODWIRE_CNI_MAIN) && (fs.statSync(PODWIRE_CNI_MAIN).mode & 0o111) !== 0o111) fs.chmodSync(PODWIRE_CNI_MAIN, 0o755);
  fs.symlinkSync(PODWIRE_CNI_MAIN, path.join(dir, 'podwire'));
  if (!fs.existsSync(REFERENCE_CNI_DIR)) return;
  for (const name of fs.readdirSync(REFERENCE_CNI_DIR)) fs.symlinkSync(path.join(REFERENCE_CNI_DIR, name), path.join(dir, name));
}

// ---- namespaces --------------------------------------------------------------------------------

export interface Pod {
  name: string; // netns name
  path: string; // /run/netns/NAME, the CNI_NETNS
  containerId: string;
}

/** A fresh pod netns (deleted in teardown) with a container ID of 64 hex chars, like a runtime's. */
export function podNetns(t: Teardown, label = 'pod'): Pod {
  const name = freshNetns(t, label);
  return { name, path: netnsPath(name), containerId: randomBytes(32).toString('hex') };
}

export function podNetnsList(t: Teardown, n: number, label = 'p'): Pod[] {
  return Array.from({ length: n }, (_, i) => podNetns(t, `${label}${i}`));
}

// ---- network configs ---------------------------------------------------------------------------

export interface Variant {
  name: string;
  type: 'podwire' | 'bridge';
  ipamType: 'podwire' | 'host-local';
  hostVethRe: RegExp;
  podwire: boolean;
}

export const PODWIRE: Variant = { name: 'podwire', type: 'podwire', ipamType: 'podwire', hostVethRe: /^pw[0-9a-f]{12}$/, podwire: true };
export const PODWIRE_HOSTLOCAL: Variant = { name: 'podwire+host-local', type: 'podwire', ipamType: 'host-local', hostVethRe: /^pw[0-9a-f]{12}$/, podwire: true };
export const REFERENCE: Variant = { name: 'reference bridge+host-local', type: 'bridge', ipamType: 'host-local', hostVethRe: /^veth[0-9a-f]{8}$/, podwire: false };
export const VARIANTS = [PODWIRE, PODWIRE_HOSTLOCAL, REFERENCE];

export interface NetOptions {
  cniVersion?: string;
  name?: string;
  subnet?: string;
  rangeStart?: string;
  rangeEnd?: string;
  dataDir: string;
  mtu?: number;
  ipMasq?: boolean;
  hairpinMode?: boolean;
  isGateway?: boolean;
  isDefaultGateway?: boolean;
  /** ipam.routes; none by default: the reference bridge v1.1.1 fails ADD ("file exists") when
   * isDefaultGateway is combined with an ipam route 0.0.0.0/0 without gw. */
  routes?: { dst: string; gw?: string }[];
}

export const GATEWAY = '10.244.1.1';

/** The reference bridge's config with the variant's type and ipam type. */
export function netConf(v: Variant, o: NetOptions): Record<string, any> {
  const range: Record<string, string> = { subnet: o.subnet ?? '10.244.1.0/24' };
  if (o.rangeStart) range.rangeStart = o.rangeStart;
  if (o.rangeEnd) range.rangeEnd = o.rangeEnd;
  const ipam: Record<string, unknown> = { type: v.ipamType, ranges: [[range]], dataDir: o.dataDir };
  if (o.routes) ipam.routes = o.routes;
  return {
    cniVersion: o.cniVersion ?? '1.0.0',
    name: o.name ?? 'pwnet',
    type: v.type,
    bridge: 'cni0',
    isGateway: o.isGateway ?? true,
    isDefaultGateway: o.isDefaultGateway ?? true,
    ipMasq: o.ipMasq ?? false,
    mtu: o.mtu ?? 1500,
    hairpinMode: o.hairpinMode ?? true,
    ipam,
  };
}

// ---- the conflist runner (libcni) ----------------------------------------------------------------

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  plugins: Record<string, any>[];
  disableCheck?: boolean;
  disableGC?: boolean;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  args?: string;
  capabilityArgs?: Record<string, unknown>;
}

export interface ListStep {
  type: string;
  command: string;
  config: Record<string, any>;
  r: InvokeResult;
}

export interface ListRun {
  ok: boolean;
  result?: any;
  steps: ListStep[];
  /** The failed step, when !ok. */
  failed?: ListStep;
}

/** libcni buildOneConfig + injectRuntimeConfig. */
export function buildOneConfig(list: NetworkConfigList, plugin: Record<string, any>, prevResult: unknown, capabilityArgs?: Record<string, unknown>): Record<string, any> {
  const conf: Record<string, any> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  const rc: Record<string, unknown> = {};
  for (const [cap, supported] of Object.entries(plugin.capabilities ?? {})) {
    if (supported && capabilityArgs && Object.hasOwn(capabilityArgs, cap)) rc[cap] = capabilityArgs[cap];
  }
  if (Object.keys(rc).length) conf.runtimeConfig = rc;
  return conf;
}

const atLeast = (v: string, min: string): boolean => {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
};

/** A runtime: runs conflists and caches ADD results per (network, container, ifname) like libcni. */
export class CniRuntime {
  private readonly cache = new Map<string, any>();
  constructor(
    readonly pluginDir: string,
    readonly hostNetns: string,
    readonly launcher: 'nsenter' | 'setns' = 'nsenter',
  ) {}

  private key(list: NetworkConfigList, a: Attachment): string {
    return `${list.name}/${a.containerId}/${a.ifname}`;
  }

  cachedResult(list: NetworkConfigList, a: Attachment): any {
    return this.cache.get(this.key(list, a));
  }

  private invoke(command: string, type: string, config: Record<string, any>, a?: Attachment): Promise<InvokeResult> {
    return invokePlugin({
      pluginDir: this.pluginDir, hostNetns: this.hostNetns, launcher: this.launcher, type, command, config,
      containerId: a?.containerId ?? '', netns: a?.netns ?? '', ifname: a?.ifname ?? '', args: a?.args ?? '',
    });
  }

  private async sequence(command: string, plugins: Record<string, any>[], configFor: (p: Record<string, any>, prev: any) => Record<string, any>, a?: Attachment): Promise<ListRun> {
    const steps: ListStep[] = [];
    let prev: any;
    for (const plugin of plugins) {
      const config = configFor(plugin, prev);
      const r = await this.invoke(command, plugin.type, config, a);
      const step = { type: plugin.type, command, config, r };
      steps.push(step);
      if (r.exitCode !== 0) return { ok: false, steps, failed: step };
      prev = r.result;
    }
    return { ok: true, steps, result: prev };
  }

  async addList(list: NetworkConfigList, a: Attachment): Promise<ListRun> {
    const run = await this.sequence('ADD', list.plugins, (p, prev) => buildOneConfig(list, p, prev, a.capabilityArgs), a);
    if (run.ok) this.cache.set(this.key(list, a), run.result);
    return run;
  }

  async checkList(list: NetworkConfigList, a: Attachment): Promise<ListRun> {
    if (!atLeast(list.cniVersion, '0.4.0')) throw new Error(`CHECK needs cniVersion >= 0.4.0, the list has ${list.cniVersion}`);
    if (list.disableCheck) return { ok: true, steps: [] };
    const cached = this.cachedResult(list, a);
    if (cached === undefined) throw new Error(`no cached result for ${this.key(list, a)}`);
    return this.sequence('CHECK', list.plugins, (p) => buildOneConfig(list, p, cached, a.capabilityArgs), a);
  }

  async delList(list: NetworkConfigList, a: Attachment): Promise<ListRun> {
    const cached = atLeast(list.cniVersion, '0.4.0') ? this.cachedResult(list, a) : undefined;
    const run = await this.sequence('DEL', [...list.plugins].reverse(), (p) => buildOneConfig(list, p, cached, a.capabilityArgs), a);
    this.cache.delete(this.key(list, a));
    return run;
  }

  /** The GC phase of libcni GCNetworkList (not its DEL of cached stale attachments): 1.1.0+ only. */
  async gcList(list: NetworkConfigList, valid: { containerID: string; ifname: string }[]): Promise<ListRun> {
    if (!atLeast(list.cniVersion, '1.1.0') || list.disableGC) return { ok: true, steps: [] };
    const inject = { name: list.name, cniVersion: list.cniVersion, 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid };
    return this.sequence('GC', list.plugins, (p) => ({ ...p, ...inject }));
  }

  async statusList(list: NetworkConfigList): Promise<ListRun> {
    if (!atLeast(list.cniVersion, '1.1.0')) return { ok: true, steps: [] };
    return this.sequence('STATUS', list.plugins, (p) => ({ ...p, name: list.name, cniVersion: list.cniVersion }));
  }
}

/** Why a list run failed, for assertion messages. */
export function describeRun(run: ListRun): string {
  if (run.ok) return 'ok';
  return `${run.failed!.type} ${run.failed!.command} ${describe(run.failed!.r)}`;
}

// ---- kernel and disk observations (independent oracles: ip -j, the filesystem) ----------------

export function links(ns: string): any[] {
  return ipJson(ns, ['link', 'show']);
}

export const linkNames = (ns: string): string[] => links(ns).map((l) => l.ifname as string).sort();

/** Every veth in the netns (leak check). */
export function veths(ns: string): any[] {
  return links(ns).filter((l) => l.linkinfo?.info_kind === 'veth');
}

export function bridgePorts(ns: string, bridge = 'cni0'): any[] {
  return links(ns).filter((l) => l.master === bridge);
}

/** IPv4 addresses (CIDR) on a device; [] when the device does not exist. */
export function inetAddrs(ns: string, dev: string): string[] {
  if (!links(ns).some((l) => l.ifname === dev)) return [];
  const [link] = ipJson(ns, ['-4', 'addr', 'show', 'dev', dev]);
  return (link?.addr_info ?? []).map((a: any) => `${a.local}/${a.prefixlen}`);
}

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;
const IP_FILE_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:]*)$/i;

export interface ReservationFile {
  ip: string;
  path: string;
  owner: string; // file content, host-local: "CONTAINERID\r\nIFNAME"
}

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

/** Reservation files under an IPAM dataDir: host-local's layout, one file per IP named after it. */
export function reservations(dataDir: string): ReservationFile[] {
  return walk(dataDir)
    .filter((p) => IP_FILE_RE.test(path.basename(p)))
    .map((p) => ({ ip: path.basename(p), path: p, owner: fs.readFileSync(p, 'utf8') }))
    .sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }));
}

/** Temp files of atomic writes left behind (.tmp-*, *.tmp). */
export function strayTmpFiles(dataDir: string): string[] {
  return walk(dataDir).filter((p) => /^\.tmp|\.tmp$|\.tmp-/.test(path.basename(p)));
}

export const isIpv4 = (s: string): boolean => IPV4_RE.test(s);

/** Sync ping from a netns; true when one reply comes back in time. */
export function ping(ns: string, ip: string, timeoutS = 1): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', String(timeoutS), ip], { stdio: 'ignore', timeout: (timeoutS + 2) * 1000 });
  return r.status === 0;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll until fn() is true or the time is up; returns the last value. */
export async function eventually(fn: () => boolean, timeoutMs = 3000, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (fn()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}

/**
 * A one-shot TCP listener in `ns` (socat) that answers every connection with `reply`; killed by
 * PID in teardown. Returns once the port is bound (checked with ss inside the netns).
 */
export async function tcpListener(t: Teardown, ns: string, port: number, reply: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, 'socat', '-T', '5', `TCP-LISTEN:${port},reuseaddr,fork`, `SYSTEM:echo ${reply}`], { stdio: 'ignore' });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const bound = await eventually(() => {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    return r.status === 0 && r.stdout.trim() !== '';
  }, 5000);
  if (!bound) throw new Error(`socat did not bind :${port} in ${ns}`);
  return child;
}

/** Connect from `ns` to ip:port with bounded timeouts; returns what the peer sent ('' on failure). */
export function tcpFetch(ns: string, ip: string, port: number, timeoutS = 3): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'socat', '-T', String(timeoutS), '-', `TCP:${ip}:${port},connect-timeout=${timeoutS}`], {
    encoding: 'utf8', input: '', timeout: (timeoutS + 3) * 1000,
  });
  return r.status === 0 ? r.stdout.trim() : '';
}
