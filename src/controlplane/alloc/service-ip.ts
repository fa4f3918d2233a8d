// ClusterIP allocator over the service CIDR. Pure: (layout, state, request) → { state', result }.
// One bit per address of the CIDR (bit i = network + i), so an index is an address offset.
import {
  AllocError,
  checkIndex,
  countBits,
  decodeBitmap,
  emptyBitmap,
  encodeBitmap,
  findFree,
  isRecord,
  parseAddressOf,
  parseNetwork,
  testBit,
  withBit,
  type Network,
} from './bitmap.js';
import { formatBigInt } from '../../net/ip.js';

export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';

/**
 * kube-apiserver refuses a service CIDR wider than /12 (IPv4) or /108 (IPv6): 2^20 addresses,
 * a 128 KiB bitmap, is already more services than one cluster runs.
 */
export const MAX_SERVICE_HOST_BITS = 20;

export interface ServiceIpLayout {
  cidr: Network;
  /** Addresses in the CIDR = bitmap size. */
  size: number;
  /** Allocatable offsets are lo..hi-1. */
  lo: number;
  hi: number;
  /** The cluster DNS address's offset: never handed out dynamically, requested only for the cluster DNS Service. */
  clusterDnsOffset?: number;
}

export interface ServiceIpState {
  version: 1;
  serviceCidr: string;
  /** base64 bitmap, bit i = network address + i is allocated. */
  taken: string;
  /** Offset of the last dynamically allocated address: the next search starts after it. */
  cursor: number;
}

export interface ServiceIpAllocation {
  state: ServiceIpState;
  clusterIp: string;
}

/**
 * Offsets never handed out: 0 (the network address; for IPv6 the subnet-router anycast address),
 * 1 (the first address, by convention the `kubernetes` service's ClusterIP, e.g. 10.96.0.1) and,
 * for IPv4, the broadcast address. IPv6 has no broadcast, so its last address is allocatable.
 */
export function parseServiceIpConfig(config: { serviceCidr?: string; clusterDns?: string } = {}): ServiceIpLayout {
  const cidr = parseNetwork(config.serviceCidr ?? DEFAULT_SERVICE_CIDR, 'serviceCIDR');
  const hostBits = cidr.width - cidr.prefixLen;
  if (hostBits > MAX_SERVICE_HOST_BITS) {
    throw new AllocError('config', `service CIDR ${cidr.text} is too large: the prefix must be /${cidr.width - MAX_SERVICE_HOST_BITS} or longer for IPv${cidr.family} (as kube-apiserver requires), since the allocator keeps one bit per address (a /12 is 1,048,576 bits = 128 KiB)`);
  }
  const size = 2 ** hostBits;
  const lo = 2;
  const hi = cidr.family === 4 ? size - 1 : size;
  if (hi <= lo) {
    throw new AllocError('config', `service CIDR ${cidr.text} is too small: it has no address left after the network address, the reserved first address${cidr.family === 4 ? ' and the broadcast address' : ''}`);
  }
  const layout: ServiceIpLayout = { cidr, size, lo, hi };
  if (config.clusterDns === undefined) return layout;
  const offset = offsetOf(layout, config.clusterDns);
  if (offset === undefined) throw new AllocError('config', `clusterDNS ${JSON.stringify(config.clusterDns)}: not an IPv${cidr.family} address in the service CIDR ${cidr.text}`);
  const reason = reservedReason(layout, offset);
  if (reason !== undefined) throw new AllocError('config', `clusterDNS ${config.clusterDns}: cannot be the cluster DNS address: ${reason}`);
  return { ...layout, clusterDnsOffset: offset };
}

/** kubeadm's convention: the cluster DNS Service takes the 10th address of the service CIDR (10.96.0.10 of 10.96.0.0/12). */
export const CLUSTER_DNS_OFFSET = 10;

/** The default cluster DNS address of a service CIDR, or undefined when the CIDR has no allocatable 10th address. */
export function defaultClusterDnsIp(layout: ServiceIpLayout): string | undefined {
  return CLUSTER_DNS_OFFSET < layout.hi ? addressAt(layout, CLUSTER_DNS_OFFSET) : undefined;
}

export function emptyServiceIpState(layout: ServiceIpLayout): ServiceIpState {
  // cursor lo-1: the first dynamic allocation gets the first allocatable address.
  return { version: 1, serviceCidr: layout.cidr.text, taken: encodeBitmap(emptyBitmap(layout.size)), cursor: layout.lo - 1 };
}

export function parseServiceIpState(json: unknown, layout: ServiceIpLayout): ServiceIpState {
  if (!isRecord(json) || json.version !== 1) throw new AllocError('state', 'ClusterIP state: expected an object with version 1');
  if (json.serviceCidr !== layout.cidr.text) {
    throw new AllocError('state', `ClusterIP state was made for ${String(json.serviceCidr)}, but the configured service CIDR is ${layout.cidr.text}; the service CIDR cannot change while services hold addresses from it`);
  }
  const bits = decodeBitmap(json.taken, layout.size, 'ClusterIP state');
  for (const i of [0, 1, layout.size - 1]) {
    if ((i < layout.lo || i >= layout.hi) && testBit(bits, i)) throw new AllocError('state', `ClusterIP state: reserved address ${formatBigInt(layout.cidr.family, layout.cidr.base + BigInt(i))} is marked allocated`);
  }
  const cursor = checkIndex(json.cursor, layout.size, 'ClusterIP state: cursor');
  return { version: 1, serviceCidr: layout.cidr.text, taken: json.taken as string, cursor };
}

function addressAt(layout: ServiceIpLayout, offset: number): string {
  return formatBigInt(layout.cidr.family, layout.cidr.base + BigInt(offset));
}

/** Offset of an address inside the CIDR, or undefined when it is not an address of the CIDR. */
function offsetOf(layout: ServiceIpLayout, ip: string): number | undefined {
  const value = parseAddressOf(layout.cidr.family, ip);
  if (value === undefined || value < layout.cidr.base || value >= layout.cidr.base + BigInt(layout.size)) return undefined;
  return Number(value - layout.cidr.base);
}

function reservedReason(layout: ServiceIpLayout, offset: number): string | undefined {
  if (offset === 0) return layout.cidr.family === 4 ? 'the network address' : 'the subnet-router anycast (network) address';
  if (offset === 1) return 'reserved: the first address is the `kubernetes` service by convention';
  if (offset >= layout.hi) return 'the broadcast address';
  return undefined;
}

/**
 * A requested IP is checked (an address of the CIDR's family, inside it, not reserved, free) and
 * taken; otherwise the next free address after the cursor, round robin, so a just-released IP is
 * not handed to a new service at once (clients may still cache it). Errors: 'invalid', 'taken',
 * 'exhausted'.
 */
export function allocateServiceIp(layout: ServiceIpLayout, state: ServiceIpState, requested?: string, opts: { clusterDns?: boolean } = {}): ServiceIpAllocation {
  const bits = decodeBitmap(state.taken, layout.size, 'ClusterIP state');
  if (requested !== undefined) {
    const offset = offsetOf(layout, requested);
    if (offset === undefined) {
      throw new AllocError('invalid', `clusterIP ${JSON.stringify(requested)}: not an IPv${layout.cidr.family} address in the service CIDR ${layout.cidr.text}`);
    }
    const reason = reservedReason(layout, offset);
    if (reason !== undefined) throw new AllocError('invalid', `clusterIP ${requested}: cannot be allocated: ${reason}`);
    if (offset === layout.clusterDnsOffset && !opts.clusterDns) {
      throw new AllocError('invalid', `clusterIP ${requested}: reserved for the cluster DNS Service kube-system/kube-dns (spec.clusterDNS of the cluster config); pick another address or leave clusterIP unset`);
    }
    if (testBit(bits, offset)) throw new AllocError('taken', `clusterIP ${requested}: provided IP is already allocated`);
    return { state: { ...state, taken: encodeBitmap(withBit(bits, offset, true)) }, clusterIp: addressAt(layout, offset) };
  }
  // The cluster DNS address counts as taken for the search, even while its Service does not exist.
  const searched = layout.clusterDnsOffset === undefined ? bits : withBit(bits, layout.clusterDnsOffset, true);
  const offset = findFree(searched, layout.hi, state.cursor + 1, layout.lo);
  if (offset < 0) {
    throw new AllocError('exhausted', `service CIDR ${layout.cidr.text} has no free ClusterIP (${countBits(bits)} in use)`);
  }
  return { state: { ...state, taken: encodeBitmap(withBit(bits, offset, true)), cursor: offset }, clusterIp: addressAt(layout, offset) };
}

/**
 * Frees an address. Not an address of the CIDR (e.g. a service created under an older CIDR),
 * reserved or not allocated: a no-op with released false, so deleting a service is idempotent.
 */
export function releaseServiceIp(layout: ServiceIpLayout, state: ServiceIpState, ip: string): { state: ServiceIpState; released: boolean } {
  const offset = offsetOf(layout, ip);
  if (offset === undefined || reservedReason(layout, offset) !== undefined) return { state, released: false };
  const bits = decodeBitmap(state.taken, layout.size, 'ClusterIP state');
  if (!testBit(bits, offset)) return { state, released: false };
  return { state: { ...state, taken: encodeBitmap(withBit(bits, offset, false)) }, released: true };
}

export function isServiceIpAllocated(layout: ServiceIpLayout, state: ServiceIpState, ip: string): boolean {
  const offset = offsetOf(layout, ip);
  return offset !== undefined && testBit(decodeBitmap(state.taken, layout.size, 'ClusterIP state'), offset);
}

export function serviceIpUsage(layout: ServiceIpLayout, state: ServiceIpState): { used: number; total: number } {
  return { used: countBits(decodeBitmap(state.taken, layout.size, 'ClusterIP state')), total: layout.hi - layout.lo };
}
