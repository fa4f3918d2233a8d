// The netns lab: N node namespaces on an underlay bridge that lives in its own namespace. Nothing is
// ever created in the caller's netns: every veth is created from inside the underlay netns with its
// peer placed straight into the node netns. Teardown is guaranteed (see cleanup.ts) and checked.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createNetns, deleteNetns, listNetns, netnsExists, openNetns, type NetnsRef } from '../netns/netns.js';
import { spawnInNetns } from '../netns/exec.js';
import { NetlinkSocket } from '../netlink/socket.js';
import { NETLINK_ROUTE } from '../netlink/constants.js';
import { linkAdd, linkGet, linkSet } from '../netlink/link.js';
import { addrAdd } from '../netlink/address.js';
import { registerCleanup, type CleanupHandle } from './cleanup.js';
import { newLabPrefix, nodeName, nodeNetnsName, underlayNetnsName, validateLabPrefix } from './names.js';
import { isAlive, killTracked, procStartTime, waitGone, type TrackedProc } from './procs.js';
import { labNetnsEtcDirs, removeLabNetnsEtc } from './resolv-conf.js';
import { DEFAULT_UNDERLAY_CIDR, NODE_UNDERLAY_IF, UNDERLAY_BRIDGE, underlayAddressing, type UnderlayAddressing } from './underlay.js';

export const LAB_STATE_DIR = '/run/podwire/lab';

export interface LabOptions {
  nodes: number;
  prefix?: string;
  underlayCidr?: string;
  mtu?: number;
  /** Progress lines (the CLI prints them). */
  log?: (line: string) => void;
}

export interface LabNode {
  name: string;
  netns: string;
  underlayIp: string;
  underlayCidr: string;
  underlayIf: string;
  mac: string;
}

export interface LabState {
  prefix: string;
  underlayNetns: string;
  underlayCidr: string;
  nodes: LabNode[];
  /** Other machines on the underlay (e.g. the "outside" host of the main job); not cluster nodes. */
  hosts?: LabNode[];
  procs: TrackedProc[];
  createdAt: string;
  /** `lab up --keep`: how the machine's own shell reaches the control plane (src/lab/access.ts). */
  access?: LabAccess;
}

export interface LabAccess {
  /** https://127.0.0.1:PORT: the root-netns forwarder to the control plane's unix socket. */
  server: string;
  forwarderPid: number;
  kubeconfig: string;
  podwireConfig: string;
}

export class Lab {
  readonly state: LabState;
  private readonly sockets: NetlinkSocket[] = [];
  private readonly cleanup: CleanupHandle;
  private destroyed = false;

  private constructor(state: LabState) {
    this.state = state;
    // Runs on SIGINT/SIGTERM/exit unless destroy() ran first.
    this.cleanup = registerCleanup(() => this.teardownSync());
  }

  get prefix(): string {
    return this.state.prefix;
  }
  get nodes(): LabNode[] {
    return this.state.nodes;
  }

  /** Build the lab; on any failure everything created so far is removed before the error propagates. */
  static create(opts: LabOptions): Lab {
    if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 64) {
      throw new Error(`lab: --nodes must be an integer in 1-64 (got ${opts.nodes})`);
    }
    const prefix = opts.prefix ?? newLabPrefix();
    validateLabPrefix(prefix);
    const underlayCidr = opts.underlayCidr ?? DEFAULT_UNDERLAY_CIDR;
    const addressing = underlayAddressing(underlayCidr, opts.nodes);
    const clash = listNetns().filter((n) => n.startsWith(prefix));
    if (clash.length) throw new Error(`lab prefix ${prefix} is in use (${clash.join(', ')}): run "podwire lab down --prefix ${prefix}" first`);
    const lab = new Lab({ prefix, underlayNetns: underlayNetnsName(prefix), underlayCidr, nodes: [], procs: [], createdAt: new Date().toISOString() });
    try {
      lab.build(addressing, opts);
      return lab;
    } catch (err) {
      lab.teardownSync();
      throw err;
    }
  }

  private build(addressing: UnderlayAddressing, opts: LabOptions): void {
    const log = opts.log ?? (() => {});
    const underlay = this.state.underlayNetns;
    this.addNetns(underlay);
    const ul = this.socket(underlay);
    linkSet(ul, 'lo', { up: true });
    linkAdd(ul, { kind: 'bridge', name: UNDERLAY_BRIDGE, up: true, ...(opts.mtu ? { mtu: opts.mtu } : {}) });
    const brIndex = linkGet(ul, UNDERLAY_BRIDGE).index;
    log(`underlay: netns ${underlay}, bridge ${UNDERLAY_BRIDGE}, ${addressing.cidr}`);
    for (let i = 1; i <= opts.nodes; i++) {
      const node = this.addNode(nodeName(i), addressing.nodeIp(i), addressing.prefixLen, ul, brIndex, opts.mtu);
      log(`${node.name}: netns ${node.netns}, ${node.underlayIf} ${node.underlayCidr} (${node.mac})`);
    }
    this.saveState();
  }

  /**
   * Another machine on the underlay segment (its own netns, eth0 with ip/prefix), e.g. a host outside
   * the cluster. Same wiring as a node; listed in state.hosts.
   */
  addHost(name: string, ip: string): LabNode {
    const ul = this.socket(this.state.underlayNetns);
    const brIndex = linkGet(ul, UNDERLAY_BRIDGE).index;
    const prefixLen = Number(this.state.underlayCidr.split('/')[1]);
    const host = this.addNode(name, ip, prefixLen, ul, brIndex, undefined, false);
    this.saveState();
    return host;
  }

  /** An address on the underlay bridge itself (the underlay netns plays a host, e.g. the control plane's). */
  addUnderlayAddress(ip: string): void {
    const ul = this.socket(this.state.underlayNetns);
    const prefixLen = Number(this.state.underlayCidr.split('/')[1]);
    addrAdd(ul, { ifindex: linkGet(ul, UNDERLAY_BRIDGE).index, cidr: `${ip}/${prefixLen}` });
  }

  private addNode(name: string, ip: string, prefixLen: number, ul: NetlinkSocket, brIndex: number, mtu?: number, isNode = true): LabNode {
    const netns = nodeNetnsName(this.prefix, name);
    this.addNetns(netns);
    const ref: NetnsRef = openNetns(netns);
    try {
      const mtuOpt = mtu ? { mtu } : {};
      linkAdd(ul, { kind: 'veth', name, ...mtuOpt, peer: { name: NODE_UNDERLAY_IF, netnsFd: ref.fd, ...mtuOpt } });
    } finally {
      ref.close();
    }
    linkSet(ul, name, { masterIndex: brIndex, up: true });
    const ns = this.socket(netns);
    linkSet(ns, 'lo', { up: true });
    const eth = linkGet(ns, NODE_UNDERLAY_IF);
    addrAdd(ns, { ifindex: eth.index, cidr: `${ip}/${prefixLen}` });
    linkSet(ns, eth.index, { up: true });
    const node: LabNode = { name, netns, underlayIp: ip, underlayCidr: `${ip}/${prefixLen}`, underlayIf: NODE_UNDERLAY_IF, mac: eth.mac ?? '' };
    if (isNode) this.state.nodes.push(node);
    else (this.state.hosts ??= []).push(node);
    return node;
  }

  private addNetns(name: string): void {
    createNetns(name);
  }

  /** A netlink socket bound to one of the lab's namespaces; closed on teardown. */
  socket(netns: string): NetlinkSocket {
    if (!netns.startsWith(this.prefix)) throw new Error(`netns ${netns} is not part of lab ${this.prefix}`);
    const s = NetlinkSocket.open(NETLINK_ROUTE, { netns });
    this.sockets.push(s);
    return s;
  }

  node(name: string): LabNode {
    const n = this.state.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`lab ${this.prefix} has no node ${JSON.stringify(name)} (nodes: ${this.state.nodes.map((x) => x.name).join(', ')})`);
    return n;
  }

  /** Start a process inside one of the lab's namespaces; it is killed (by PID) on teardown. */
  spawn(netns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    if (!netns.startsWith(this.prefix)) throw new Error(`netns ${netns} is not part of lab ${this.prefix}`);
    return this.track(spawnInNetns(netns, cmd, args, opts), `${netns}: ${cmd} ${args.join(' ')}`);
  }

  /**
   * Start a process in the caller's own netns, tracked and killed on teardown like the others.
   * Only for the lab's forwarder (src/lab/access.ts), which adds nothing there but a listening
   * socket on 127.0.0.1 or a unix socket.
   */
  spawnInCallerNetns(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return this.track(spawn(cmd, args, opts), `root netns: ${cmd} ${args.join(' ')}`);
  }

  private track(child: ChildProcess, what: string): ChildProcess {
    const startTime = child.pid !== undefined ? procStartTime(child.pid) : undefined;
    if (child.pid !== undefined && startTime !== undefined) {
      this.state.procs.push({ pid: child.pid, startTime, what });
      this.saveState();
    }
    return child;
  }

  /** Record how the machine's shell reaches the kept lab (saved with the state). */
  setAccess(access: LabAccess): void {
    this.state.access = access;
    this.saveState();
  }

  statePath(): string {
    return path.join(LAB_STATE_DIR, `${this.prefix.replace(/-$/, '')}.json`);
  }

  private saveState(): void {
    fs.mkdirSync(LAB_STATE_DIR, { recursive: true, mode: 0o755 });
    const tmp = `${this.statePath()}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.state, null, 2) + '\n', { mode: 0o644 });
    fs.renameSync(tmp, this.statePath());
  }

  /** Keep the lab after this process exits (lab up --keep); `podwire lab down` removes it. */
  detach(): void {
    this.saveState();
    for (const s of this.sockets.splice(0)) s.close();
    this.cleanup.cancel();
  }

  /** Remove everything; idempotent. Returns what the leak check still finds (empty = clean). */
  destroy(): string[] {
    this.cleanup.cancel();
    this.teardownSync();
    return leakCheck(this.state);
  }

  private teardownSync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const s of this.sockets.splice(0)) s.close();
    teardownState(this.state);
  }
}

/** Kill tracked processes, delete the lab's namespaces and its state file. Synchronous. */
export function teardownState(state: LabState): void {
  for (const p of state.procs) killTracked(p);
  waitGone(state.procs);
  const names = new Set([...state.nodes.map((n) => n.netns), ...(state.hosts ?? []).map((n) => n.netns), state.underlayNetns]);
  for (const n of listNetns()) if (n.startsWith(state.prefix)) names.add(n);
  for (const n of names) {
    // A lab known by its prefix alone (`lab down --prefix` without a state file) names no underlay netns.
    if (n !== '' && netnsExists(n)) deleteNetns(n);
  }
  // The pods' /etc/netns/NETNS/resolv.conf (resolv-conf.ts).
  removeLabNetnsEtc(state.prefix);
  fs.rmSync(path.join(LAB_STATE_DIR, `${state.prefix.replace(/-$/, '')}.json`), { force: true });
  // The cluster's files (control plane data, node tokens, agent run dirs, logs).
  fs.rmSync(path.join(LAB_STATE_DIR, `${state.prefix.replace(/-$/, '')}.d`), { recursive: true, force: true });
}

/** What is left of a lab: namespaces with its prefix and tracked processes still running. */
export function leakCheck(state: Pick<LabState, 'prefix' | 'procs'>): string[] {
  const leaks = listNetns().filter((n) => n.startsWith(state.prefix)).map((n) => `netns ${n}`);
  for (const p of state.procs) if (isAlive(p)) leaks.push(`process ${p.pid} (${p.what})`);
  for (const dir of labNetnsEtcDirs(state.prefix)) leaks.push(`dir ${dir}`);
  return leaks;
}

export function readLabStates(): LabState[] {
  if (!fs.existsSync(LAB_STATE_DIR)) return [];
  return fs
    .readdirSync(LAB_STATE_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(LAB_STATE_DIR, f), 'utf8')) as LabState);
}
