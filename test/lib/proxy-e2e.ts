// Mode-neutral helpers of the service proxy end-to-end tests (test/lib/proxy-e2e-suite.ts, run in
// nftables and iptables mode): TCP probes through echo.js run as tracked lab processes, commands
// in a lab netns, small wrappers around the control plane API, a UDP flow through socat and the
// traffic parts of some checks. The kernel's view of each mode's rules: proxy-e2e-nft.ts and
// proxy-e2e-iptables.ts.
import { execFileSync, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';
import { BIN, LAB_TIMEOUT_SCALE, waitFor, type ClusterPod, type LabCluster } from '../../src/lab/cluster.js';
import type { Service } from '../../src/api/objects.js';
import type { ManySummary, ProbeAnswer } from '../../src/lab/echo.js';
import { run } from './netns.js';

export type { ManySummary, ProbeAnswer } from '../../src/lab/echo.js';

/**
 * Runs `echo.js ARGS…` in a lab namespace as a tracked lab process and returns its stdout; the
 * process is killed (by its own handle) if it outlives hardLimitMs.
 */
export function runEcho(c: LabCluster, netns: string, args: string[], hardLimitMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = c.lab.spawn(netns, process.execPath, [BIN.echo, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), hardLimitMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`echo.js ${args.join(' ')} in ${netns} exited ${code ?? signal}: ${err.trim()}`));
      else resolve(out);
    });
  });
}

/** One connection to each target, all at once. */
export async function probe(c: LabCluster, netns: string, targets: string[], timeoutMs = 3000): Promise<ProbeAnswer[]> {
  const out = await runEcho(c, netns, ['probe', String(timeoutMs), ...targets]);
  return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeAnswer);
}

/** COUNT connections to one target, `concurrency` at a time, in one echo.js process. */
/** `count` connections, `concurrency` at a time; each may take `timeoutMs` (default 3 s, times LAB_TIMEOUT_SCALE: 20 at a time under TCG took longer). */
export async function probeMany(c: LabCluster, netns: string, target: string, count: number, opts: { timeoutMs?: number; concurrency?: number } = {}): Promise<ManySummary> {
  const out = await runEcho(c, netns, ['probe-many', String(count), String(opts.timeoutMs ?? 3000 * LAB_TIMEOUT_SCALE), target, String(opts.concurrency ?? 20)]);
  return JSON.parse(out.trim()) as ManySummary;
}

/** Adds up several summaries of the same target. */
export function mergeSummaries(list: ManySummary[]): ManySummary {
  const add = (a: Record<string, number>, b: Record<string, number>) => {
    for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
    return a;
  };
  return list.reduce<ManySummary>((acc, s) => ({
    target: s.target, count: acc.count + s.count, ok: acc.ok + s.ok, failed: acc.failed + s.failed,
    names: add(acc.names, s.names), seenAs: add(acc.seenAs, s.seenAs), errors: add(acc.errors, s.errors), maxMs: Math.max(acc.maxMs, s.maxMs),
  }), { target: '', count: 0, ok: 0, failed: 0, names: {}, seenAs: {}, errors: {}, maxMs: 0 });
}

/** Same strings in the same order; false for undefined (no rule yet). */
export const sameList = (a: readonly string[] | undefined, b: readonly string[]): boolean => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** A summary in one line, for assertion messages. */
export const fmt = (s: ManySummary): string => `ok ${s.ok}/${s.count}, names ${JSON.stringify(s.names)}, seen as ${JSON.stringify(s.seenAs)}${s.failed ? `, errors ${JSON.stringify(s.errors)}` : ''}, max ${s.maxMs} ms`;

/** A command inside a lab namespace (nft, conntrack, iptables-save, ip), synchronously and bounded. */
export function inNetns(netns: string, cmd: string, args: string[], input?: string): string {
  return run(netns, cmd, args, input, 15_000);
}

/** The IPv4 addresses a namespace owns (any interface but lo). */
export function ipv4Addresses(netns: string): string[] {
  const links = JSON.parse(execFileSync('ip', ['-n', netns, '-j', '-4', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 }) || '[]') as { ifname: string; addr_info: { local: string }[] }[];
  return links.filter((l) => l.ifname !== 'lo').flatMap((l) => l.addr_info.map((a) => a.local));
}

// ---- Control plane ---------------------------------------------------------------------------

export function createService(c: LabCluster, name: string, spec: Service['spec']): Promise<Service> {
  return c.admin.create<Service>({ plural: 'services', namespace: 'default' }, { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec });
}

export function patchService(c: LabCluster, name: string, patch: unknown): Promise<Service> {
  return c.admin.patch<Service>({ plural: 'services', namespace: 'default', name }, patch);
}

export function labelPod(c: LabCluster, name: string, labels: Record<string, string | null>): Promise<unknown> {
  return c.admin.patch({ plural: 'pods', namespace: 'default', name }, { metadata: { labels } });
}

// ---- A UDP flow through socat ----------------------------------------------------------------

export interface UdpFlow {
  /** Reply lines received so far, with their arrival time (Date.now()). */
  replies: { at: number; name: string }[];
  /** Set when the client exited (e.g. ECONNREFUSED from an ICMP port unreachable). */
  exited?: string;
  stop(): void;
}

/**
 * A UDP "connection" from a fixed source port: socat connected to target, fed one datagram every
 * intervalMs; every reply line (the serving echo's name) is recorded.
 */
export function startUdpFlow(c: LabCluster, netns: string, target: string, sourcePort: number, intervalMs = 200): UdpFlow {
  const child: ChildProcess = c.lab.spawn(netns, 'socat', ['-', `UDP4:${target},sourceport=${sourcePort}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  const flow: UdpFlow = { replies: [], stop: () => undefined };
  let buf = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) flow.replies.push({ at: Date.now(), name: line });
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin!.on('error', () => undefined);
  const timer = setInterval(() => child.stdin!.write('ping\n'), intervalMs);
  child.on('exit', (code, signal) => {
    clearInterval(timer);
    flow.exited = `socat exited ${code ?? signal}: ${err.trim()}`;
  });
  flow.stop = () => {
    clearInterval(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  return flow;
}

// ---- Checks shared by the nftables and iptables end-to-end tests ------------------------------

/** Hairpin mode on every cni0 port of a node (a pod reaching itself through its service needs it). */
export function checkHairpinPorts(t: Test, netns: string, node: string): void {
  const ports = JSON.parse(inNetns(netns, 'bridge', ['-d', '-j', 'link', 'show'])) as { ifname: string; master?: string; hairpin?: boolean }[];
  const onCni0 = ports.filter((p) => p.master === 'cni0');
  t.ok(onCni0.length >= 2 && onCni0.every((p) => p.hairpin === true), `hairpin on every cni0 port of ${node} (${onCni0.map((p) => `${p.ifname}:${p.hairpin}`).join(' ')})`);
}

/**
 * Check 7a's traffic part: a UDP flow from clientNetns to ip:port is pinned to one endpoint; that
 * pod loses its `udp` label (so its endpoint goes); the flow must move to another endpoint within
 * 5 s, never come back, and nodeNetns' conntrack must hold no entry to the removed pod. Returns
 * the removed pod (for mode-specific checks while the flow still runs, in `during`).
 */
export async function checkUdpFlowMoves(t: Test, c: LabCluster, o: { clientNetns: string; ip: string; port: number; nodeNetns: string; during?: (removed: ClusterPod) => void }): Promise<void> {
  const flow = startUdpFlow(c, o.clientNetns, `${o.ip}:${o.port}`, 40000, 200);
  try {
    await waitFor('5 UDP replies', () => {
      if (flow.exited) throw new Error(flow.exited);
      return flow.replies.length >= 5;
    }, 10_000);
    const serving = flow.replies[0]!.name;
    t.ok(flow.replies.every((r) => r.name === serving), `the flow is pinned to ${serving} (${flow.replies.length} replies)`);
    const servingPod = c.pods.find((p) => p.name === serving);
    if (!servingPod) return void t.fail(`answered by ${serving}, not an echo pod`);
    const removedAt = Date.now();
    await labelPod(c, serving, { udp: null });
    const moved = await waitFor(`the flow leaves ${serving}`, () => {
      if (flow.exited) throw new Error(flow.exited);
      return flow.replies.find((r) => r.at > removedAt && r.name !== serving);
    }, 10_000);
    t.ok(moved.at - removedAt < 5000, `moved to ${moved.name} ${moved.at - removedAt} ms after the endpoint was removed (< 5000 ms)`);
    await waitFor('5 more replies', () => flow.replies.filter((r) => r.at > moved.at).length >= 5, 10_000);
    t.same(flow.replies.filter((r) => r.at >= moved.at && r.name === serving).length, 0, `no reply from ${serving} once the flow moved`);
    const entries = inNetns(o.nodeNetns, 'conntrack', ['-L', '-p', 'udp', '--orig-dst', o.ip]).trim().split('\n').filter(Boolean);
    const replySrc = entries.map((l) => [...l.matchAll(/src=(\S+)/g)][1]?.[1]);
    t.ok(replySrc.length > 0 && !replySrc.includes(servingPod.ip), `node conntrack: no entry to the removed ${servingPod.ip} (${entries.length} entries, reply sources ${replySrc.join(' ')})`);
    o.during?.(servingPod);
  } finally {
    flow.stop();
  }
}

/**
 * A dropped SYN is sent again after 1 s (TCP_TIMEOUT_INIT): an answer within 1 s answers the first
 * SYN. 500 ms on a host; in the kernel VM (TCG, several times slower) up to 950 ms.
 */
const REFUSED_WITHIN_MS = Math.min(500 * LAB_TIMEOUT_SCALE, 950);

/** Five connections, one at a time: each refused (ECONNREFUSED) at the first SYN (REFUSED_WITHIN_MS), never a timeout. */
export async function checkRefused(t: Test, c: LabCluster, what: string, netns: string, target: string): Promise<void> {
  const s = await probeMany(c, netns, target, 5, { concurrency: 1, timeoutMs: 3000 });
  t.same(s.errors, { ECONNREFUSED: 5 }, `${what}: refused (${fmt(s)})`);
  t.ok(s.maxMs < REFUSED_WITHIN_MS, `${what}: refused within ${s.maxMs} ms (< ${REFUSED_WITHIN_MS} ms)`);
}

/**
 * Check 2's traffic part: NodePort from another node, from a node to itself and from the outside
 * host to each node; LB IP and external IP from outside, routed (on the outside host only, as a
 * router or BGP would) to nodes[0] and nodes[1]. Every answer must come from an echo pod.
 */
export async function checkExternalPaths(t: Test, c: LabCluster, o: { nodePort: number; lbIp: string; extIp: string; isEcho: (name: string) => boolean }): Promise<void> {
  const [n1, n2, n3] = c.nodes as [LabCluster['nodes'][number], LabCluster['nodes'][number], LabCluster['nodes'][number]];
  inNetns(c.outside.netns, 'ip', ['route', 'add', `${o.lbIp}/32`, 'via', n1.underlayIp]);
  inNetns(c.outside.netns, 'ip', ['route', 'add', `${o.extIp}/32`, 'via', n2.underlayIp]);
  try {
    const runs: [string, string, string][] = [
      [`${n2.name} → ${n1.name} NodePort`, n2.netns, `${n1.underlayIp}:${o.nodePort}`],
      [`${n2.name} → its own NodePort`, n2.netns, `${n2.underlayIp}:${o.nodePort}`],
      ...[n1, n2, n3].map((n): [string, string, string] => [`outside → ${n.name} NodePort`, c.outside.netns, `${n.underlayIp}:${o.nodePort}`]),
      [`outside → LoadBalancer ${o.lbIp} (via ${n1.name})`, c.outside.netns, `${o.lbIp}:80`],
      [`outside → external IP ${o.extIp} (via ${n2.name})`, c.outside.netns, `${o.extIp}:80`],
    ];
    for (const [what, netns, target] of runs) {
      const s = await probeMany(c, netns, target, 20, { concurrency: 5 });
      t.ok(s.ok === 20 && Object.keys(s.names).every(o.isEcho), `${what}: ${fmt(s)}`);
    }
  } finally {
    inNetns(c.outside.netns, 'ip', ['route', 'del', `${o.lbIp}/32`]);
    inNetns(c.outside.netns, 'ip', ['route', 'del', `${o.extIp}/32`]);
  }
}
