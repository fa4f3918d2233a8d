// explain's service hop (pure): which service port of the proxy's model a packet to dst:port/proto
// matches, and the DNAT candidates it would be translated to (the endpoints the proxy's rules use
// for that kind of traffic on this node), or why the proxy rejects it.
import type { EndpointInfo, ProxyInput, ServicePortEndpoints } from '../../proxy/types.js';

export interface ExplainHop {
  node: string;
  kind: string;
  name: string;
  detail: string;
  ok: boolean;
}

export type ServiceMatch =
  | { matched: false }
  | { matched: true; hop: Omit<ExplainHop, 'node'>; to?: { ip: string; port: number } };

const portText = (p: ServicePortEndpoints) => `${p.svc.port}/${p.svc.protocol}`;
const epText = (e: EndpointInfo) => `${e.ip}:${e.port}`;

/** The service (if any) a packet to dst[:port]/protocol hits, per the proxy's model. */
export function matchService(model: Pick<ProxyInput, 'ports'>, dst: string, port: number | undefined, protocol: string): ServiceMatch {
  const byIp = model.ports.filter((p) => p.svc.clusterIPs.includes(dst) || p.svc.externalIPs.includes(dst) || p.svc.loadBalancerIPs.includes(dst));
  if (byIp.length === 0) return { matched: false };
  const svcName = `${byIp[0]!.svc.namespace}/${byIp[0]!.svc.name}`;
  const ports = byIp.map(portText).join(', ');
  if (port === undefined) {
    return { matched: true, hop: { kind: 'service', name: svcName, detail: `${dst} is a service IP: it answers only on its service ports (${ports}); give DST:PORT`, ok: false } };
  }
  const sp = byIp.find((p) => p.svc.port === port && p.svc.protocol === protocol);
  if (!sp) {
    return { matched: true, hop: { kind: 'service', name: svcName, detail: `no service port ${port}/${protocol} on ${dst} (its ports: ${ports}): nothing is translated, the packet is not answered`, ok: false } };
  }
  const name = `${sp.svc.namespace}/${sp.svc.name}${sp.svc.portName ? `:${sp.svc.portName}` : ''}`;
  const internal = sp.svc.clusterIPs.includes(dst);
  const candidates = internal ? sp.internalEndpoints : sp.externalEndpoints;
  if (candidates.length === 0) {
    const why = sp.allEndpoints.length === 0 ? 'no usable endpoints (none ready)' : `no endpoints for this traffic (${internal ? 'internalTrafficPolicy' : 'externalTrafficPolicy'} Local and none on this node)`;
    return { matched: true, hop: { kind: 'service', name, detail: `${dst}:${port}/${protocol}: ${why}; the proxy rejects the packet`, ok: false } };
  }
  const first = candidates[0]!;
  const more = candidates.length > 1 ? `one of ${candidates.map(epText).join(', ')}; following ${epText(first)}` : epText(first);
  return { matched: true, hop: { kind: 'service', name, detail: `${dst}:${port}/${protocol} DNAT to ${more}`, ok: true }, to: { ip: first.ip, port: first.port } };
}
