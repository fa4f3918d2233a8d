// The main job's cluster: a netns Lab, plus the control plane (in the underlay netns, on the
// underlay at 192.0.2.2), one agent per node (in its node netns), pods created by the CNI plugin
// exactly as a runtime does (a pod netns, CNI_* env, the config on stdin), a TCP echo server in
// every pod, and an "outside" host on the underlay that is not part of the cluster.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_NODE_FLAGS } from '../agent/runtime.js';
import type { ProxyMode } from '../agent/service-proxy.js';
import { ApiClient } from '../client/api-client.js';
import type { Backend, ClusterConfig, Endpoints, Service } from '../api/objects.js';
import { Handle } from '../netlink/handle.js';
import { createNetns, netnsPath } from '../netns/netns.js';
import { Lab, LAB_STATE_DIR, type LabNode, type LabState } from './lab.js';
import type { TrackedProc } from './procs.js';
import { startForwarder } from './forwarder-start.js';
import { resolvConfText, writePodResolvConf, type ResolvConfDns } from './resolv-conf.js';

const DIST = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const BIN = {
  controlplane: path.join(DIST, 'src', 'controlplane', 'main.js'),
  agent: path.join(DIST, 'src', 'agent', 'main.js'),
  cni: path.join(DIST, 'bin', 'podwire-cni.mjs'),
  /** The native CNI client (the fast path through the node's agent); falls back to `cni` beside it. */
  cniClient: path.join(DIST, 'bin', 'podwire-cni-client'),
  echo: path.join(DIST, 'src', 'lab', 'echo.js'),
};
export const CONTROL_PLANE_IP = '192.0.2.2';
export const OUTSIDE_IP = '192.0.2.250';
export const ECHO_PORT = 8080;
const CP_PORT = 6443;
/** Every lab agent's --debug-listen port (the recommended one), on its underlay address. */
export const AGENT_DEBUG_PORT = 10262;

export interface ClusterOptions {
  nodes: number;
  /** Nodes (the first N) that get an agent and pods at creation; default all (tests add the rest later). */
  startNodes?: number;
  backend: Backend;
  podsPerNode: number;
  /** The agents' --proxy-mode (default nftables). */
  proxyMode?: ProxyMode;
  /** More agent flags, after the lab's own (e.g. the bench's `--vxlan-notrack off`). */
  agentArgs?: string[];
  prefix?: string;
  log?: (line: string) => void;
}

export interface ClusterPod {
  name: string;
  node: string;
  netns: string;
  ip: string;
  containerId: string;
}

export interface ClusterNode extends LabNode {
  dir: string;
  socket: string;
  agent: ChildProcess;
  agentArgs: string[];
  /** The cluster config's clusterDNS/clusterDomain: the lab's CNI config carries them, as the agent's conflist does. */
  clusterDns?: { clusterDNS: string; clusterDomain: string };
}

export interface LabCluster {
  lab: Lab;
  dir: string;
  backend: Backend;
  controlPlane: { child: ChildProcess; args: string[] };
  /** Admin client over the control plane's unix socket (this process is not on the underlay). */
  admin: ApiClient;
  nodes: ClusterNode[];
  pods: ClusterPod[];
  outside: LabNode;
}

/**
 * Where a lab cluster keeps its files, from its prefix alone: the control plane's unix socket and
 * admin token, each node's run dir and agent socket. The debugging CLI (`--lab PREFIX`) finds a
 * kept lab's sockets here; the unix sockets are files, reachable from the root netns.
 */
export interface ClusterFiles {
  dir: string;
  controlPlaneSocket: string;
  adminTokenFile: string;
  /** `lab up --keep` (src/lab/access.ts): the kubeconfig and podwire config for the machine's shell. */
  kubeconfig: string;
  podwireConfig: string;
  /** The root-netns forwarder's TLS certificate (the kubeconfig's CA) and key, and its log. */
  accessCert: string;
  accessKey: string;
  accessLog: string;
  /** The underlay forwarder's log (its unix sockets are agentHttpsSocket). */
  agentForwarderLog: string;
  nodeDir: (node: string) => string;
  agentSocket: (node: string) => string;
  /** A unix socket (the underlay forwarder's) that reaches the node agent's HTTPS debug endpoint, NODEIP:10262. */
  agentHttpsSocket: (node: string) => string;
}

export function clusterFiles(prefix: string): ClusterFiles {
  const dir = path.join(LAB_STATE_DIR, `${prefix.replace(/-$/, '')}.d`);
  return {
    dir,
    controlPlaneSocket: path.join(dir, 'controlplane', 'api.sock'),
    adminTokenFile: path.join(dir, 'controlplane', 'admin.token'),
    kubeconfig: path.join(dir, 'kubeconfig'),
    podwireConfig: path.join(dir, 'podwire.json'),
    accessCert: path.join(dir, 'access', 'tls.crt'),
    accessKey: path.join(dir, 'access', 'tls.key'),
    accessLog: path.join(dir, 'access', 'forwarder.log'),
    agentForwarderLog: path.join(dir, 'access', 'agent-forwarder.log'),
    nodeDir: (node) => path.join(dir, node),
    agentSocket: (node) => path.join(dir, node, 'agent.sock'),
    agentHttpsSocket: (node) => path.join(dir, node, 'agent-https.sock'),
  };
}

/** The agent binary in a recorded command line (whichever checkout's dist/ started it). */
const AGENT_CMD = /\/src\/agent\/main\.js( |$)/;

/** The agent process of a lab node as the lab recorded it (the last one started: a restart records a new one). */
export function recordedAgentProc(state: LabState, node: string): TrackedProc | undefined {
  const netns = state.nodes.find((n) => n.name === node)?.netns;
  return netns === undefined ? undefined : state.procs.filter((p) => p.what.startsWith(`${netns}: `) && AGENT_CMD.test(p.what)).at(-1);
}

/**
 * How much longer every lab wait may take than its stated time-out: 4x inside the kernel VM
 * (PODWIRE_KERNEL_VM=1, scripts/kernel-vm: TCG runs node several times slower, an agent takes
 * 30-50 s to load there on a busy host), else 1; PODWIRE_LAB_TIMEOUT_SCALE overrides both.
 */
export const LAB_TIMEOUT_SCALE = Number(process.env.PODWIRE_LAB_TIMEOUT_SCALE ?? (process.env.PODWIRE_KERNEL_VM === '1' ? 4 : 1)) || 1;

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  timeoutMs *= LAB_TIMEOUT_SCALE;
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${lastErr ? ` (last error: ${lastErr})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function logFile(file: string): number {
  return fs.openSync(file, 'a', 0o600);
}

async function startControlPlane(lab: Lab, dir: string, backend: Backend): Promise<{ admin: ApiClient; child: ChildProcess; args: string[] }> {
  const cpDir = path.join(dir, 'controlplane');
  execFileSync(process.execPath, [BIN.controlplane, 'init', '--data-dir', cpDir, '--backend', backend], { stdio: 'pipe' });
  lab.addUnderlayAddress(CONTROL_PLANE_IP);
  const sock = path.join(cpDir, 'api.sock');
  const args = [BIN.controlplane, '--data-dir', cpDir, '--listen', `${CONTROL_PLANE_IP}:${CP_PORT}`, '--unix-socket', sock, '--log-level', 'warn'];
  const child = spawnControlPlane(lab, args, cpDir);
  const admin = new ApiClient({ server: 'http://podwire-controlplane', socketPath: sock, token: fs.readFileSync(path.join(cpDir, 'admin.token'), 'utf8').trim() });
  await waitControlPlane(admin, sock);
  return { admin, child, args };
}

function spawnControlPlane(lab: Lab, args: string[], cpDir: string): ChildProcess {
  const out = logFile(path.join(cpDir, 'controlplane.log'));
  const child = lab.spawn(lab.state.underlayNetns, process.execPath, args, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return child;
}

function waitControlPlane(admin: ApiClient, sock: string): Promise<unknown> {
  return waitFor('control plane ready', async () => fs.existsSync(sock) && (await admin.request<string>('GET', '/readyz')) === 'ok');
}

/** Starts the control plane again after a stop (same data dir, same addresses). */
export async function restartControlPlane(c: LabCluster): Promise<void> {
  c.controlPlane.child = spawnControlPlane(c.lab, c.controlPlane.args, path.join(c.dir, 'controlplane'));
  await waitControlPlane(c.admin, path.join(c.dir, 'controlplane', 'api.sock'));
}

export async function startAgent(lab: Lab, admin: ApiClient, node: LabNode, dir: string, backend: Backend, proxyMode: ProxyMode = 'nftables', extraArgs: string[] = []): Promise<ClusterNode> {
  const nodeDir = path.join(dir, node.name); // clusterFiles(prefix).nodeDir
  fs.mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
  const { token } = await admin.request<{ token: string }>('POST', `/api/v1/nodes/${node.name}/token`);
  const tokenFile = path.join(nodeDir, 'node.token');
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const socket = path.join(nodeDir, 'agent.sock');
  const out = logFile(path.join(nodeDir, 'agent.log'));
  const args = [...AGENT_NODE_FLAGS, BIN.agent, '--server', `http://${CONTROL_PLANE_IP}:${CP_PORT}`, '--token-file', tokenFile, '--node-name', node.name, '--run-dir', nodeDir, '--socket', socket, '--backend', backend, '--iface', node.underlayIf, '--proxy-mode', proxyMode, '--ipam-data-dir', path.join(nodeDir, 'ipam'),
    // As on a real node the agent installs the plugin and its conflist, here into the node's own
    // dirs (the machine's /etc/cni/net.d is none of the lab's business: doctor reads this one).
    '--install-cni', '--cni-bin-dir', path.join(nodeDir, 'cni-bin'), '--cni-conf-dir', path.join(nodeDir, 'net.d'),
    // The authenticated HTTPS debug endpoint, as on a real node (the CLI reaches it through the
    // underlay forwarder: startAgentForwarder).
    '--debug-listen', `${node.underlayIp}:${AGENT_DEBUG_PORT}`,
    // The cluster DNS forwards other names to the lab's outside host, never to this machine's
    // resolvers (the node netns would otherwise read the machine's /etc/resolv.conf).
    '--dns-upstream', OUTSIDE_IP, ...extraArgs];
  const agent = lab.spawn(node.netns, process.execPath, args, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const { spec } = await admin.request<ClusterConfig>('GET', '/api/v1/clusterconfig');
  return { ...node, dir: nodeDir, socket, agent, agentArgs: args, clusterDns: { clusterDNS: spec.clusterDNS, clusterDomain: spec.clusterDomain } };
}

/** The same agent command again (after a kill): it must adopt what it finds. */
export function restartAgent(c: LabCluster, node: ClusterNode): void {
  const out = logFile(path.join(node.dir, 'agent.log'));
  node.agent = c.lab.spawn(node.netns, process.execPath, node.agentArgs, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
}

/** Waits until the node's agent has synced without errors and knows `peers` peers. */
export function waitAgentSynced(node: ClusterNode, peers: number, timeoutMs = 30_000): Promise<AgentStatus> {
  return waitFor(`agent on ${node.name} synced with ${peers} peers`, async () => {
    const s = await agentStatus(node);
    return s.lastSync && s.lastSync.errors.length === 0 && s.peers.length === peers ? s : undefined;
  }, timeoutMs);
}

export interface AgentStatus {
  podCidr?: string;
  peers: unknown[];
  lastSync?: { at: string; steps: string[]; errors: string[] };
  controlPlane: string;
  /** The CNI fast path's counters (absent with --cni-server off). */
  cni?: { requests: number; failed: number; refused: number; inFlight: number };
}

export function agentStatus(node: ClusterNode): Promise<AgentStatus> {
  const c = new ApiClient({ server: 'http://podwire-agent', socketPath: node.socket, timeoutMs: 2000 * LAB_TIMEOUT_SCALE });
  return c.request<AgentStatus>('GET', '/v1/status').finally(() => c.close());
}

/** How long a lab CNI call may take (the tests' invokePlugin allows 30 s too). */
export const CNI_EXEC_TIMEOUT_MS = 30_000 * LAB_TIMEOUT_SCALE;

export interface CniExecOptions {
  timeoutMs?: number;
  /** The plugin binary (default: the native client when built, as an installed node has it, else BIN.cni). */
  plugin?: string;
}

/** What a lab node's runtime executes as `podwire` (src/agent/cni-install.ts installs the same). */
export const LAB_CNI_PLUGIN = fs.existsSync(BIN.cniClient) ? BIN.cniClient : BIN.cni;

/**
 * Runs the CNI plugin binary in the node netns, as a runtime would. A plugin that does not exit
 * within timeoutMs is killed and the call rejects naming the command, the pod and the node, so a
 * hung plugin fails the lab step instead of hanging it.
 */
export function cniExec(node: Pick<ClusterNode, 'name' | 'netns' | 'dir' | 'socket' | 'clusterDns'>, command: 'ADD' | 'DEL', pod: { name: string; netns: string; containerId: string }, opts: CniExecOptions = {}): Promise<{ code: number | null; stdout: string }> {
  const config = {
    cniVersion: '1.0.0',
    name: 'podwire',
    type: 'podwire',
    subnetFile: path.join(node.dir, 'subnet.env'),
    dataDir: path.join(node.dir, 'ipam'),
    ...(node.clusterDns ? { clusterDNS: node.clusterDns.clusterDNS, clusterDomain: node.clusterDns.clusterDomain } : {}),
    controlPlane: { agentSocket: node.socket, nodeName: node.name },
  };
  const env = {
    PATH: `${path.dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`,
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: netnsPath(pod.netns),
    CNI_IFNAME: 'eth0',
    CNI_PATH: path.dirname(BIN.cni),
    CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};PODWIRE_LABELS=app:echo`,
  };
  const timeoutMs = opts.timeoutMs ?? CNI_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    // nsenter execs the plugin (no --fork), so the child is the plugin itself.
    const child = spawn('nsenter', [`--net=${netnsPath(node.netns)}`, '--', opts.plugin ?? LAB_CNI_PLUGIN], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`CNI ${command} of pod ${pod.name} on ${node.name} did not finish within ${timeoutMs} ms; the plugin was killed${stdout.trim() ? ` (its output so far: ${stdout.trim().slice(0, 500)})` : ''}`));
      else resolve({ code, stdout });
    });
    child.stdin!.on('error', () => {}); // the plugin may exit before reading stdin
    child.stdin!.end(JSON.stringify(config));
  });
}

export async function addPod(lab: Lab, node: ClusterNode, index: number): Promise<ClusterPod> {
  const name = `echo-${node.name}-${index}`;
  const netns = `${lab.prefix}${node.name}-p${index}`;
  createNetns(netns);
  const h = Handle.open({ netns });
  try {
    h.linkSet('lo', { up: true });
  } finally {
    h.close();
  }
  const containerId = randomBytes(32).toString('hex');
  const r = await cniExec(node, 'ADD', { name, netns, containerId });
  if (r.code !== 0) throw new Error(`CNI ADD of pod ${name} on ${node.name} failed: ${r.stdout.trim()}`);
  const result = JSON.parse(r.stdout) as { ips: { address: string }[]; dns?: ResolvConfDns };
  const ip = result.ips[0]!.address.split('/')[0]!;
  // The pod's /etc/resolv.conf from the CNI result's dns, as a runtime writes it for the kubelet.
  if (node.clusterDns) writePodResolvConf(netns, resolvConfText(result.dns ?? {}));
  await startEcho(lab, netns, name);
  return { name, node: node.name, netns, ip, containerId };
}

/** A TCP echo server in a namespace; resolves once it listens. */
export async function startEcho(lab: Lab, netns: string, name: string): Promise<void> {
  // No inherited stdio: with --keep the server outlives this process and must not hold its pipes.
  const child = lab.spawn(netns, process.execPath, [BIN.echo, 'serve', String(ECHO_PORT), name], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`echo server in ${netns} exited (${code})`)));
  });
}

/**
 * The CLI reaches each lab agent's HTTPS debug endpoint as on a real cluster; only the transport
 * is the lab's: this forwarder in the underlay netns (which is on every node's segment) listens on
 * one unix socket per node in the lab's files (reachable from the root netns) and connects to
 * NODEIP:10262. TLS runs end to end between the CLI and the agent.
 */
async function startAgentForwarder(lab: Lab): Promise<void> {
  const files = clusterFiles(lab.prefix);
  const rules = lab.nodes.flatMap((n) => {
    fs.mkdirSync(files.nodeDir(n.name), { recursive: true, mode: 0o700 });
    return ['--forward', `unix:${files.agentHttpsSocket(n.name)}=tcp:${n.underlayIp}:${AGENT_DEBUG_PORT}`];
  });
  await startForwarder(lab, lab.state.underlayNetns, rules, files.agentForwarderLog, 'the agents\' forwarder');
}

export async function createCluster(opts: ClusterOptions): Promise<LabCluster> {
  const log = opts.log ?? (() => undefined);
  const lab = Lab.create({ nodes: opts.nodes, log, ...(opts.prefix ? { prefix: opts.prefix } : {}) });
  let admin: ApiClient | undefined;
  try {
    const dir = clusterFiles(lab.prefix).dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const cp = await startControlPlane(lab, dir, opts.backend);
    admin = cp.admin;
    log(`control plane: ${CONTROL_PLANE_IP}:${CP_PORT} in ${lab.state.underlayNetns} (SQLite in ${dir}/controlplane)`);
    await startAgentForwarder(lab);
    const outside = lab.addHost('outside', OUTSIDE_IP);
    await startEcho(lab, outside.netns, 'outside');
    log(`outside host: ${OUTSIDE_IP} (not in the cluster), echo server on :${ECHO_PORT}`);
    const nodes: ClusterNode[] = [];
    for (const n of lab.nodes.slice(0, opts.startNodes ?? lab.nodes.length)) nodes.push(await startAgent(lab, admin, n, dir, opts.backend, opts.proxyMode, opts.agentArgs));
    for (const n of nodes) {
      const st = await waitAgentSynced(n, nodes.length - 1);
      log(`${n.name}: agent up, podCIDR ${st.podCidr}, ${st.peers.length} peers, backend ${opts.backend}`);
    }
    // Every agent answers the cluster DNS once it has listed Services and Endpoints and then
    // publishes its server; pods (and the main job's by-name probe) resolve from then on.
    const dnsIps = await waitFor('the cluster DNS served on every node (kube-system/kube-dns endpoints)', async () => {
      const ep = await admin!.get<Endpoints>({ plural: 'endpoints', namespace: 'kube-system', name: 'kube-dns' });
      const ips = (ep.subsets ?? []).flatMap((x) => (x.addresses ?? []).map((a) => a.ip));
      return ips.length === nodes.length ? ips : undefined;
    }, 30_000);
    log(`cluster DNS: ${nodes[0]?.clusterDns?.clusterDNS ?? 'the kube-dns ClusterIP'} answered on each node (kube-dns endpoints ${dnsIps.join(', ')})`);
    const pods: ClusterPod[] = [];
    for (const n of nodes) {
      for (let i = 1; i <= opts.podsPerNode; i++) {
        const p = await addPod(lab, n, i);
        pods.push(p);
        log(`${n.name}: pod ${p.name} ${p.ip} (CNI ADD), echo server on :${ECHO_PORT}`);
      }
    }
    const controlPlane = { child: cp.child, args: cp.args };
    return { lab, dir, backend: opts.backend, controlPlane, admin, nodes, pods, outside };
  } catch (err) {
    admin?.close();
    lab.destroy();
    throw err;
  }
}

export function destroyCluster(c: LabCluster): string[] {
  c.admin.close();
  const leaks = c.lab.destroy();
  fs.rmSync(c.dir, { recursive: true, force: true });
  return leaks;
}

export const ECHO_SERVICE = 'echo';
export const ECHO_SERVICE_PORT = 80;

/**
 * The main job's Service: NodePort `default/echo`, port 80 → the echo pods' 8080 on every node.
 * Resolves once every agent has synced rules for it with all pods as endpoints.
 */
export async function createEchoService(c: LabCluster): Promise<Service> {
  const svc = await c.admin.create<Service>({ plural: 'services', namespace: 'default' }, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: ECHO_SERVICE, labels: { app: 'echo' } },
    spec: { type: 'NodePort', selector: { app: 'echo' }, ports: [{ name: 'http', port: ECHO_SERVICE_PORT, targetPort: ECHO_PORT }] },
  });
  await waitFor(`endpoints of ${ECHO_SERVICE} list all ${c.pods.length} pods`, async () => {
    const ep = await c.admin.get<Endpoints>({ plural: 'endpoints', namespace: 'default', name: ECHO_SERVICE });
    return (ep.subsets ?? []).reduce((n, s) => n + (s.addresses?.length ?? 0), 0) === c.pods.length;
  });
  for (const n of c.nodes) {
    await waitFor(`service rules on ${n.name}`, async () => {
      const st = (await agentStatus(n)) as AgentStatus & { proxy?: { servicePorts: number; endpoints: number; lastSync?: { error?: string } } };
      return st.proxy && st.proxy.servicePorts >= 1 && st.proxy.endpoints >= c.pods.length && st.proxy.lastSync && !st.proxy.lastSync.error;
    });
  }
  return svc;
}
