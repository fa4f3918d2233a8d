// The validated IPv4 view of a ProxyInput that render.ts works from. Pure.
//
// Everything that ends up in an nft script goes through here first: addresses are checked with
// src/net's strict parser (so nothing but an address can be spliced into a rule), ports are 1-65535, protocols
// TCP/UDP/SCTP. IPv6 addresses are dropped, not rejected: a dual-stack service renders its IPv4
// half. Endpoints are deduplicated and sorted so the rendering does not depend on input order.
import { formatCidr, networkOf, parseCidr } from '../net/cidr.js';
import { ipv4Number, isIp } from '../net/ip.js';
import type { EndpointInfo, ProxyInput, ServicePortInfo, ServicePortEndpoints } from './types.js';
import type { L4Proto } from '../exec/nft/objects.js';

export class ProxyRenderError extends Error {
  readonly code = 'EINVAL';
  constructor(message: string) {
    super(message);
    this.name = 'ProxyRenderError';
  }
}

export interface Endpoint {
  ip: string;
  port: number;
}

/** A validated IPv4 view of one ServicePortEndpoints. */
export interface PortView {
  key: string;
  proto: L4Proto;
  clusterIps: string[];
  port: number;
  nodePort?: number;
  /** External IPs then LB IPs, deduplicated. */
  externalIps: string[];
  affinitySeconds?: number;
  externalLocal: boolean;
  internal: Endpoint[];
  external: Endpoint[];
  all: Endpoint[];
}

export function checkPort(what: string, n: unknown): number {
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 65535) throw new ProxyRenderError(`proxy: ${what} must be 1-65535, got ${JSON.stringify(n)}`);
  return n as number;
}

/** IPv4 addresses of a list, validated; IPv6 ones dropped (not rendered yet). */
export function ipv4Only(what: string, ips: readonly string[]): string[] {
  const out: string[] = [];
  for (const ip of ips) {
    if (ipv4Number(ip) >= 0) {
      if (!out.includes(ip)) out.push(ip);
    } else if (!isIp(ip, 6)) {
      throw new ProxyRenderError(`proxy: ${what}: invalid IP address ${JSON.stringify(ip)}`);
    }
  }
  return out;
}

function endpoints(what: string, list: readonly EndpointInfo[]): Endpoint[] {
  // Sorted by (IP, port) through one number per endpoint (computed once, not per comparison),
  // so the numgen arms do not move when the input order does; a duplicate ip:port counts once.
  const keyed: [number, Endpoint][] = [];
  for (const e of list) {
    const port = checkPort(`${what} endpoint port`, e.port);
    // ipv4Number validates and keys in one pass (it is src/net's fast path for exactly this).
    const n = ipv4Number(e.ip);
    if (n >= 0) keyed.push([n * 65536 + port, { ip: e.ip, port }]);
    else if (!isIp(e.ip, 6)) throw new ProxyRenderError(`proxy: ${what} endpoint: invalid IP address ${JSON.stringify(e.ip)}`);
  }
  keyed.sort((a, b) => a[0] - b[0]);
  const out: Endpoint[] = [];
  for (let i = 0; i < keyed.length; i++) if (i === 0 || keyed[i][0] !== keyed[i - 1][0]) out.push(keyed[i][1]);
  return out;
}

export function portView(p: ServicePortEndpoints): PortView | string {
  const s = p.svc;
  if (s.type === 'ExternalName') return 'ExternalName service';
  const proto = String(s.protocol).toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw new ProxyRenderError(`proxy: ${s.key}: unknown protocol ${JSON.stringify(s.protocol)}`);
  const clusterIps = ipv4Only(`${s.key} clusterIPs`, s.clusterIPs);
  if (clusterIps.length === 0) return s.clusterIPs.length ? 'no IPv4 ClusterIP (IPv6 is not rendered yet)' : 'headless';
  const timeout = s.sessionAffinity?.timeoutSeconds;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400)) {
    throw new ProxyRenderError(`proxy: ${s.key}: session affinity timeout must be 1-86400 seconds, got ${timeout}`);
  }
  return {
    key: s.key, proto, clusterIps, port: checkPort(`${s.key} port`, s.port),
    nodePort: s.nodePort === undefined || s.nodePort === 0 ? undefined : checkPort(`${s.key} nodePort`, s.nodePort),
    externalIps: ipv4Only(`${s.key} external IPs`, [...s.externalIPs, ...s.loadBalancerIPs]),
    affinitySeconds: timeout, externalLocal: s.externalPolicyLocal,
    internal: endpoints(s.key, p.internalEndpoints), external: endpoints(s.key, p.externalEndpoints), all: endpoints(s.key, p.allEndpoints),
  };
}

export function clusterCidrs(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const text of list) {
    let network;
    try {
      network = networkOf(parseCidr(text));
    } catch (err) {
      throw new ProxyRenderError(`proxy: cluster CIDR: ${(err as Error).message}`);
    }
    const cidr = formatCidr(network);
    if (network.addr.family === 4 && !out.includes(cidr)) out.push(cidr);
  }
  return out.sort();
}


/**
 * The validated port views of an input with the port each came from, sorted by key; a duplicate key is
 * an error, a port that renders nothing (headless, ExternalName, IPv6-only) goes to onSkip.
 */
export function validPortViews(input: ProxyInput, onSkip?: (key: string, reason: string) => void): { view: PortView; info: ServicePortInfo }[] {
  const out: { view: PortView; info: ServicePortInfo }[] = [];
  const seen = new Set<string>();
  for (const p of input.ports) {
    if (seen.has(p.svc.key)) throw new ProxyRenderError(`proxy: duplicate service port ${JSON.stringify(p.svc.key)}`);
    seen.add(p.svc.key);
    const view = portView(p);
    if (typeof view === 'string') onSkip?.(p.svc.key, view);
    else out.push({ view, info: p.svc });
  }
  return out.sort((a, b) => (a.view.key < b.view.key ? -1 : a.view.key > b.view.key ? 1 : 0));
}
