// explain's service hop (pure): which service port of the proxy's model a packet matches — by
// ClusterIP / external IP / LB IP and port, or by NodePort on one of this node's addresses — the
// DNAT candidates it would be translated to (the endpoints the proxy's rules use for that kind of
// traffic and that source on this node), whether the proxy's rules mark it for masquerading, or
// why the proxy rejects or drops it. Mirrors the nftables fragments (src/proxy/nft/fragment.ts):
// a service without usable endpoints is rejected; Local policy without a local endpoint (or a
// ClusterIP under internalTrafficPolicy Local) is not translated and the filter chains drop it.
import { textCidrContains } from '../../net/cidr.js';
import type { EndpointInfo, ProxyInput, ServicePortEndpoints } from '../../proxy/types.js';

export interface ExplainHop {
  node: string;
  kind: string;
  name: string;
  detail: string;
  ok: boolean;
}

export type ServiceHop = Omit<ExplainHop, 'node'>;

export interface ServicePacket {
  src: string;
  dst: string;
  port?: number;
  protocol: string;
  /** The node's own packet (nat output): under policy Local it goes cluster-wide, masqueraded. */
  fromThisNode: boolean;
}

export type ServiceMatch =
  | { matched: false }
  /** hops: the match (and, when the filter drops it, a broken filter hop); mark: why the proxy marks it for masquerade. */
  | { matched: true; hops: ServiceHop[]; to?: { ip: string; port: number }; mark?: string };

type Model = Pick<ProxyInput, 'ports'> & Partial<Pick<ProxyInput, 'nodeIPs' | 'clusterCidrs'>>;

const portText = (p: ServicePortEndpoints) => `${p.svc.port}/${p.svc.protocol}`;
const epText = (e: EndpointInfo) => `${e.ip}:${e.port}`;
const portName = (sp: ServicePortEndpoints) => `${sp.svc.namespace}/${sp.svc.name}${sp.svc.portName ? `:${sp.svc.portName}` : ''}`;

/** The DNAT hop to the first of `candidates` (what explain follows), with what the packet was. */
function dnat(kind: string, name: string, what: string, candidates: readonly EndpointInfo[], note: string, mark?: string): ServiceMatch {
  const first = candidates[0]!;
  const more = candidates.length > 1 ? `one of ${candidates.map(epText).join(', ')}; following ${epText(first)}` : epText(first);
  return { matched: true, hops: [{ kind, name, detail: `${what}${note} DNAT to ${more}`, ok: true }], to: { ip: first.ip, port: first.port }, ...(mark ? { mark } : {}) };
}

function rejected(kind: string, name: string, what: string): ServiceMatch {
  return { matched: true, hops: [{ kind, name, detail: `${what}: no usable endpoints (none ready); the proxy rejects the packet`, ok: false }] };
}

/** Not translated, then dropped by the proxy's filter chains (the service exists; this node has no endpoint for this traffic). */
function droppedLocal(kind: string, name: string, what: string, policy: string, all: number): ServiceMatch {
  return {
    matched: true,
    hops: [
      { kind, name, detail: `${what}, ${policy} Local: no endpoint on this node (${all} elsewhere in the cluster): not translated`, ok: true },
      { kind: 'filter', name, detail: `dropped by the proxy's filter rules: ${policy} Local and no local endpoint (a client must use a node that has one)`, ok: false },
    ],
  };
}

const inAny = (cidrs: readonly string[] | undefined, ip: string) => (cidrs ?? []).some((c) => textCidrContains(c, ip));

/** NodePort, external IP or LB IP traffic (the "external" endpoints and policy). */
function external(sp: ServicePortEndpoints, kind: string, what: string, pkt: ServicePacket, model: Model): ServiceMatch {
  const name = portName(sp);
  if (sp.allEndpoints.length === 0) return rejected(kind, name, what);
  if (!sp.svc.externalPolicyLocal) {
    return dnat(kind, name, what, sp.externalEndpoints, ', externalTrafficPolicy Cluster:', `externalTrafficPolicy Cluster: the proxy masquerades ${kind === 'nodeport' ? 'NodePort' : 'external'} traffic so the replies come back through this node`);
  }
  // Policy Local: pods and the node itself are not external clients; they go cluster-wide.
  if (inAny(model.clusterCidrs, pkt.src)) return dnat(kind, name, what, sp.allEndpoints, ', externalTrafficPolicy Local but the source is a pod (cluster-wide, client IP kept):');
  if (pkt.fromThisNode) return dnat(kind, name, what, sp.allEndpoints, ', externalTrafficPolicy Local but the source is this node (cluster-wide):', 'the node\'s own traffic to a Local service is masqueraded');
  if (sp.externalEndpoints.length === 0) return droppedLocal(kind, name, what, 'externalTrafficPolicy', sp.allEndpoints.length);
  return dnat(kind, name, what, sp.externalEndpoints, ', externalTrafficPolicy Local: this node\'s endpoints only, client IP kept:');
}

function byServiceIp(model: Model, byIp: ServicePortEndpoints[], pkt: ServicePacket): ServiceMatch {
  const { dst, port, protocol } = pkt;
  const svcName = `${byIp[0]!.svc.namespace}/${byIp[0]!.svc.name}`;
  const ports = byIp.map(portText).join(', ');
  if (port === undefined) {
    return { matched: true, hops: [{ kind: 'service', name: svcName, detail: `${dst} is a service IP: it answers only on its service ports (${ports}); give DST:PORT`, ok: false }] };
  }
  const sp = byIp.find((p) => p.svc.port === port && p.svc.protocol === protocol);
  if (!sp) {
    return { matched: true, hops: [{ kind: 'service', name: svcName, detail: `no service port ${port}/${protocol} on ${dst} (its ports: ${ports}): nothing is translated, the packet is not answered`, ok: false }] };
  }
  const what = `${dst}:${port}/${protocol}`;
  if (!sp.svc.clusterIPs.includes(dst)) return external(sp, 'service', what, pkt, model);
  const name = portName(sp);
  if (sp.allEndpoints.length === 0) return rejected('service', name, what);
  if (sp.internalEndpoints.length === 0) return droppedLocal('service', name, what, 'internalTrafficPolicy', sp.allEndpoints.length);
  // No cluster CIDR known: the proxy marks everything (fragment.ts fromOutsideMark).
  const mark = model.clusterCidrs?.length && inAny(model.clusterCidrs, pkt.src) ? undefined : 'ClusterIP traffic from outside the pod network is masqueraded';
  return dnat('service', name, what, sp.internalEndpoints, '', mark);
}

/** The service (if any) a packet matches, per the proxy's model. */
export function matchService(model: Model, pkt: ServicePacket): ServiceMatch {
  const { dst, port, protocol } = pkt;
  const byIp = model.ports.filter((p) => p.svc.clusterIPs.includes(dst) || p.svc.externalIPs.includes(dst) || p.svc.loadBalancerIPs.includes(dst));
  if (byIp.length > 0) return byServiceIp(model, byIp, pkt);
  // NodePorts answer on this node's addresses only (@svc-nodeport-ips): another node's address is routed there.
  if (port === undefined || !(model.nodeIPs ?? []).includes(dst)) return { matched: false };
  const sp = model.ports.find((p) => p.svc.nodePort === port && p.svc.protocol === protocol);
  if (!sp) return { matched: false };
  return external(sp, 'nodeport', `NodePort ${port}/${protocol} on ${dst}`, pkt, model);
}
