// The Endpoints of the cluster DNS Service (kube-system/kube-dns) while it has no selector: every
// node's DNS server as its agent publishes it (Node annotation podwire.io/dns-endpoint, the node's
// pod gateway), with the Service's ports. No DNS pods exist to select: the agents are the servers.
// Pure and canonical like deriveSubsets, so the controller compares before it writes.
import { ipSortKey } from '../../net/ip.js';
import { isIp } from '../../net/index.js';
import { CLUSTER_DNS_SERVICE, NODE_ANNOTATIONS, type EndpointAddress, type EndpointPort, type EndpointSubset, type Node, type Service } from '../../api/objects.js';

export const CLUSTER_DNS_SERVICE_KEY = `/services/${CLUSTER_DNS_SERVICE.namespace}/${CLUSTER_DNS_SERVICE.name}`;

/** The kube-dns Service without a selector (the control plane's own, as created at init). */
export function isNodeDnsService(key: string, service: Service): boolean {
  const selector = service.spec.selector;
  return key === CLUSTER_DNS_SERVICE_KEY && service.spec.type !== 'ExternalName' && (selector === undefined || Object.keys(selector).length === 0);
}

/** A node's published DNS endpoint, if it is a usable IP (the API validated it; a stored one from elsewhere is checked again). */
export function nodeDnsEndpoint(node: Node | undefined): string | undefined {
  const ip = node?.metadata.annotations?.[NODE_ANNOTATIONS.dnsEndpoint];
  return ip !== undefined && isIp(ip) ? ip : undefined;
}

/** One subset: the nodes' DNS addresses (ready: they publish only while serving) × the Service's ports. */
export function nodeDnsSubsets(service: Service, nodes: readonly Node[]): EndpointSubset[] {
  const byIp = new Map<string, EndpointAddress>();
  for (const n of nodes) {
    const ip = nodeDnsEndpoint(n);
    if (ip !== undefined && !byIp.has(ip)) byIp.set(ip, { ip, nodeName: n.metadata.name });
  }
  const ports: EndpointPort[] = [];
  for (const p of service.spec.ports ?? []) {
    const port = typeof p.targetPort === 'number' ? p.targetPort : p.port;
    const protocol = p.protocol ?? 'TCP';
    ports.push(p.name ? { name: p.name, port, protocol } : { port, protocol });
  }
  if (byIp.size === 0 || ports.length === 0) return [];
  const addresses = [...byIp.values()].sort((a, b) => (ipSortKey(a.ip) < ipSortKey(b.ip) ? -1 : ipSortKey(a.ip) > ipSortKey(b.ip) ? 1 : 0));
  ports.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.port - b.port || (a.protocol ?? '').localeCompare(b.protocol ?? ''));
  return [{ addresses, ports }];
}
