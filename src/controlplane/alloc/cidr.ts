// podCIDR allocator: carves the cluster CIDR into node subnets of `nodeMask` bits and hands one to
// each node by name. Pure: (layout, state, request) → { state', result }; the caller stores state'
// with compare-and-swap, which is what makes concurrent registrations duplicate-free.
import {
  AllocError,
  checkIndex,
  countBits,
  decodeBitmap,
  emptyBitmap,
  encodeBitmap,
  findFree,
  isRecord,
  parseNetwork,
  testBit,
  withBit,
  type Network,
} from './bitmap.js';
import { cidrCovers } from '../../net/cidr.js';
import { formatBigInt } from '../../net/ip.js';

export interface PodCidrConfig {
  clusterCidr?: string;
  nodeMask?: number;
}

export const DEFAULT_CLUSTER_CIDR = '10.244.0.0/16';
export const DEFAULT_NODE_MASK = 24;

/**
 * At most 2^16 node subnets, as kube-controller-manager's cidrset (clusterSubnetMaxDiff = 16):
 * the bitmap stays at 8 KiB and is rewritten on every registration, and 65,536 nodes is far past
 * what one control plane with one store row of allocation state should carry.
 */
export const MAX_NODE_SUBNET_BITS = 16;

/** A validated configuration. */
export interface PodCidrLayout {
  cluster: Network;
  nodeMask: number;
  /** Number of node subnets: 2^(nodeMask - cluster prefix). */
  count: number;
}

/** JSON-safe allocation state, stored as one object. */
export interface PodCidrState {
  version: 1;
  clusterCidr: string;
  nodeMask: number;
  /** base64 bitmap, bit i = subnet i taken. */
  taken: string;
  /** nodeName → subnet index. */
  nodes: Record<string, number>;
}

export interface PodCidrRequest {
  nodeName: string;
  /** A podCIDR the node already carries (e.g. Node.spec.podCIDR set by hand): reserved if free. */
  podCidr?: string;
}

export interface PodCidrAllocation {
  state: PodCidrState;
  podCidr: string;
  index: number;
  /** True when the node already had this subnet (re-register): state is unchanged. */
  reused: boolean;
}

export function parsePodCidrConfig(config: PodCidrConfig = {}): PodCidrLayout {
  const cluster = parseNetwork(config.clusterCidr ?? DEFAULT_CLUSTER_CIDR, 'clusterCIDR');
  const nodeMask = config.nodeMask ?? DEFAULT_NODE_MASK;
  // A node subnet holds the bridge gateway and at least one pod (IPv4 also loses network + broadcast).
  const maxMask = cluster.family === 4 ? 30 : 126;
  if (typeof nodeMask !== 'number' || !Number.isInteger(nodeMask) || nodeMask > maxMask) {
    throw new AllocError('config', `nodeMask ${JSON.stringify(nodeMask)}: must be an integer of at most ${maxMask} for IPv${cluster.family} (a node subnet must hold the gateway and at least one pod)`);
  }
  if (nodeMask <= cluster.prefixLen) {
    throw new AllocError('config', `nodeMask /${nodeMask} must be longer than the cluster CIDR ${cluster.text} prefix /${cluster.prefixLen}, so that the cluster holds more than one node subnet`);
  }
  const bits = nodeMask - cluster.prefixLen;
  if (bits > MAX_NODE_SUBNET_BITS) {
    throw new AllocError('config', `cluster CIDR ${cluster.text} with node mask /${nodeMask} makes 2^${bits} node subnets; at most 2^${MAX_NODE_SUBNET_BITS} (65536) are supported, like kube-controller-manager: use a node mask of /${cluster.prefixLen + MAX_NODE_SUBNET_BITS} or shorter, or a longer cluster prefix`);
  }
  return { cluster, nodeMask, count: 2 ** bits };
}

export function emptyPodCidrState(layout: PodCidrLayout): PodCidrState {
  return { version: 1, clusterCidr: layout.cluster.text, nodeMask: layout.nodeMask, taken: encodeBitmap(emptyBitmap(layout.count)), nodes: {} };
}

/** The subnet with the given index, e.g. 3 → "10.244.3.0/24". */
export function podCidrAt(layout: PodCidrLayout, index: number): string {
  const step = 1n << BigInt(layout.cluster.width - layout.nodeMask);
  return `${formatBigInt(layout.cluster.family, layout.cluster.base + BigInt(index) * step)}/${layout.nodeMask}`;
}

/** Checks a stored state against the layout; throws AllocError('state'). Returns a fresh copy. */
export function parsePodCidrState(json: unknown, layout: PodCidrLayout): PodCidrState {
  if (!isRecord(json) || json.version !== 1) throw new AllocError('state', 'podCIDR state: expected an object with version 1');
  if (json.clusterCidr !== layout.cluster.text || json.nodeMask !== layout.nodeMask) {
    // Changing the cluster CIDR or the mask would move every node's subnet: refuse, as Kubernetes does.
    throw new AllocError('state', `podCIDR state was made for ${String(json.clusterCidr)} /${String(json.nodeMask)}, but the configuration is ${layout.cluster.text} /${layout.nodeMask}; the cluster CIDR and node mask cannot change once nodes hold subnets`);
  }
  const bits = decodeBitmap(json.taken, layout.count, 'podCIDR state');
  if (!isRecord(json.nodes)) throw new AllocError('state', 'podCIDR state: nodes must be an object');
  const owners = new Map<number, string>();
  for (const [name, value] of Object.entries(json.nodes)) {
    const index = checkIndex(value, layout.count, `podCIDR state: node ${JSON.stringify(name)}`);
    if (!testBit(bits, index)) throw new AllocError('state', `podCIDR state: node ${JSON.stringify(name)} holds subnet ${index}, which is not marked taken`);
    const other = owners.get(index);
    if (other !== undefined) throw new AllocError('state', `podCIDR state: nodes ${JSON.stringify(other)} and ${JSON.stringify(name)} both hold subnet ${index}`);
    owners.set(index, name);
  }
  if (countBits(bits) !== owners.size) throw new AllocError('state', `podCIDR state: ${countBits(bits)} subnets marked taken but ${owners.size} nodes hold one`);
  return { version: 1, clusterCidr: layout.cluster.text, nodeMask: layout.nodeMask, taken: json.taken as string, nodes: Object.fromEntries(Array.from(owners, ([i, n]) => [n, i])) };
}

function ownIndex(state: PodCidrState, nodeName: string): number | undefined {
  return Object.hasOwn(state.nodes, nodeName) ? state.nodes[nodeName] : undefined;
}

function ownerOf(state: PodCidrState, index: number): string | undefined {
  return Object.entries(state.nodes).find(([, i]) => i === index)?.[0];
}

/** Index of a requested podCIDR; it must be exactly one node subnet of the cluster CIDR. */
function requestedIndex(layout: PodCidrLayout, text: string): number {
  let net: Network;
  try {
    net = parseNetwork(text, 'podCIDR');
  } catch (err) {
    throw new AllocError('invalid', (err as Error).message);
  }
  const { cluster } = layout;
  if (!cidrCovers(cluster.cidr, net.cidr) || net.prefixLen !== layout.nodeMask) {
    throw new AllocError('invalid', `podCIDR ${text} is not a /${layout.nodeMask} subnet of the cluster CIDR ${cluster.text}`);
  }
  return Number((net.base - cluster.base) >> BigInt(cluster.width - layout.nodeMask));
}

/**
 * The node's subnet: the one it already holds (stable across re-registration), else the requested
 * one, else the first free one. Errors: 'exhausted', 'invalid' / 'taken' for a requested podCIDR.
 */
export function allocatePodCidr(layout: PodCidrLayout, state: PodCidrState, request: PodCidrRequest): PodCidrAllocation {
  const { nodeName } = request;
  const held = ownIndex(state, nodeName);
  const wanted = request.podCidr === undefined ? undefined : requestedIndex(layout, request.podCidr);
  if (held !== undefined) {
    if (wanted !== undefined && wanted !== held) {
      throw new AllocError('taken', `node ${JSON.stringify(nodeName)} already holds podCIDR ${podCidrAt(layout, held)}; it cannot change to ${request.podCidr}`);
    }
    return { state, podCidr: podCidrAt(layout, held), index: held, reused: true };
  }
  const bits = decodeBitmap(state.taken, layout.count, 'podCIDR state');
  let index: number;
  if (wanted !== undefined) {
    if (testBit(bits, wanted)) {
      throw new AllocError('taken', `podCIDR ${podCidrAt(layout, wanted)} is already allocated to node ${JSON.stringify(ownerOf(state, wanted))}`);
    }
    index = wanted;
  } else {
    index = findFree(bits, layout.count, 0, 0);
    if (index < 0) {
      throw new AllocError('exhausted', `cluster CIDR ${layout.cluster.text} with node mask /${layout.nodeMask} has no free subnet (${layout.count} in use)`);
    }
  }
  const next: PodCidrState = { ...state, taken: encodeBitmap(withBit(bits, index, true)), nodes: { ...state.nodes } };
  Object.defineProperty(next.nodes, nodeName, { value: index, enumerable: true, writable: true, configurable: true });
  return { state: next, podCidr: podCidrAt(layout, index), index, reused: false };
}

/** Frees the node's subnet; a node without one is a no-op (delete is idempotent). */
export function releasePodCidr(layout: PodCidrLayout, state: PodCidrState, nodeName: string): { state: PodCidrState; podCidr: string | undefined } {
  const held = ownIndex(state, nodeName);
  if (held === undefined) return { state, podCidr: undefined };
  const bits = decodeBitmap(state.taken, layout.count, 'podCIDR state');
  const nodes = Object.fromEntries(Object.entries(state.nodes).filter(([name]) => name !== nodeName));
  return { state: { ...state, taken: encodeBitmap(withBit(bits, held, false)), nodes }, podCidr: podCidrAt(layout, held) };
}

/** The subnet a node holds, if any. */
export function podCidrOf(layout: PodCidrLayout, state: PodCidrState, nodeName: string): string | undefined {
  const held = ownIndex(state, nodeName);
  return held === undefined ? undefined : podCidrAt(layout, held);
}

export function podCidrUsage(layout: PodCidrLayout, state: PodCidrState): { used: number; total: number } {
  return { used: Object.keys(state.nodes).length, total: layout.count };
}
