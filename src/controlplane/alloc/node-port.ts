// NodePort allocator over a port range. Pure: (layout, state, request) → { state', result }.
//
// Like Kubernetes, a port number is allocated once, whatever the protocol: two services can never
// share nodePort 30080 even if one is TCP and the other UDP. Within one service, ports with the
// same `port` number and different protocols (DNS: 53/TCP + 53/UDP) share one nodePort, which
// is what kube-apiserver does (allocateServiceNodePorts below).
import { AllocError, checkIndex, countBits, decodeBitmap, emptyBitmap, encodeBitmap, findFree, isRecord, testBit, withBit } from './bitmap.js';

export const DEFAULT_NODE_PORT_RANGE = '30000-32767';

export interface NodePortLayout {
  first: number;
  last: number;
  size: number;
  /** Canonical text, "30000-32767". */
  text: string;
}

export interface NodePortState {
  version: 1;
  range: string;
  /** base64 bitmap, bit i = port first + i is allocated. */
  taken: string;
  /** Index of the last dynamically allocated port: the next search starts after it. */
  cursor: number;
}

export function parseNodePortConfig(config: { nodePortRange?: string } = {}): NodePortLayout {
  const text = config.nodePortRange ?? DEFAULT_NODE_PORT_RANGE;
  const m = typeof text === 'string' ? /^(\d{1,5})-(\d{1,5})$/.exec(text) : null;
  const first = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  if (!m || first < 1 || last > 65535 || first > last) {
    throw new AllocError('config', `nodePortRange ${JSON.stringify(text)}: expected FIRST-LAST with 1 <= FIRST <= LAST <= 65535, e.g. "${DEFAULT_NODE_PORT_RANGE}"`);
  }
  return { first, last, size: last - first + 1, text: `${first}-${last}` };
}

export function emptyNodePortState(layout: NodePortLayout): NodePortState {
  // cursor -1 would not survive checkIndex: start at the last index so the first search wraps to 0.
  return { version: 1, range: layout.text, taken: encodeBitmap(emptyBitmap(layout.size)), cursor: layout.size - 1 };
}

export function parseNodePortState(json: unknown, layout: NodePortLayout): NodePortState {
  if (!isRecord(json) || json.version !== 1) throw new AllocError('state', 'NodePort state: expected an object with version 1');
  if (json.range !== layout.text) {
    throw new AllocError('state', `NodePort state was made for the range ${String(json.range)}, but the configured range is ${layout.text}; the range cannot change while services hold ports from it`);
  }
  decodeBitmap(json.taken, layout.size, 'NodePort state');
  const cursor = checkIndex(json.cursor, layout.size, 'NodePort state: cursor');
  return { version: 1, range: layout.text, taken: json.taken as string, cursor };
}

function checkPort(layout: NodePortLayout, port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < layout.first || port > layout.last) {
    throw new AllocError('invalid', `nodePort ${JSON.stringify(port)}: provided port is not in the valid range. The range of valid ports is ${layout.text}`);
  }
  return port - layout.first;
}

/**
 * A requested port is checked (in range, free) and taken; otherwise the next free port after the
 * cursor, round robin, so a released port is not reused at once. Errors: 'invalid', 'taken',
 * 'exhausted'.
 */
export function allocateNodePort(layout: NodePortLayout, state: NodePortState, requested?: number): { state: NodePortState; nodePort: number } {
  const bits = decodeBitmap(state.taken, layout.size, 'NodePort state');
  if (requested !== undefined) {
    const index = checkPort(layout, requested);
    if (testBit(bits, index)) throw new AllocError('taken', `nodePort ${requested}: provided port is already allocated`);
    return { state: { ...state, taken: encodeBitmap(withBit(bits, index, true)) }, nodePort: requested };
  }
  const index = findFree(bits, layout.size, state.cursor + 1, 0);
  if (index < 0) throw new AllocError('exhausted', `NodePort range ${layout.text} has no free port (${layout.size} in use)`);
  return { state: { ...state, taken: encodeBitmap(withBit(bits, index, true)), cursor: index }, nodePort: layout.first + index };
}

/** Frees a port; out of range or not allocated is a no-op (released false), so delete is idempotent. */
export function releaseNodePort(layout: NodePortLayout, state: NodePortState, port: number): { state: NodePortState; released: boolean } {
  if (!Number.isInteger(port) || port < layout.first || port > layout.last) return { state, released: false };
  const bits = decodeBitmap(state.taken, layout.size, 'NodePort state');
  const index = port - layout.first;
  if (!testBit(bits, index)) return { state, released: false };
  return { state: { ...state, taken: encodeBitmap(withBit(bits, index, false)) }, released: true };
}

export interface ServicePortRequest {
  port: number;
  protocol: string;
  /** The nodePort the user asked for, if any (0 or absent: allocate one). */
  nodePort?: number;
}

/**
 * NodePorts for every port of one service, all or nothing (on error the input state is untouched
 * because it is never mutated). Requested numbers are taken once even when several protocols name
 * them; a port without one reuses the nodePort of another entry with the same `port` number and a
 * different protocol, else gets a fresh one. Returns nodePorts in the order of `ports`.
 */
export function allocateServiceNodePorts(layout: NodePortLayout, state: NodePortState, ports: readonly ServicePortRequest[]): { state: NodePortState; nodePorts: number[] } {
  const protocolsOf = new Map<number, Set<string>>(); // nodePort → protocols using it in this service
  const claim = (nodePort: number, protocol: string, index: number): void => {
    const used = protocolsOf.get(nodePort) ?? new Set<string>();
    if (used.has(protocol)) throw new AllocError('invalid', `ports[${index}].nodePort ${nodePort}: duplicate nodePort for protocol ${protocol} in this service`);
    used.add(protocol);
    protocolsOf.set(nodePort, used);
  };
  // 0 means "allocate one", as in a Kubernetes Service body.
  const wanted = ports.map((p) => (p.nodePort === 0 ? undefined : p.nodePort));
  let next = state;
  const nodePorts: number[] = new Array(ports.length);
  ports.forEach((p, i) => {
    if (wanted[i] === undefined) return;
    if (!protocolsOf.has(wanted[i])) next = allocateNodePort(layout, next, wanted[i]).state;
    claim(wanted[i], p.protocol, i);
    nodePorts[i] = wanted[i];
  });
  const byServicePort = new Map<number, number>(); // service port → nodePort shared across protocols
  ports.forEach((p, i) => {
    if (wanted[i] !== undefined) byServicePort.set(p.port, wanted[i]);
  });
  ports.forEach((p, i) => {
    if (wanted[i] !== undefined) return;
    let nodePort = byServicePort.get(p.port);
    if (nodePort === undefined || protocolsOf.get(nodePort)?.has(p.protocol)) {
      ({ state: next, nodePort } = allocateNodePort(layout, next));
      byServicePort.set(p.port, nodePort);
    }
    claim(nodePort, p.protocol, i);
    nodePorts[i] = nodePort;
  });
  return { state: next, nodePorts };
}

/** Frees every distinct nodePort of a service. */
export function releaseServiceNodePorts(layout: NodePortLayout, state: NodePortState, nodePorts: readonly number[]): NodePortState {
  let next = state;
  for (const port of new Set(nodePorts)) next = releaseNodePort(layout, next, port).state;
  return next;
}

export function isNodePortAllocated(layout: NodePortLayout, state: NodePortState, port: number): boolean {
  if (!Number.isInteger(port) || port < layout.first || port > layout.last) return false;
  return testBit(decodeBitmap(state.taken, layout.size, 'NodePort state'), port - layout.first);
}

export function nodePortUsage(layout: NodePortLayout, state: NodePortState): { used: number; total: number } {
  return { used: countBits(decodeBitmap(state.taken, layout.size, 'NodePort state')), total: layout.size };
}
