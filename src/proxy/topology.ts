// Which endpoints serve which traffic on this node: kube-proxy's CategorizeEndpoints
// (pkg/proxy/topology.go) without topology hints (podwire has no zones). Pure, and it keeps the
// input order (model.ts sorts endpoints by IP then port), so the results are deterministic.
import type { EndpointInfo, ServicePortInfo, ServicePortEndpoints } from './types.js';

/**
 * "Usable" endpoints of a pool: the ready ones; only when none is ready, the ones still serving
 * while terminating. The fallback lets connections drain to terminating pods during a rollout
 * instead of being rejected, yet never mixes them with ready pods (new traffic belongs there).
 */
export function usableEndpoints(pool: readonly EndpointInfo[]): EndpointInfo[] {
  // The usual case, every endpoint ready, shares the pool instead of copying it, and an empty
  // answer is one shared array: results are kept for every service port (10,000s), never mutated.
  if (pool.length === 0) return NONE;
  if (pool.every((e) => e.ready)) return pool as EndpointInfo[];
  const ready = pool.filter((e) => e.ready);
  const out = ready.length > 0 ? ready : pool.filter((e) => e.serving && e.terminating);
  return out.length ? out : NONE;
}

const NONE = Object.freeze([]) as unknown as EndpointInfo[];

/**
 * The endpoints of one service port, per kind of traffic. The cluster set and the local set each apply the ready-else-
 * serving-terminating rule on their own, as kube-proxy does: a node whose only local pod is
 * terminating keeps sending Local-policy traffic to it even while remote pods are ready.
 *
 * Two outcomes a renderer must tell apart:
 *  - allEndpoints empty: the service has no usable endpoint anywhere in the cluster. Traffic is
 *    REJECTED (ICMP port unreachable / TCP reset), so clients fail fast instead of timing out.
 *  - internalEndpoints or externalEndpoints empty while allEndpoints is not: the Local policy
 *    applies and this node has no usable local endpoint. That traffic is DROPPED, as kube-proxy
 *    does: the service does exist, and an external load balancer's health check (not a reject)
 *    is what steers clients to a node that has one.
 *
 * allEndpoints is the cluster set plus any local serving-terminating endpoint the Local sets
 * picked (kube-proxy's allReachableEndpoints). Its emptiness is exactly the cluster set's, since
 * every local usable endpoint is cluster-usable too; the union guarantees that every endpoint
 * internal or external traffic can reach is in allEndpoints, so a renderer can create endpoint
 * chains/elements from allEndpoints alone.
 */
export function servicePortEndpoints(svc: ServicePortInfo, eps: readonly EndpointInfo[]): ServicePortEndpoints {
  const cluster = usableEndpoints(eps);
  const local = usableEndpoints(eps.filter((e) => e.isLocal));
  const inCluster = new Set(cluster);
  const inLocal = new Set(local);
  // A local endpoint missing from the cluster set is the only case where they differ: filtering
  // the input (not concatenating) keeps the sorted order.
  const all = local.every((e) => inCluster.has(e)) ? cluster : eps.filter((e) => inCluster.has(e) || inLocal.has(e));
  return {
    svc,
    internalEndpoints: svc.internalPolicyLocal ? local : cluster,
    externalEndpoints: svc.externalPolicyLocal ? local : cluster,
    allEndpoints: all,
  };
}
