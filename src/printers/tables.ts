// kubectl-style tables of podwire's objects (column rules, AGE, PORT(S) and ENDPOINTS text as
// kubectl formats them): printed by `podwire get`, and served as meta.k8s.io Tables to kubectl.
// Pure functions of the objects and a "now".
import {
  NODE_ANNOTATIONS,
  type ClusterConfig,
  type EndpointSubset,
  type Endpoints,
  type KubeObject,
  type Node,
  type Pod,
  type Service,
} from '../api/objects.js';

export interface TableOptions {
  wide: boolean;
  /** Adds the NAMESPACE column (kubectl does with -A). */
  allNamespaces: boolean;
  /** Milliseconds since the epoch, for AGE. */
  now: number;
  /** For services: the Endpoints objects of the same namespaces (ENDPOINTS column). */
  endpoints?: Endpoints[];
}

export interface Table {
  headers: string[];
  rows: string[][];
}

const NONE = '<none>';

/** kubectl's HumanDuration: exact while small ("90s", "3m5s"), coarser as it grows ("4d", "2y"). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  // Up to a second in the future is clock skew between client and server, not an error.
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  const withUnit = (big: number, bigUnit: string, small: number, smallUnit: string) => (small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit}${small}${smallUnit}`);
  if (minutes < 10) return withUnit(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return withUnit(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return withUnit(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) return withUnit(years, 'y', days % 365, 'd');
  return `${years}y`;
}

export function age(obj: KubeObject, now: number): string {
  const created = obj.metadata.creationTimestamp ? Date.parse(obj.metadata.creationTimestamp) : NaN;
  return Number.isNaN(created) ? '<unknown>' : humanDuration(now - created);
}

/** Columns as kubectl's tabwriter lays them out: at least 10 wide, 3 spaces of padding, last column unpadded. */
export function formatTable(table: Table): string {
  const widths = table.headers.map((h, i) => Math.max(10, 3 + Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length))));
  return [table.headers, ...table.rows].map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('').trimEnd()).join('\n');
}

const labelsText = (labels: Record<string, string> | undefined): string =>
  labels && Object.keys(labels).length > 0 ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') : NONE;

// ---- per kind --------------------------------------------------------------------------------

export function nodeInternalIp(node: Node): string | undefined {
  return node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? node.metadata.annotations?.[NODE_ANNOTATIONS.publicIp];
}

function nodeTable(nodes: Node[], o: TableOptions): Table {
  const headers = ['NAME', 'PODCIDR', 'INTERNAL-IP', 'BACKEND', 'AGE', ...(o.wide ? ['VTEP-MAC'] : [])];
  const rows = nodes.map((n) => {
    const cidrs = n.spec?.podCIDRs?.length ? n.spec.podCIDRs.join(',') : n.spec?.podCIDR;
    const annotations = n.metadata.annotations ?? {};
    const row = [n.metadata.name, cidrs || NONE, nodeInternalIp(n) ?? NONE, annotations[NODE_ANNOTATIONS.backend] ?? NONE, age(n, o.now)];
    return o.wide ? [...row, annotations[NODE_ANNOTATIONS.vtepMac] ?? NONE] : row;
  });
  return { headers, rows };
}

/**
 * READY as kubectl's "ready/total" containers. podwire has no kubelet reporting per-container
 * status, so the pod's Ready condition stands for all of its containers.
 */
export function podReady(pod: Pod): string {
  const total = pod.spec?.containers?.length || 1;
  const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  return `${ready ? total : 0}/${total}`;
}

function podTable(pods: Pod[], o: TableOptions): Table {
  const headers = ['NAME', 'READY', 'STATUS', 'IP', 'NODE', 'AGE', ...(o.wide ? ['LABELS'] : [])];
  const rows = pods.map((p) => {
    const row = [p.metadata.name, podReady(p), p.status?.phase ?? 'Pending', p.status?.podIP || NONE, p.spec?.nodeName || NONE, age(p, o.now)];
    return o.wide ? [...row, labelsText(p.metadata.labels)] : row;
  });
  return { headers, rows };
}

/** kubectl's PORT(S): "80:30080/TCP,53/UDP". */
export function servicePorts(svc: Service): string {
  const ports = svc.spec?.ports ?? [];
  if (ports.length === 0) return NONE;
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',');
}

/** kubectl's EXTERNAL-IP rules per service type. */
export function serviceExternalIp(svc: Service): string {
  const external = svc.spec?.externalIPs ?? [];
  switch (svc.spec?.type ?? 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return external.length > 0 ? external.join(',') : NONE;
    case 'LoadBalancer': {
      const ingress = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname || '').filter(Boolean);
      const all = [...ingress, ...external];
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return svc.spec.externalName ?? NONE;
  }
}

/** Ready endpoint IPs (distinct: an address appears once per port group it serves). */
export function readyEndpointCount(ep: Endpoints | undefined): number {
  return new Set((ep?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip))).size;
}

const nsName = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function serviceTable(services: Service[], o: TableOptions): Table {
  const byName = new Map((o.endpoints ?? []).map((e) => [nsName(e), e]));
  const headers = ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'ENDPOINTS', 'AGE', ...(o.wide ? ['SELECTOR'] : [])];
  const rows = services.map((s) => {
    const clusterIp = s.spec?.clusterIPs?.length ? s.spec.clusterIPs.join(',') : s.spec?.clusterIP;
    const row = [s.metadata.name, s.spec?.type ?? 'ClusterIP', clusterIp || NONE, serviceExternalIp(s), servicePorts(s), String(readyEndpointCount(byName.get(nsName(s)))), age(s, o.now)];
    return o.wide ? [...row, labelsText(s.spec?.selector)] : row;
  });
  return { headers, rows };
}

const hostPort = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** kubectl's ENDPOINTS text: the first three "ip:port", then "+ N more...". */
export function formatEndpoints(subsets: EndpointSubset[] | undefined, max = 3): string {
  const all = (subsets ?? []).flatMap((s) => {
    const ips = (s.addresses ?? []).map((a) => a.ip);
    // Headless services may have no ports: then the addresses alone.
    return s.ports?.length ? s.ports.flatMap((p) => ips.map((ip) => hostPort(ip, p.port))) : ips;
  });
  if (all.length === 0) return NONE;
  const shown = all.slice(0, max).join(',');
  return all.length > max ? `${shown} + ${all.length - max} more...` : shown;
}

function endpointsTable(eps: Endpoints[], o: TableOptions): Table {
  return { headers: ['NAME', 'ENDPOINTS', 'AGE'], rows: eps.map((e) => [e.metadata.name, formatEndpoints(e.subsets), age(e, o.now)]) };
}

function clusterConfigTable(configs: ClusterConfig[], o: TableOptions): Table {
  const headers = ['NAME', 'CLUSTER-CIDR', 'NODE-MASK', 'SERVICE-CIDR', 'NODE-PORTS', 'BACKEND', 'AGE', ...(o.wide ? ['VNI', 'VXLAN-PORT'] : [])];
  const rows = configs.map((c) => {
    const s = c.spec;
    const row = [c.metadata.name, s.clusterCIDR, `/${s.nodeMask}`, s.serviceCIDR, s.nodePortRange, s.backend, age(c, o.now)];
    return o.wide ? [...row, String(s.vni), String(s.vxlanPort)] : row;
  });
  return { headers, rows };
}

const TABLES: Record<string, (objs: never[], o: TableOptions) => Table> = {
  Node: nodeTable,
  Pod: podTable,
  Service: serviceTable,
  Endpoints: endpointsTable,
  ClusterConfig: clusterConfigTable,
};

/** The table for objects of one kind; NAMESPACE leads when listing across namespaces. */
export function tableFor(kind: string, objects: KubeObject[], o: TableOptions): Table {
  const build = TABLES[kind];
  if (!build) throw new Error(`no table format for kind ${kind}`);
  const table = build(objects as never[], o);
  if (!o.allNamespaces || kind === 'Node' || kind === 'ClusterConfig') return table;
  return { headers: ['NAMESPACE', ...table.headers], rows: table.rows.map((r, i) => [objects[i]!.metadata.namespace ?? '', ...r]) };
}

