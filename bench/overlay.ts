// The overlay benchmark: iperf3 TCP pod↔pod across two nodes, in the same run, through
//   - the underlay itself (node netns ↔ node netns over eth0, a bare lab),
//   - the hand-built flannel-equivalent VXLAN of ../shared/notes/measured.md (`ip`/`bridge` in the
//     node netns of a bare lab, one pod netns per node on cni0),
//   - hand-built direct routes (same, with `ip route add PODCIDR via NODE dev eth0`, MTU 1500),
//   - flannel as deployed (kube-flannel runs flanneld with --ip-masq): the hand-built VXLAN and
//     direct routes plus flanneld's own iptables rules (masquerade, FORWARD accepts), so the kernel
//     tracks every connection as on a flannel node,
//   - podwire's vxlan backend (and the same with --vxlan-notrack off, the A/B of its notrack
//     chains), host-gw backend and auto backend (on the lab's shared L2: direct routes) —
//     createCluster: control plane, agents, pods made by the CNI plugin,
//   - and on one node: two podwire pods against two veths on a bare bridge (no netfilter rule).
// Each scenario gets a fresh lab per measurement, torn down right after it; the order alternates
// between repeats so a drift of the machine's load hits all alike. Then node-join convergence on a
// vxlan cluster: a third node's agent starts, a pod is added on it, and a pod on node1 polls it.
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { listFlag, machine, table } from './util.js';
import type { Node } from '../src/api/objects.js';
import { execInNetns } from '../src/netns/exec.js';
import { createNetns, listNetns } from '../src/netns/netns.js';
import { Lab, type LabNode } from '../src/lab/lab.js';
import { addPod, agentStatus, BIN, createCluster, destroyCluster, ECHO_PORT, startAgent, type ClusterNode, type LabCluster } from '../src/lab/cluster.js';
import { newLabPrefix } from '../src/lab/names.js';

export const summary = 'iperf3 pod↔pod across nodes: podwire vxlan/host-gw vs hand-built VXLAN/direct routes vs the underlay (Gbit/s, ratios); node-join convergence (ms)';

export const flags: FlagSpecs = {
  seconds: { type: 'int', default: 10, min: 1, max: 120, help: 'iperf3 duration of each measurement, seconds (default 10)' },
  repeat: { type: 'int', default: 3, min: 1, max: 15, help: 'measurements per scenario, order alternating; medians reported (default 3)' },
  parallel: { type: 'int', default: 1, min: 1, max: 16, help: 'iperf3 -P parallel streams (default 1)' },
  scenarios: { type: 'string', default: 'all', help: 'comma-separated scenarios to measure (default all; names as in the report, e.g. "flannel vxlan,podwire vxlan")' },
};

const IPERF_PORT = 5201;
const now = () => performance.now();

export const SCENARIOS = [
  'underlay', 'hand-built vxlan', 'flannel vxlan', 'podwire vxlan', 'podwire vxlan, tracked',
  'hand-built direct', 'flannel host-gw', 'podwire host-gw', 'podwire auto',
  'bare bridge, same node', 'podwire, same node',
] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/**
 * [numerator, denominator, target]: issue 18's targets against flannel as deployed, then the
 * earlier target against the NAT-free hand-built equivalents, then the A/B and the references'
 * own cost, then each against the underlay. A verdict is on the median of the per-run ratios
 * (each run measures both, in alternating order).
 */
export const RATIOS: [ScenarioName, ScenarioName, number?][] = [
  ['podwire vxlan', 'flannel vxlan', 1.0], ['podwire host-gw', 'flannel host-gw', 1.0], ['podwire auto', 'flannel vxlan', 1.25],
  ['podwire vxlan', 'hand-built vxlan', 0.97], ['podwire host-gw', 'hand-built direct', 0.97],
  ['podwire, same node', 'bare bridge, same node', 0.97],
  ['podwire vxlan', 'podwire vxlan, tracked'], ['flannel vxlan', 'hand-built vxlan'], ['flannel host-gw', 'hand-built direct'],
  ['hand-built vxlan', 'underlay'], ['podwire vxlan', 'underlay'], ['hand-built direct', 'underlay'], ['podwire host-gw', 'underlay'],
];

export function check(f: Flags): void {
  if (String(f.scenarios) !== 'all') listFlag(String(f.scenarios), [...SCENARIOS], 'scenarios');
}

/** Every lab prefix this run created: at the end, no netns may carry one. */
const prefixes: string[] = [];
function nextPrefix(): string {
  const p = newLabPrefix();
  prefixes.push(p);
  return p;
}

/** Two endpoints to measure between, and how to remove everything they live in. */
export interface Pair {
  lab: Lab;
  client: string;
  server: string;
  serverIp: string;
  teardown(): string[];
}

// ---- the hand-built references (measured.md), commands run in the lab's own namespaces ---------

const nsExec = (ns: string, cmd: string, args: string[]): string =>
  execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const podNet = (i: number) => `10.244.${i}`;

function bareLab(): Lab {
  return Lab.create({ nodes: 2, prefix: nextPrefix() });
}

/** Node i: (vxlan: podwire.1 + its /32), cni0 with the gateway, ip_forward — in the node netns only. */
function handNode(n: LabNode, i: number, vxlan: boolean): string | undefined {
  let mac: string | undefined;
  if (vxlan) {
    nsExec(n.netns, 'ip', ['link', 'add', 'podwire.1', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'local', n.underlayIp, 'dev', n.underlayIf, 'nolearning']);
    nsExec(n.netns, 'ip', ['link', 'set', 'podwire.1', 'mtu', '1450', 'up']);
    nsExec(n.netns, 'ip', ['addr', 'add', `${podNet(i)}.0/32`, 'dev', 'podwire.1']);
    mac = JSON.parse(nsExec(n.netns, 'ip', ['-j', 'link', 'show', 'dev', 'podwire.1']))[0].address as string;
  }
  nsExec(n.netns, 'ip', ['link', 'add', 'cni0', 'type', 'bridge']);
  nsExec(n.netns, 'ip', ['addr', 'add', `${podNet(i)}.1/24`, 'dev', 'cni0']);
  nsExec(n.netns, 'ip', ['link', 'set', 'cni0', 'up']);
  nsExec(n.netns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  return mac;
}

/** On node n, the way to peer j: neigh + fdb + onlink route over podwire.1, or a route via its underlay address. */
function handPeer(n: LabNode, peer: LabNode, j: number, vtepMac: string | undefined): void {
  if (vtepMac === undefined) {
    nsExec(n.netns, 'ip', ['route', 'add', `${podNet(j)}.0/24`, 'via', peer.underlayIp, 'dev', n.underlayIf]);
    return;
  }
  nsExec(n.netns, 'ip', ['neigh', 'replace', `${podNet(j)}.0`, 'lladdr', vtepMac, 'dev', 'podwire.1', 'nud', 'permanent']);
  nsExec(n.netns, 'bridge', ['fdb', 'append', vtepMac, 'dev', 'podwire.1', 'dst', peer.underlayIp]);
  nsExec(n.netns, 'ip', ['route', 'replace', `${podNet(j)}.0/24`, 'via', `${podNet(j)}.0`, 'dev', 'podwire.1', 'onlink']);
}

/** Pod k (default 1) of node i: a netns (lab prefix, so the lab's teardown removes it) on cni0 by a veth, IP .(k+1), default via .1. */
function handPod(lab: Lab, n: LabNode, i: number, mtu: number, k = 1): string {
  const pod = `${lab.prefix}${n.name}-p${k}`;
  createNetns(pod);
  const host = `veth${n.name}p${k}`;
  nsExec(n.netns, 'ip', ['link', 'add', host, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', pod]);
  nsExec(n.netns, 'ip', ['link', 'set', host, 'master', 'cni0', 'up']);
  nsExec(pod, 'ip', ['link', 'set', 'lo', 'up']);
  nsExec(pod, 'ip', ['addr', 'add', `${podNet(i)}.${k + 1}/24`, 'dev', 'eth0']);
  nsExec(pod, 'ip', ['link', 'set', 'eth0', 'up']);
  nsExec(pod, 'ip', ['route', 'add', 'default', 'via', `${podNet(i)}.1`]);
  return pod;
}

/**
 * flanneld's own node rules (iptables mode, its default; flannel pkg/trafficmngr/iptables): the
 * masquerade chain and the FORWARD accepts, in node i's netns. With them the kernel tracks every
 * connection, as it does on a flannel node run with --ip-masq (the usual setup).
 */
function flannelRules(n: LabNode, i: number): void {
  const [cluster, pods] = ['10.244.0.0/16', `${podNet(i)}.0/24`];
  const rules: string[][] = [
    ['-t', 'nat', '-N', 'FLANNEL-POSTRTG'],
    ['-t', 'nat', '-A', 'POSTROUTING', '-m', 'comment', '--comment', 'flanneld masq', '-j', 'FLANNEL-POSTRTG'],
    ['-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-m', 'mark', '--mark', '0x4000/0x4000', '-m', 'comment', '--comment', 'flanneld masq', '-j', 'RETURN'],
    ['-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-s', pods, '-d', cluster, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'RETURN'],
    ['-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-s', cluster, '-d', pods, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'RETURN'],
    ['-t', 'nat', '-A', 'FLANNEL-POSTRTG', '!', '-s', cluster, '-d', pods, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'RETURN'],
    ['-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-s', cluster, '!', '-d', '224.0.0.0/4', '-m', 'comment', '--comment', 'flanneld masq', '-j', 'MASQUERADE', '--random-fully'],
    ['-t', 'nat', '-A', 'FLANNEL-POSTRTG', '!', '-s', cluster, '-d', cluster, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'MASQUERADE', '--random-fully'],
    ['-t', 'filter', '-N', 'FLANNEL-FWD'],
    ['-t', 'filter', '-A', 'FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD'],
    ['-t', 'filter', '-A', 'FLANNEL-FWD', '-s', cluster, '-m', 'comment', '--comment', 'flanneld forward', '-j', 'ACCEPT'],
    ['-t', 'filter', '-A', 'FLANNEL-FWD', '-d', cluster, '-m', 'comment', '--comment', 'flanneld forward', '-j', 'ACCEPT'],
  ];
  for (const r of rules) nsExec(n.netns, 'iptables', ['-w', '5', ...r]);
}

function handBuilt(vxlan: boolean, flannel = false): Pair {
  const lab = bareLab();
  try {
    const nodes = lab.nodes;
    const macs = nodes.map((n, k) => handNode(n, k + 1, vxlan));
    if (flannel) nodes.forEach((n, k) => flannelRules(n, k + 1));
    nodes.forEach((n, k) => nodes.forEach((peer, m) => m !== k && handPeer(n, peer, m + 1, macs[m])));
    const pods = nodes.map((n, k) => handPod(lab, n, k + 1, vxlan ? 1450 : 1500));
    return { lab, client: pods[0]!, server: pods[1]!, serverIp: `${podNet(2)}.2`, teardown: () => lab.destroy() };
  } catch (err) {
    lab.destroy();
    throw err;
  }
}

/** Two pods on one node's bare cni0 (veths, no netfilter rule at all): the same-node baseline. */
function bareBridge(): Pair {
  const lab = Lab.create({ nodes: 1, prefix: nextPrefix() });
  try {
    const n = lab.nodes[0]!;
    handNode(n, 1, false);
    const pods = [1, 2].map((k) => handPod(lab, n, 1, 1500, k));
    return { lab, client: pods[0]!, server: pods[1]!, serverIp: `${podNet(1)}.3`, teardown: () => lab.destroy() };
  } catch (err) {
    lab.destroy();
    throw err;
  }
}

/** Two podwire pods on the same node (a one-node cluster; host-gw: pod MTU 1500, as the bare bridge's veths). */
async function podwireSameNode(): Promise<Pair> {
  const c = await createCluster({ nodes: 1, backend: 'host-gw', podsPerNode: 2, prefix: nextPrefix() });
  const [a, b] = c.pods;
  if (!a || !b || a.node !== b.node) {
    destroyCluster(c);
    throw new Error('podwire, same node: expected two pods on one node');
  }
  try {
    await settle(c);
  } catch (err) {
    destroyCluster(c);
    throw err;
  }
  return { lab: c.lab, client: a.netns, server: b.netns, serverIp: b.ip, teardown: () => destroyCluster(c) };
}

function underlay(): Pair {
  const lab = bareLab();
  const [a, b] = lab.nodes as [LabNode, LabNode];
  return { lab, client: a.netns, server: b.netns, serverIp: b.underlayIp, teardown: () => lab.destroy() };
}

/** CPU time of a process and its waited-for children (nft, ip …), in clock ticks; 0 once it is gone. */
function cpuTicks(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

/** How long each podwire lab took to settle before its measurement (ms). */
export const settleMs: number[] = [];
const SETTLE_WINDOW_MS = 1000;
const SETTLE_QUIET_WINDOWS = 3;
const SETTLE_MAX_MS = 20_000;

/**
 * Waits until the lab's own processes (control plane, agents) used at most 10 ms of CPU each in
 * each of 3 windows of 1 s in a row (one clock tick; an idle agent uses about that), at most 20 s:
 * for some seconds after its start a cluster still publishes its nodes' endpoints and syncs the
 * rules for them, and each agent has a burst or two of 50-70 ms of CPU a second (measured from
 * /proc, cause not pinned down): work of a new node, not of its data path. The hand-built
 * references run no process at all; flanneld's own periodic iptables checks are not in them
 * either, while podwire's periodic resyncs (every 30 s) stay in its measurements.
 */
async function settle(c: LabCluster): Promise<void> {
  const pids = [c.controlPlane.child.pid, ...c.nodes.map((n) => n.agent.pid)];
  const total = (): number => pids.reduce<number>((sum, pid) => sum + cpuTicks(pid), 0);
  const t0 = now();
  let before = total();
  for (let quiet = 0; quiet < SETTLE_QUIET_WINDOWS && now() - t0 < SETTLE_MAX_MS; ) {
    await new Promise((r) => setTimeout(r, SETTLE_WINDOW_MS));
    const after = total();
    quiet = after - before <= pids.length ? quiet + 1 : 0;
    before = after;
  }
  settleMs.push(now() - t0);
}

export async function podwire(backend: 'vxlan' | 'host-gw' | 'auto', agentArgs: string[] = []): Promise<Pair> {
  const c = await createCluster({ nodes: 2, backend, podsPerNode: 1, prefix: nextPrefix(), agentArgs });
  const [a, b] = c.pods;
  if (!a || !b || a.node === b.node) {
    destroyCluster(c);
    throw new Error(`podwire ${backend}: expected one pod on each of 2 nodes`);
  }
  try {
    await settle(c);
  } catch (err) {
    destroyCluster(c);
    throw err;
  }
  return { lab: c.lab, client: a.netns, server: b.netns, serverIp: b.ip, teardown: () => destroyCluster(c) };
}

const SETUP: Record<ScenarioName, () => Pair | Promise<Pair>> = {
  underlay,
  'hand-built vxlan': () => handBuilt(true),
  'flannel vxlan': () => handBuilt(true, true),
  'podwire vxlan': () => podwire('vxlan'),
  'podwire vxlan, tracked': () => podwire('vxlan', ['--vxlan-notrack', 'off']),
  'hand-built direct': () => handBuilt(false),
  'flannel host-gw': () => handBuilt(false, true),
  'podwire host-gw': () => podwire('host-gw'),
  'podwire auto': () => podwire('auto'),
  'bare bridge, same node': bareBridge,
  'podwire, same node': podwireSameNode,
};

// ---- iperf3 --------------------------------------------------------------------------------------

/** Resolves with stdout when the child exits; kills it (by PID, it is ours) after timeoutMs. */
function collect(child: ChildProcess, timeoutMs: number, until?: RegExp): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${child.spawnfile} ${until ? `did not print ${until}` : 'did not finish'} within ${timeoutMs} ms: ${err.trim()}`));
    }, timeoutMs);
    const finish = (code: number | null) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (until?.test(out)) finish(null);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', finish);
  });
}

/** One iperf3 TCP measurement from p.client to p.server; Gbit/s received. */
export async function iperf(p: Pair, seconds: number, parallel: number): Promise<number> {
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  const server = p.lab.spawn(p.server, 'iperf3', ['-s', '-1', '-p', String(IPERF_PORT), '--forceflush'], { stdio });
  const serverDone = collect(server, (seconds + 60) * 1000);
  serverDone.catch(() => undefined);
  const ready = await collect(server, 10_000, /Server listening/);
  if (ready.code !== null) throw new Error(`iperf3 server in ${p.server} exited ${ready.code}: ${ready.err.trim() || ready.out.trim()}`);
  const client = p.lab.spawn(p.client, 'iperf3', ['-c', p.serverIp, '-p', String(IPERF_PORT), '-t', String(seconds), '-P', String(parallel), '-J'], { stdio });
  const { code, out, err } = await collect(client, (seconds + 30) * 1000);
  let report: any;
  try {
    report = JSON.parse(out);
  } catch {
    throw new Error(`iperf3 client exited ${code} without a JSON report: ${err.trim() || out.slice(0, 300)}`);
  }
  if (code !== 0 || report.error) throw new Error(`iperf3 client exited ${code}: ${report.error ?? err.trim()}`);
  await serverDone;
  const bps = Number(report.end?.sum_received?.bits_per_second);
  if (!(bps > 0)) throw new Error('iperf3 report has no end.sum_received.bits_per_second');
  return bps / 1e9;
}

/** Fresh scenario → one measurement → torn down (also on failure); a leak is an error. */
async function measure(name: ScenarioName, seconds: number, parallel: number): Promise<number> {
  const pair = await SETUP[name]();
  try {
    return await iperf(pair, seconds, parallel);
  } finally {
    const leaks = pair.teardown();
    if (leaks.length) process.stderr.write(`bench overlay: ${name}: left behind: ${leaks.join(', ')}\n`);
  }
}

// ---- convergence ----------------------------------------------------------------------------------

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 10): Promise<T> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolves with the time the agent has synced without errors knowing `peers` peers. */
const syncedAt = (n: ClusterNode, peers: number, timeoutMs: number) =>
  poll(`agent on ${n.name} synced with ${peers} peers`, async () => {
    const s = await agentStatus(n);
    return s.lastSync && s.lastSync.errors.length === 0 && s.peers.length === peers ? now() : undefined;
  }, timeoutMs);

interface Join {
  registerMs: number; // agent start → Node has a podCIDR
  othersMs: number; // registration → both other agents synced with it (a)
  selfMs: number; // agent start → the new agent synced with both peers
  podMs: number; // agent start → CNI ADD done and echo server listening on the new node
  reachMs: number; // agent start → a pod on node1 got a TCP answer from the new pod (b)
  probes: number;
}

async function joinOnce(c: LabCluster): Promise<Join> {
  const [n1, n2] = c.nodes as [ClusterNode, ClusterNode];
  const from = c.pods.find((p) => p.node === n1.name)!;
  const t0 = now();
  const n3 = await startAgent(c.lab, c.admin, c.lab.nodes[2]!, c.dir, 'vxlan');
  c.nodes.push(n3);
  const registered = await poll('node3 registered', async () => ((await c.admin.get<Node>({ plural: 'nodes', name: n3.name })).spec.podCIDR ? now() : undefined), 20_000);
  const others = Math.max(...(await Promise.all([n1, n2].map((n) => syncedAt(n, 2, 10_000)))));
  const self = await syncedAt(n3, 2, 20_000);
  const pod = await addPod(c.lab, n3, 1);
  c.pods.push(pod);
  const podReady = now();
  let probes = 0;
  const reached = await poll(`${from.name} answered by ${pod.name}`, async () => {
    probes++;
    const r = await execInNetns(from.netns, process.execPath, [BIN.echo, 'probe', '200', `${pod.ip}:${ECHO_PORT}`], { timeoutMs: 5000 });
    const answer = r.code === 0 ? JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}') : {};
    return answer.ok && answer.name === pod.name ? now() : undefined;
  }, 20_000, 0);
  return { registerMs: registered - t0, othersMs: others - registered, selfMs: self - t0, podMs: podReady - t0, reachMs: reached - t0, probes };
}

async function convergence(): Promise<Join> {
  const c = await createCluster({ nodes: 3, startNodes: 2, backend: 'vxlan', podsPerNode: 1, prefix: nextPrefix() });
  try {
    return await joinOnce(c);
  } finally {
    const leaks = destroyCluster(c);
    if (leaks.length) process.stderr.write(`bench overlay: convergence: left behind: ${leaks.join(', ')}\n`);
  }
}

// ---- report ---------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const loadavg = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
const gbit = (x: number) => x.toFixed(2);
const ratio = (x: number) => `${x.toFixed(3)}×`;

function throughputReport(results: Map<ScenarioName, number[]>, repeat: number): string[] {
  const runs = Array.from({ length: repeat }, (_, i) => `run ${i + 1}`);
  const measured = SCENARIOS.filter((s) => results.has(s));
  const rows = [['scenario (Gbit/s)', ...runs, 'median']];
  for (const s of measured) rows.push([s, ...results.get(s)!.map(gbit), gbit(median(results.get(s)!))]);
  const pairs = RATIOS.filter(([a, b]) => results.has(a) && results.has(b));
  const ratioRows = [['ratio', ...runs, 'of medians', 'median of runs']];
  const paired = (a: ScenarioName, b: ScenarioName) => results.get(a)!.map((x, i) => x / results.get(b)![i]!);
  for (const [a, b] of pairs) {
    const xs = paired(a, b);
    ratioRows.push([`${a} / ${b}`, ...xs.map(ratio), ratio(median(results.get(a)!) / median(results.get(b)!)), ratio(median(xs))]);
  }
  const out = [table(rows), '', table(ratioRows), ''];
  for (const [a, b, target] of pairs) {
    if (target === undefined) continue;
    const r = median(paired(a, b));
    const verdict = r >= target ? 'met' : 'NOT met';
    out.push(`target ${a} ≥ ${target.toFixed(2)}× ${b}: ${verdict} (${ratio(r)}, the median of ${repeat} paired run(s); medians ${gbit(median(results.get(a)!))} vs ${gbit(median(results.get(b)!))} Gbit/s)`);
  }
  return out;
}

function convergenceReport(joins: Join[]): string[] {
  const row = (label: string, xs: number[]) => [label, ...xs.map((x) => x.toFixed(0)), median(xs).toFixed(0), Math.max(...xs).toFixed(0)];
  const rows = [['node join (ms)', ...joins.map((_, i) => `run ${i + 1}`), 'median', 'max']];
  rows.push(row('agent start → node registered', joins.map((j) => j.registerMs)));
  rows.push(row('(a) registered → other agents synced', joins.map((j) => j.othersMs)));
  rows.push(row('agent start → new agent synced', joins.map((j) => j.selfMs)));
  rows.push(row('agent start → its pod added (CNI)', joins.map((j) => j.podMs)));
  rows.push(row('(b) agent start → pod reachable', joins.map((j) => j.reachMs)));
  rows.push(row('(b) − pod added', joins.map((j) => j.reachMs - j.podMs)));
  return [table(rows), `probes until the first answer: ${joins.map((j) => j.probes).join(', ')} (each a node process in node1's pod, 200 ms connect timeout; (b) is when the answering probe exited)`];
}

// ---- run -----------------------------------------------------------------------------------------

function leftNamespaces(): string[] {
  return listNetns().filter((n) => prefixes.some((p) => n.startsWith(p)));
}

async function throughput(scenarios: ScenarioName[], seconds: number, repeat: number, parallel: number): Promise<Map<ScenarioName, number[]>> {
  const results = new Map<ScenarioName, number[]>(scenarios.map((s) => [s, []]));
  for (let r = 0; r < repeat; r++) {
    const order = r % 2 === 0 ? [...scenarios] : [...scenarios].reverse();
    for (const s of order) {
      const g = await measure(s, seconds, parallel);
      results.get(s)!.push(g);
      process.stderr.write(`  run ${r + 1}/${repeat}  ${s.padEnd(22)} ${gbit(g)} Gbit/s  (load average ${os.loadavg()[0]!.toFixed(1)})\n`);
    }
  }
  return results;
}

export async function run(f: Flags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces (nothing outside them is touched)');
  try {
    execFileSync('iperf3', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('iperf3 missing: apt-get install iperf3');
  }
  const [seconds, repeat, parallel] = [Number(f.seconds), Number(f.repeat), Number(f.parallel)];
  const scenarios = String(f.scenarios) === 'all' ? [...SCENARIOS] : (listFlag(String(f.scenarios), [...SCENARIOS], 'scenarios') as ScenarioName[]);
  const started = new Date().toISOString();
  const loadStart = loadavg();
  const results = await throughput(scenarios, seconds, repeat, parallel);
  const joins: Join[] = [];
  for (let r = 0; r < repeat; r++) {
    joins.push(await convergence());
    process.stderr.write(`  join ${r + 1}/${repeat}  reachable after ${joins[r]!.reachMs.toFixed(0)} ms\n`);
  }
  const left = leftNamespaces();
  const out = [
    `podwire bench overlay — iperf3 TCP pod↔pod across 2 nodes, ${seconds} s per measurement, -P ${parallel}, ${repeat} run(s) per scenario (order alternating), medians`,
    `machine: ${machine()}; ${started.slice(0, 10)}; load average (1/5/15 min) at the start ${loadStart}, at the end ${loadavg()}`,
    'every measurement in a fresh lab (netns nodes on a bridge in its own netns), torn down right after; hand-built = the recipe in measured.md',
    `podwire's labs are measured once their control plane and agents are idle (at most 10 ms of CPU each in 3 s in a row; waited ${settleMs.length ? `median ${(median(settleMs) / 1000).toFixed(1)} s, max ${(Math.max(...settleMs) / 1000).toFixed(1)} s` : 'never'}): the start-up work of a new cluster is not data path; their periodic resyncs stay in`,
    '',
    ...throughputReport(results, repeat),
    '',
    ...convergenceReport(joins),
    '',
    left.length ? `cleanup: LEFT BEHIND ${left.join(' ')}` : `cleanup: ${prefixes.length} labs created and removed (${prefixes.join(' ')}), no namespace of theirs left`,
  ];
  process.stdout.write(out.join('\n') + '\n');
  if (left.length) throw new Error(`namespaces left behind: ${left.join(' ')}`);
}
