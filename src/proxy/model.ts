// Service + Endpoints (as the control plane stores them) → the proxy model of types.ts. Pure and
// deterministic: equal inputs in any order give identical output, so a renderer's output (and a
// golden test of it) only changes when the services or endpoints really did.
import { ipSortKey } from '../net/ip.js';
import type { EndpointAddress, EndpointPort, Endpoints, KubeObject, Service, ServicePort } from '../api/objects.js';
import { LAST_CHANGE_TRIGGER_TIME } from '../api/objects.js';
import { servicePortEndpoints } from './topology.js';
import type { EndpointInfo, Protocol, ProxyInput, ServicePortInfo, ServiceType } from './types.js';

/** Session affinity timeout when ClientIP affinity gives none (Kubernetes' default, 3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

/** The node facts the proxy needs besides services and endpoints. */
export interface ProxyNode {
  name: string;
  ips: string[];
  clusterCidrs: string[];
}

/** The API puts namespaced objects without a namespace into "default". */
export const namespaceOf = (o: KubeObject): string => o.metadata.namespace ?? 'default';

/** "ns/name": the key Services and their Endpoints share. */
export const serviceNameOf = (o: KubeObject): string => `${namespaceOf(o)}/${o.metadata.name}`;

/** "ns/name:portName/PROTOCOL"; an unnamed port gives "ns/name:/TCP". */
export function servicePortKey(namespace: string, name: string, portName: string, protocol: Protocol): string {
  return `${namespace}/${name}:${portName}/${protocol}`;
}

// ---- What the proxy keeps of an object ------------------------------------------------------

const slimMeta = (o: KubeObject): KubeObject['metadata'] => ({
  name: o.metadata.name,
  ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}),
  ...(o.metadata.resourceVersion !== undefined ? { resourceVersion: o.metadata.resourceVersion } : {}),
});

/**
 * A Service as the proxy's informer caches it: metadata cut to name, namespace and
 * resourceVersion, the selector dropped (the control plane resolves it into Endpoints). At
 * 10,000 services the cache is a large part of the agent's memory; servicePortsOf gives the
 * same answer for the view as for the object (tested).
 */
export function proxyServiceView(svc: Service): Service {
  const { selector: _selector, ...spec } = svc.spec;
  return { apiVersion: 'v1', kind: 'Service', metadata: slimMeta(svc), spec, ...(svc.status !== undefined ? { status: svc.status } : {}) };
}

const slimAddress = (a: EndpointAddress): EndpointAddress => (a.nodeName !== undefined ? { ip: a.ip, nodeName: a.nodeName } : { ip: a.ip });

/**
 * Endpoints as the proxy's informer caches them: addresses cut to ip and nodeName (no targetRef,
 * hostname), of the annotations only the last-change-trigger-time.
 */
export function proxyEndpointsView(ep: Endpoints): Endpoints {
  const subsets = ep.subsets?.map((s) => ({
    ...(s.addresses !== undefined ? { addresses: s.addresses.map(slimAddress) } : {}),
    ...(s.notReadyAddresses !== undefined ? { notReadyAddresses: s.notReadyAddresses.map(slimAddress) } : {}),
    ...(s.ports !== undefined ? { ports: s.ports } : {}),
  }));
  // The trigger time stays: the agent measures network programming latency from it.
  const trigger = ep.metadata.annotations?.[LAST_CHANGE_TRIGGER_TIME];
  const metadata = trigger !== undefined ? { ...slimMeta(ep), annotations: { [LAST_CHANGE_TRIGGER_TIME]: trigger } } : slimMeta(ep);
  return { apiVersion: 'v1', kind: 'Endpoints', metadata, ...(subsets !== undefined ? { subsets } : {}) };
}

// ---- Services --------------------------------------------------------------------------------

/**
 * The ClusterIPs a proxy programs. clusterIPs wins over clusterIP (dual-stack writes both, the
 * first equal to clusterIP); '' (not yet allocated) and 'None' (headless) are not addresses.
 */
function clusterIpsOf(svc: Service): string[] {
  const listed = svc.spec.clusterIPs && svc.spec.clusterIPs.length > 0 ? svc.spec.clusterIPs : [svc.spec.clusterIP ?? ''];
  return listed.filter((ip) => ip !== '' && ip !== 'None');
}

/**
 * LB addresses only for type LoadBalancer: a stale status left on a service whose type changed
 * must not keep attracting traffic. Without a cloud controller nothing fills status, so the
 * requested spec.loadBalancerIP stands in (as MetalLB-less labs expect).
 */
function loadBalancerIpsOf(svc: Service, type: ServiceType): string[] {
  if (type !== 'LoadBalancer') return [];
  const ingress = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter((ip) => ip !== '');
  if (ingress.length > 0) return ingress;
  return svc.spec.loadBalancerIP ? [svc.spec.loadBalancerIP] : [];
}

/** kube-proxy's ExternallyAccessible: only then does externalTrafficPolicy mean anything. */
function externallyAccessible(type: ServiceType, externalIPs: readonly string[]): boolean {
  return type === 'NodePort' || type === 'LoadBalancer' || externalIPs.length > 0;
}

function portInfo(svc: Service, sp: ServicePort, type: ServiceType, clusterIPs: string[]): ServicePortInfo {
  const namespace = namespaceOf(svc);
  const { name } = svc.metadata;
  const portName = sp.name ?? '';
  const protocol: Protocol = sp.protocol ?? 'TCP';
  const externalIPs = [...(svc.spec.externalIPs ?? [])];
  // A ClusterIP service keeps no NodePort even if an old one lingers in the spec.
  const nodePort = (type === 'NodePort' || type === 'LoadBalancer') && sp.nodePort ? sp.nodePort : undefined;
  const timeoutSeconds = svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS;
  // Fixed key order and absent (not undefined) optionals: the JSON of a service port's endpoints is canonical.
  return {
    key: servicePortKey(namespace, name, portName, protocol),
    namespace,
    name,
    portName,
    protocol,
    type,
    clusterIPs: [...clusterIPs],
    port: sp.port,
    ...(nodePort !== undefined ? { nodePort } : {}),
    externalIPs,
    loadBalancerIPs: loadBalancerIpsOf(svc, type),
    ...(svc.spec.sessionAffinity === 'ClientIP' ? { sessionAffinity: { timeoutSeconds } } : {}),
    externalPolicyLocal: svc.spec.externalTrafficPolicy === 'Local' && externallyAccessible(type, externalIPs),
    internalPolicyLocal: svc.spec.internalTrafficPolicy === 'Local',
  };
}

/**
 * One ServicePortInfo per spec.ports entry, in spec order. ExternalName, headless (clusterIP None)
 * and not-yet-allocated services give NONE, as kube-proxy's ShouldSkipService skips them: they
 * have no virtual IP, so there is nothing to program, and leaving them out means their keys never
 * appear in a ProxyInput or a change set (renderers need no "skip empty clusterIPs" case).
 * A repeated (name, protocol) pair, which validation rejects anyway, keeps its first entry.
 */
export function servicePortsOf(svc: Service): ServicePortInfo[] {
  const type: ServiceType = svc.spec.type ?? 'ClusterIP';
  const clusterIPs = clusterIpsOf(svc);
  if (type === 'ExternalName' || clusterIPs.length === 0) return [];
  const seen = new Set<string>();
  const out: ServicePortInfo[] = [];
  for (const sp of svc.spec.ports ?? []) {
    const info = portInfo(svc, sp, type, clusterIPs);
    if (seen.has(info.key)) continue;
    seen.add(info.key);
    out.push(info);
  }
  return out;
}

// ---- Endpoints -------------------------------------------------------------------------------

const endpointSortKey = (e: EndpointInfo): string => `${ipSortKey(e.ip)}\u0000${String(e.port).padStart(5, '0')}`;

function portMatches(p: EndpointPort, port: ServicePortInfo): boolean {
  return (p.name ?? '') === port.portName && (p.protocol ?? 'TCP') === port.protocol;
}

// Fixed key order, so the JSON of a ServicePortEndpoints is canonical (the change tracker compares them that way).
// Endpoints (unlike EndpointSlices) cannot say "terminating": a not-ready address is simply not
// serving; the fields stay for EndpointSlices.
function endpointInfo(a: EndpointAddress, port: number, ready: boolean, nodeName: string): EndpointInfo {
  return {
    ip: a.ip,
    port,
    ...(a.nodeName !== undefined ? { nodeName: a.nodeName } : {}),
    isLocal: nodeName !== '' && a.nodeName === nodeName,
    ready,
    serving: ready,
    terminating: false,
  };
}

/**
 * The endpoints of one service port: Endpoints ports matched by name AND protocol (the service
 * port name is what the endpoints controller writes). One entry per ip:port; when an address is
 * listed both ready and not ready (two subsets), ready wins, as RepackSubsets would have it.
 * Sorted by IP then port so every consumer sees one order.
 */
export function endpointsFor(port: ServicePortInfo, ep: Endpoints | undefined, nodeName: string): EndpointInfo[] {
  const byAddr = new Map<string, EndpointInfo>();
  for (const subset of ep?.subsets ?? []) {
    for (const p of subset.ports ?? []) {
      if (!portMatches(p, port)) continue;
      const add = (a: EndpointAddress, ready: boolean): void => {
        const info = endpointInfo(a, p.port, ready, nodeName);
        const key = endpointSortKey(info);
        const seen = byAddr.get(key);
        if (!seen || (ready && !seen.ready)) byAddr.set(key, info);
      };
      for (const a of subset.addresses ?? []) add(a, true);
      for (const a of subset.notReadyAddresses ?? []) add(a, false);
    }
  }
  return [...byAddr.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

// ---- Whole input -----------------------------------------------------------------------------

const byServicePortKey = (a: { svc: ServicePortInfo }, b: { svc: ServicePortInfo }): number =>
  a.svc.key < b.svc.key ? -1 : a.svc.key > b.svc.key ? 1 : 0;

/** Everything a renderer needs for this node, ports sorted by key. */
export function buildProxyInput(services: readonly Service[], endpoints: readonly Endpoints[], node: ProxyNode): ProxyInput {
  const endpointsByService = new Map<string, Endpoints>();
  for (const ep of endpoints) endpointsByService.set(serviceNameOf(ep), ep);
  const ports = services.flatMap((svc) => {
    const ep = endpointsByService.get(serviceNameOf(svc));
    return servicePortsOf(svc).map((port) => servicePortEndpoints(port, endpointsFor(port, ep, node.name)));
  });
  return { nodeName: node.name, nodeIPs: [...node.ips], clusterCidrs: [...node.clusterCidrs], ports: ports.sort(byServicePortKey) };
}
