// What the service proxy end-to-end suite (proxy-e2e-suite.ts) needs from a proxy mode: a "rules
// oracle" that reads the kernel's rules of that mode in a node netns (never the agent's own code)
// and answers the suite's questions about them, plus the few checks that exist in one mode only.
// Implementations: proxy-e2e-nft-oracle.ts (nftables), proxy-e2e-iptables-oracle.ts (iptables),
// proxy-e2e-ipvs-oracle.ts (ipvs, run in the kernel VM). What the other modes leave behind is
// mode-neutral: proxy-e2e-modes.ts.
import type { Test } from 'tap';
import { waitFor, type ClusterNode, type ClusterPod, type LabCluster } from '../../src/lab/cluster.js';
import type { Service } from '../../src/api/objects.js';
import type { ProxyMode } from '../../src/proxy/backend.js';

export type { ProxyMode };

/** The cluster as the suite set it up: node1..3, their echo pods and the client pod on node1. */
export interface E2EContext {
  c: LabCluster;
  nodes: [ClusterNode, ClusterNode, ClusterNode];
  pods: [ClusterPod, ClusterPod, ClusterPod];
  client: ClusterPod;
}

/** What one service has on a node: chains (and sets) of its own, and rules or map elements naming it. */
export interface ServiceObjects {
  chains: string[];
  rules: string[];
}

/** V: one node's rules as the oracle reads them (a parsed `nft -j list` or `iptables-save`). */
export interface ProxyOracle<V> {
  view(netns: string): V;
  /** No service at all: the mode's fixed chains (and empty maps) only. */
  idle(v: V): boolean;
  /** Every named object (chain, set) of the proxy on the node: what the suite lists and looks for. */
  names(v: V): string[];

  /** DNAT destinations ("ip:port", sorted) of a ClusterIP / LB IP / external IP; undefined without a rule. */
  serviceIpTargets(v: V, ip: string, proto: string, port: number): string[] | undefined;
  /** DNAT destinations of a NodePort; undefined without a rule. */
  nodePortTargets(v: V, proto: string, nodePort: number): string[] | undefined;
  /** The chain traffic to a service address / NodePort goes to first, and what an external-traffic chain is called. */
  serviceIpChain(v: V, ip: string, proto: string, port: number): string | undefined;
  nodePortChain(v: V, proto: string, nodePort: number): string | undefined;
  readonly externalChain: RegExp;

  /** Check 1's second opinion: the random pick of node1's rules for ip:80 over these endpoints. */
  checkSpreadRules(t: Test, v: V, ip: string, endpoints: readonly string[]): void;

  affinity: {
    /** What records a client's endpoint: "affinity sets", "xt_recent lists". */
    readonly store: string;
    /** The ClusterIP's rules DNAT to these endpoints and record clients. */
    ready(v: V, ip: string, endpoints: readonly string[]): boolean;
    /** The one endpoint ("ip:port") the node's records pin clientIp to for ip:80 (else a description). */
    endpoint(netns: string, ip: string, clientIp: string): string;
    /** The names of the records that exist on the node (sets, xt_recent lists). */
    stores(netns: string): string[];
  };

  /** externalTrafficPolicy on a NodePort as this node's rules say; `local`: the endpoint's node and endpoints. */
  localPolicy(v: V, node: ClusterNode, nodePort: number, local: { node: string; endpoints: readonly string[] }): boolean;
  /**
   * A node's own connection to its Local-policy NodePort without a local endpoint: 'cluster'
   * (nftables, iptables: node traffic goes cluster-wide, as kube-proxy's) or a known gap of the
   * mode with its reason (ipvs: one virtual service per address cannot pick by source).
   */
  readonly localNodePortFromNode: 'cluster' | { gap: string };
  clusterPolicy(v: V, nodePort: number, endpoints: readonly string[]): boolean;

  noEndpoints: {
    /** Check 5's title. */
    readonly title: string;
    /** What the wait looks for: "reject elements", "REJECT rules". */
    readonly rules: string;
    ready(v: V, ip: string, nodePort: number): boolean;
    /** The client pod → ClusterIP:80 while node1 has no route covering it: what this mode does then. */
    unrouted(t: Test, x: E2EContext, ip: string): Promise<void>;
    /** Packets node1's reject for ip:80 has counted so far, where the mode counts them. */
    rejected?(netns: string, ip: string): number;
  };

  /** Check 6's second opinion: node1's rules masquerade the pod reaching itself through svc. */
  checkHairpinRules(t: Test, v: V, svc: Service, pod: ClusterPod): void;

  /** Check 8: what one service has on a node. */
  serviceObjects(v: V, svc: Service): ServiceObjects;
  /** Every service with endpoints has chains of its own (iptables); false where small services only add map elements to shared chains (nftables). */
  readonly chainPerService: boolean;
  /** Rules and map elements that name one of these chains or sets. */
  referencesTo(v: V, names: readonly string[]): string[];

  resync: {
    /** Check 9's title: how the rules are broken. */
    readonly breakage: string;
    /** The hook chain that jumps to the services dispatch, and that chain. */
    readonly entry: string;
    readonly services: string;
    jumps(netns: string): boolean;
    /** Removes the jump as another tool would (nftables: deletes the hook chain). */
    flush(netns: string): void;
  };
}

/** Waits until `ok` holds for the proxy rules in every node's netns (polling the kernel); returns the time it took. */
export async function waitRules<V>(c: LabCluster, o: ProxyOracle<V>, what: string, ok: (v: V, node: ClusterNode) => boolean, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  await waitFor(what, () => c.nodes.every((n) => ok(o.view(n.netns), n)), timeoutMs);
  return Date.now() - t0;
}
