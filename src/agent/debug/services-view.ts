// GET /v1/debug/services' body (pure): the services this node proxies (the proxy's model, one
// entry per service with its ports), each port's endpoints as the rules use them, and each
// endpoint's DNAT counters read from the live ruleset (src/proxy/counters.ts: connections, i.e.
// first packets, and their bytes). Services without a usable endpoint are listed with none.
import { indexCounters, portCounts, type DnatCounter } from '../../proxy/counters.js';
import type { EndpointInfo, ProxyInput, ServicePortEndpoints } from '../../proxy/types.js';
import { ipv4Number } from '../../net/ip.js';

export interface ServiceEndpointView {
  ip: string;
  port: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** On this node. */
  local: boolean;
  /** Connections DNATed to it on this node (the first packet of each); null when the port's pick has no per-endpoint counter. */
  packets: number | null;
  bytes: number | null;
}

export interface ServicePortView {
  name: string;
  port: number;
  protocol: string;
  nodePort: number | null;
  endpoints: ServiceEndpointView[];
  /** Only when some of the port's connections are counted for the port as a whole (an nft numgen map pick over ≥ 8 endpoints). */
  unsplit?: { packets: number; bytes: number };
}

export interface ServiceView {
  namespace: string;
  name: string;
  type: string;
  clusterIPs: string[];
  externalIPs: string[];
  loadBalancerIPs: string[];
  ports: ServicePortView[];
}

export interface ServicesBody {
  node: string;
  mode: string;
  services: ServiceView[];
}

export interface ServicesQuery {
  namespace?: string;
  name?: string;
}

/** The model's service ports the query selects (every one without a query). */
export function selectPorts(model: Pick<ProxyInput, 'ports'>, q: ServicesQuery): ServicePortEndpoints[] {
  return model.ports.filter((p) => (q.namespace === undefined || p.svc.namespace === q.namespace) && (q.name === undefined || p.svc.name === q.name));
}

/** "ns/name" of every service in the model, sorted: what an unknown name is told about. */
export function serviceNames(model: Pick<ProxyInput, 'ports'>): string[] {
  return [...new Set(model.ports.map((p) => `${p.svc.namespace}/${p.svc.name}`))].sort();
}

const byAddress = (a: { ip: string; port: number }, b: { ip: string; port: number }) => ipv4Number(a.ip) - ipv4Number(b.ip) || a.port - b.port;

/** Every endpoint a port's rules may use (cluster-wide, and the policy-specific lists), once each. */
function portEndpoints(sp: ServicePortEndpoints): EndpointInfo[] {
  const seen = new Map<string, EndpointInfo>();
  for (const e of [...sp.allEndpoints, ...sp.internalEndpoints, ...sp.externalEndpoints]) seen.set(`${e.ip}:${e.port}`, e);
  return [...seen.values()].sort(byAddress);
}

export function servicesBody(node: string, mode: string, model: Pick<ProxyInput, 'ports' | 'nodeIPs'>, ports: readonly ServicePortEndpoints[], counters: readonly DnatCounter[]): ServicesBody {
  const services = new Map<string, ServiceView>();
  const index = indexCounters(counters);
  for (const sp of ports) {
    const s = sp.svc;
    const id = `${s.namespace}/${s.name}`;
    let view = services.get(id);
    if (!view) {
      view = { namespace: s.namespace, name: s.name, type: s.type, clusterIPs: [...s.clusterIPs], externalIPs: [...s.externalIPs], loadBalancerIPs: [...s.loadBalancerIPs], ports: [] };
      services.set(id, view);
    }
    const counts = portCounts(sp, model.nodeIPs, index);
    const port: ServicePortView = {
      name: s.portName,
      port: s.port,
      protocol: s.protocol,
      nodePort: s.nodePort ?? null,
      endpoints: portEndpoints(sp).map((e) => {
        const c = counts.byEndpoint.get(`${e.ip}:${e.port}`);
        const known = counts.perEndpoint || c !== undefined;
        return { ip: e.ip, port: e.port, ready: e.ready, serving: e.serving, terminating: e.terminating, local: e.isLocal, packets: known ? c?.packets ?? 0 : null, bytes: known ? c?.bytes ?? 0 : null };
      }),
    };
    if (!counts.perEndpoint) port.unsplit = counts.unsplit;
    view.ports.push(port);
  }
  const list = [...services.values()].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  for (const v of list) v.ports.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol) || a.name.localeCompare(b.name));
  return { node, mode, services: list };
}
