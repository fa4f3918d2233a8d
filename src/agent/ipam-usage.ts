// IPAM addresses used and free on this node, for the metrics: the CNI plugin reserves pod addresses
// as one file per IP under <ipam data dir>/<network>/ (src/ipam/README.md), from the podCIDR minus
// its network address, its gateway (.1, on cni0) and, for IPv4, its broadcast address, as
// src/cni/config.ts sets the range up from subnet.env. Counted from the file names alone, without
// the IPAM lock: a reservation appears by link(2), complete, so a scrape sees it or not.
import fs from 'node:fs';
import { cidrContains, cidrSize, tryParseCidr, tryParseIp } from '../net/index.js';

/** Pure: used = reservation names inside the podCIDR; free = allocatable − used. */
export function ipamUsage(podCidr: string, names: readonly string[]): { used: number; free: number } | undefined {
  const cidr = tryParseCidr(podCidr);
  if (!cidr) return undefined;
  const reserved = cidr.addr.family === 4 ? 3n : 2n; // network, gateway (+ broadcast)
  const size = cidrSize(cidr);
  const allocatable = size > reserved ? size - reserved : 0n;
  let used = 0;
  for (const name of names) {
    const ip = tryParseIp(name);
    if (ip && cidrContains(cidr, ip)) used++;
  }
  const free = allocatable - BigInt(used);
  return { used, free: Number(free > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : free < 0n ? 0n : free) };
}

/** The network's directory read now; no directory yet is no pods yet. */
export function readIpamUsage(networkDir: string, podCidr: string): { used: number; free: number } | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(networkDir, { withFileTypes: true }).filter((e) => e.isFile() && /^[0-9A-Fa-f.:]+$/.test(e.name)).map((e) => e.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
    names = [];
  }
  return ipamUsage(podCidr, names);
}
