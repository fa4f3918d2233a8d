// The IPVS mode's desired state, from a ProxyInput (pure): the IPVS virtual services and their
// real servers, the addresses bound on the dummy device, and what podwire's nftables table must
// classify around IPVS (masquerade, reject, drop). README.md "IPVS mode" has the layout and why.
import type { L4Proto } from '../../exec/nft/objects.js';
import { ProxyRenderError, validPortViews, clusterCidrs, ipv4Only, type Endpoint, type PortView } from '../port-view.js';
import type { ProxyInput } from '../types.js';
import { ipv4Number } from '../../net/ip.js';

/** Schedulers the agent accepts (`--ipvs-scheduler`); the kernel must have the module (ip_vs_NAME). */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'sh', 'mh'] as const;
export type IpvsScheduler = (typeof IPVS_SCHEDULERS)[number];

/** The dummy device holding every ClusterIP, external IP and LB IP (kube-proxy: kube-ipvs0). */
export const IPVS_DEVICE = 'podwire-ipvs0';

/** Every real server gets this weight; 0 means "draining" (graceful removal, diff.ts). */
export const IPVS_WEIGHT = 1;

/** What happens to a new connection to one virtual address before IPVS sees it. */
export type Classification =
  /** ClusterIP: masquerade mark when the source is not a pod (or the node's own traffic). */
  | 'cluster'
  /** NodePort / external IP / LB IP under policy Cluster: always marked. */
  | 'external'
  /** External traffic under policy Local: client source kept, no mark. */
  | 'local'
  /** No usable endpoint at all: TCP reset / ICMP port unreachable. */
  | 'reject'
  /** A Local policy with no endpoint on this node (there are some elsewhere): dropped, as kube-proxy. */
  | 'drop'
  /**
   * Answered by a server on this node bound to the address itself (the node-local cluster DNS,
   * src/agent/dns): no virtual service, since IPVS at LOCAL_IN would take the packet from the
   * local socket and send it to an endpoint, maybe on another node.
   */
  | 'nodeLocal';

export interface RealServer {
  address: string;
  port: number;
  weight: number;
}

export interface VirtualServer {
  /** "tcp/10.96.0.10:53": what the diff keys by (ipvsKey). */
  key: string;
  proto: L4Proto;
  address: string;
  port: number;
  scheduler: IpvsScheduler;
  /** ClientIP affinity: IPVS persistence with this timeout (netmask /32). */
  persistenceSeconds?: number;
  /** Sorted by (address, port). Empty for 'reject' and 'drop' (the virtual service still exists, see diff.ts) and 'nodeLocal' (it does not). */
  dests: RealServer[];
  classification: Classification;
  /** The service port (ProxyInput key) this address belongs to. */
  portKey: string;
  /** ClusterIP, external (external IP or LB IP) or nodePort. */
  kind: 'clusterIP' | 'external' | 'nodePort';
}

export interface IpvsPlan {
  /** Sorted by key. */
  services: VirtualServer[];
  /** ClusterIPs, external and LB IPs to bind on IPVS_DEVICE (/32), sorted. */
  boundIps: string[];
  /** Endpoint IPs (a pod reaching itself through a service is masqueraded), sorted. */
  hairpinIps: string[];
  clusterCidrs: string[];
  nodeIps: string[];
  /** Per service port (ProxyInput key): the addresses it binds and its endpoint IPs (what a partial sync counts references with). */
  perPort: Map<string, { bound: string[]; hairpin: string[] }>;
}

export interface PlanOptions {
  scheduler?: IpvsScheduler;
  /** Virtual addresses ("udp/10.96.0.10:53") a local server answers: no virtual service (Classification 'nodeLocal'). */
  nodeLocal?: ReadonlySet<string>;
  /** A service port that renders nothing (headless, ExternalName, IPv6 only) or an address another port already holds. */
  onSkip?: (key: string, reason: string) => void;
}

export function ipvsKey(proto: L4Proto, address: string, port: number): string {
  return `${proto}/${address}:${port}`;
}

export function checkScheduler(s: string): IpvsScheduler {
  if (!(IPVS_SCHEDULERS as readonly string[]).includes(s)) {
    throw new ProxyRenderError(`ipvs: unknown scheduler ${JSON.stringify(s)}: use one of ${IPVS_SCHEDULERS.join(', ')}`);
  }
  return s as IpvsScheduler;
}

const cmpIp = (a: string, b: string) => ipv4Number(a) - ipv4Number(b);
const byAddrPort = (a: RealServer, b: RealServer) => (a.address === b.address ? a.port - b.port : cmpIp(a.address, b.address));

function classify(kind: VirtualServer['kind'], view: PortView, dests: Endpoint[]): Classification {
  if (view.all.length === 0) return 'reject';
  if (dests.length === 0) return 'drop';
  if (kind === 'clusterIP') return 'cluster';
  return view.externalLocal ? 'local' : 'external';
}

export function planIpvs(input: ProxyInput, opts: PlanOptions = {}): IpvsPlan {
  const scheduler = checkScheduler(opts.scheduler ?? 'rr');
  // Not loopback (as the nftables mode): IPVS refuses to forward what comes from 127.0.0.0/8.
  const nodeIps = ipv4Only('node IPs', input.nodeIPs).filter((ip) => !ip.startsWith('127.')).sort(cmpIp);
  const services = new Map<string, VirtualServer>();
  const bound = new Set<string>();
  const hairpin = new Set<string>();
  const perPort = new Map<string, { bound: string[]; hairpin: string[] }>();
  for (const { view } of validPortViews(input, opts.onSkip)) {
    const own = { bound: [] as string[], hairpin: [] as string[] };
    perPort.set(view.key, own);
    const add = (kind: VirtualServer['kind'], address: string, port: number, eps: Endpoint[]) => {
      const key = ipvsKey(view.proto, address, port);
      const holder = services.get(key);
      if (holder) {
        if (holder.portKey !== view.key) opts.onSkip?.(view.key, `${key} is already service port ${holder.portKey}'s: not added for this one`);
        return;
      }
      const classification = opts.nodeLocal?.has(key) ? 'nodeLocal' : classify(kind, view, eps);
      const dests = classification === 'reject' || classification === 'drop' || classification === 'nodeLocal' ? [] : eps.map((e) => ({ address: e.ip, port: e.port, weight: IPVS_WEIGHT })).sort(byAddrPort);
      services.set(key, {
        key, proto: view.proto, address, port, scheduler,
        ...(view.affinitySeconds !== undefined ? { persistenceSeconds: view.affinitySeconds } : {}),
        dests, classification, portKey: view.key, kind,
      });
    };
    for (const ip of view.clusterIps) {
      bound.add(ip);
      own.bound.push(ip);
      add('clusterIP', ip, view.port, view.internal);
    }
    for (const ip of view.externalIps) {
      // An external IP that is one of the node's own addresses is already local: not bound twice.
      if (!nodeIps.includes(ip)) {
        bound.add(ip);
        own.bound.push(ip);
      }
      add('external', ip, view.port, view.external);
    }
    if (view.nodePort !== undefined) for (const ip of nodeIps) add('nodePort', ip, view.nodePort, view.external);
    for (const e of view.all) {
      hairpin.add(e.ip);
      own.hairpin.push(e.ip);
    }
  }
  return {
    services: [...services.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    boundIps: [...bound].sort(cmpIp),
    hairpinIps: [...hairpin].sort(cmpIp),
    clusterCidrs: clusterCidrs(input.clusterCidrs),
    nodeIps,
    perPort,
  };
}
