// ProxyInput → NftIR: podwire's service proxy for nftables, modelled on kube-proxy's nftables
// mode (pkg/proxy/nftables). Pure. IPv4 only for now: IPv6 ClusterIPs, external/LB IPs,
// endpoints, node IPs and cluster CIDRs are skipped (a v6-only service renders nothing and is
// reported through opts.onSkip); an `ip6` twin of every map and rule is the missing piece.
//
// Everything lives in the shared table `inet podwire` next to the agent's `pod-masquerade`
// chain; our objects all start with svc-, ep- or aff- (OWNED_PREFIXES) and nothing here names
// pod-masquerade. Per packet, the cost never depends on the number of services: svc-services
// holds two vmap rules and every per-service chain is reached through a map; inside a service,
// the random pick is a numgen data map or, below NUMGEN_VMAP_MIN_ENDPOINTS, a short cascade.
//
// Unlike kube-proxy there is no chain per endpoint (except for ClientIP affinity, which needs a
// set per endpoint): the service chain DNATs straight to the picked endpoint, and hairpin
// traffic is found in postrouting by `ip saddr . ip daddr @svc-hairpin`. nft 1.0.6 reads every
// chain of the ruleset into its cache before each transaction that names one (~2 ms per 1,000
// chains here), so the number of chains, not of rules, is what a one-service change costs:
// 10,000 services × 5 endpoints are ~10,000 chains instead of ~60,000.
//
// Each service port renders to a PortFragment (its chains, sets and map elements) on its own;
// assemble() puts fragments together, and incremental.ts re-renders only the changed ones.
// The fixed part (names, priorities, base chains, shared picks, the node-wide maps and sets):
// layout.ts; one port's fragment: fragment.ts; validation and the IPv4 view of each service port:
// ../port-view.ts; chain names: names.ts. This file: the options, the node-wide context, assembly.
//
//   svc-nat-prerouting  nat  prerouting  -100 (dstnat)  jump svc-services
//   svc-nat-output      nat  output      -100 (dstnat)  jump svc-services
//   svc-services        ip daddr . meta l4proto . th dport vmap @svc-ips            (ClusterIP, external IP, LB IP)
//                       ip daddr @svc-nodeport-ips meta l4proto . th dport vmap @svc-nodeports
//   svc-<h>             ClusterIP traffic: mark if the source is not a pod, then dnat to a random endpoint
//                       (affinity: known clients goto their ep-<h>, else a random ep-<h>)
//   svc-<h>-ext         NodePort / external / LB traffic: the external policy, then a pick or goto svc-<h>
//   svc-<h>-all         Local policy only: cluster-wide endpoints for pod and node traffic, when they differ from svc-<h>'s
//   ep-<h>              affinity only: update @aff-<h> { ip saddr }, dnat ip to IP:PORT
//   svc-nat-postrouting nat  postrouting  100 (srcnat)  hairpin (@svc-hairpin) and what carries MASQ_MARK: masquerade
//   svc-filter-prerouting nat  prerouting  -90  connections still addressed to a service → @svc-no-endpoints, NodePorts too
//   svc-filter-output   nat  output      -90  the same for the node's own processes
//                       (type nat although named filter, the name older releases used: a nat chain runs for a
//                       connection's first packet only, so no per-packet cost; layout.ts says why)
//   svc-reject          tcp reset, else ICMP port unreachable
import type { ProxyInput } from '../types.js';
import type { MapElement } from '../../exec/nft/objects.js';
import { NameRegistry } from './names.js';
import { ipv4Number } from '../../net/ip.js';
import { ProxyRenderError, clusterCidrs, ipv4Only, validPortViews, type PortView } from '../port-view.js';
import { shellIR, type NftIR, type RenderContext } from './layout.js';
import { claimElements, claimId, renderPortFragment, type PortFragment } from './fragment.js';

export { ProxyRenderError };
export {
  CHAINS, FOREIGN_CHAIN, HAIRPIN_SET, MAPS, NFT_TABLE, NODEPORT_IPS_SET, OWNED_PREFIXES, PRIORITY, SHARED, assertOwned, isOwnedName, shellIR,
  type NftIR, type RenderContext,
} from './layout.js';
export { claimElements, claimId, elementId, renderPortFragment, type FragmentElement, type PortFragment } from './fragment.js';

export interface RenderOptions {
  /** Called for each service port that renders nothing (headless, ExternalName, IPv6-only). */
  onSkip?: (key: string, reason: string) => void;
  /** Endpoint count from which a service's own random pick is a numgen map rather than a cascade (default NUMGEN_VMAP_MIN_ENDPOINTS; 1: always a map). */
  numgenVmapMinEndpoints?: number;
  /** Services with up to this many endpoints (and no affinity) use the shared picks (default SHARED_PICK_MAX; 0: never). */
  sharedPickMax?: number;
}

/**
 * A service with its own chain (affinity, policy Local, more than SHARED_PICK_MAX endpoints)
 * picks with `numgen random mod N map {…}` (a data map of endpoints, or for affinity kube-proxy's
 * vmap of endpoint chains) only from this many endpoints on; below, a cascade of N rules `numgen
 * random mod N-i == 0 …` (one endpoint: the action alone), which uses no map. Every anonymous map
 * is a kernel set that nft lists into its cache before each transaction, and every anonymous vmap
 * is a verdict map the kernel walks whenever it validates the table (any transaction adding a
 * rule or a goto), so a transaction's cost grows with their number. Measured on kernel 6.18 / nft
 * 1.0.6 in a netns, 10,000 services with 2 endpoints: 85 s for the first full sync and 4 min 14 s
 * for the next one with vmaps, 2.9 s and 2.8 s with cascades (kube-proxy hit the same wall:
 * kubernetes#139513); 10,000 anonymous data maps of 5 took 35 s to load.
 */
export const NUMGEN_VMAP_MIN_ENDPOINTS = 8;

/**
 * Endpoint counts served by the shared picks (svc-pick-1 … svc-pick-16 and their maps). Why
 * shared: nft 1.0.6 loads every chain into its cache before each transaction, and the kernel
 * validates every rule reachable from a base chain whenever a transaction adds a rule or a goto,
 * so a one-service change costs O(chains + rules of the whole table). With a chain and a 5-rule
 * cascade per service, 10,000 services cost ~85 ms per change; on the shared path they are map
 * elements only (~10 fixed chains), and a change rewrites a few elements.
 */
export const SHARED_PICK_MAX = 16;

/** The node-wide facts of an input. */
export function renderContext(input: ProxyInput, opts: RenderOptions = {}): RenderContext {
  const vmapMin = opts.numgenVmapMinEndpoints ?? NUMGEN_VMAP_MIN_ENDPOINTS;
  if (!Number.isInteger(vmapMin) || vmapMin < 1) throw new ProxyRenderError(`proxy: numgenVmapMinEndpoints must be an integer ≥ 1, got ${vmapMin}`);
  const sharedMax = opts.sharedPickMax ?? SHARED_PICK_MAX;
  if (!Number.isInteger(sharedMax) || sharedMax < 0 || sharedMax > 256) throw new ProxyRenderError(`proxy: sharedPickMax must be an integer 0-256, got ${sharedMax}`);
  return {
    cidrs: clusterCidrs(input.clusterCidrs ?? []),
    nodeIps: ipv4Only('nodeIPs', input.nodeIPs).filter((ip) => !ip.startsWith('127.')).sort((a, b) => ipv4Number(a) - ipv4Number(b)),
    vmapMin,
    sharedMax,
  };
}

export const sameContext = (a: RenderContext, b: RenderContext): boolean => JSON.stringify(a) === JSON.stringify(b);

const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};

/** Fragments (sorted by key) put together; a map key claimed twice keeps its first owner. */
export function assemble(ctx: RenderContext, frags: readonly PortFragment[]): NftIR {
  const elements = new Map<string, MapElement[]>();
  const claimed = new Set<string>();
  const ips = new Set<string>();
  for (const f of frags) {
    for (const e of f.elements) {
      const id = claimId(e);
      if (claimed.has(id)) continue;
      claimed.add(id);
      for (const element of claimElements(e)) push(elements, e.map, element);
    }
    for (const ip of f.endpointIps) ips.add(ip);
  }
  const ir = shellIR(ctx, elements, [...ips].sort((a, b) => ipv4Number(a) - ipv4Number(b)));
  for (const f of frags) {
    ir.chains.push(...f.chains);
    ir.sets.push(...f.sets);
  }
  return ir;
}

/** Validated port views of an input, sorted by key; skipped ports reported through onSkip. */
export function portViews(input: ProxyInput, opts: RenderOptions = {}): PortView[] {
  return validPortViews(input, opts.onSkip).map((x) => x.view);
}

/**
 * NodePorts answer on the node's own IPv4 addresses (input.nodeIPs, the set svc-nodeport-ips),
 * not on every local address (`fib daddr type local`): that is kube-proxy's nftables default
 * (--nodeport-addresses=primary), it keeps NodePorts off the cni0 gateway and other addresses
 * the node happens to own, and it makes the lab's underlay IP answer without loopback. The
 * node IPs are plain set elements, so a new node IP is a one-element partial sync.
 */
export function renderProxyIR(input: ProxyInput, opts: RenderOptions = {}): NftIR {
  const ctx = renderContext(input, opts);
  const registry = new NameRegistry();
  return assemble(ctx, portViews(input, opts).map((p) => renderPortFragment(p, ctx, registry)));
}

