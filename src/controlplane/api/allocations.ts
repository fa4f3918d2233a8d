// Allocation inside store transactions: podCIDRs for Nodes, ClusterIPs and NodePorts for Services.
// Each allocator's state is one store object (/alloc/…) read and written in the same txn as the
// object that uses it, so an allocation and its owner commit together or not at all, and two
// concurrent requests can never be handed the same value (the txn retries on conflict).
import { AllocError } from '../alloc/bitmap.js';
import { allocatePodCidr, emptyPodCidrState, parsePodCidrConfig, parsePodCidrState, releasePodCidr, type PodCidrLayout } from '../alloc/cidr.js';
import { allocateServiceIp, emptyServiceIpState, isServiceIpAllocated, parseServiceIpConfig, parseServiceIpState, releaseServiceIp, type ServiceIpLayout } from '../alloc/service-ip.js';
import {
  allocateServiceNodePorts,
  emptyNodePortState,
  parseNodePortConfig,
  parseNodePortState,
  releaseServiceNodePorts,
  type NodePortLayout,
} from '../alloc/node-port.js';
import { CLUSTER_DNS_SERVICE, type ClusterConfig, type ClusterConfigSpec, type Node, type Service } from '../../api/objects.js';
import { clusterConfigSpecWithDefaults } from '../validate-objects.js';
import type { Txn } from '../store/types.js';
import { ApiError, invalidError } from './status.js';

export const CONFIG_KEY = '/config/cluster';
export const POD_CIDR_KEY = '/alloc/podcidrs';
export const SERVICE_IP_KEY = '/alloc/serviceips';
export const NODE_PORT_KEY = '/alloc/nodeports';

type TxnReader = Pick<Txn, 'get'>;

export async function readClusterConfig(tx: TxnReader): Promise<ClusterConfigSpec> {
  const stored = await tx.get<ClusterConfig>(CONFIG_KEY);
  // Fields an older release did not store get their defaults (clusterDNS from the stored serviceCIDR).
  return clusterConfigSpecWithDefaults(stored?.value.spec);
}

/** An allocator failure as the API reports it: the user's mistake (400) or the cluster's state. */
function apiErrorOf(e: unknown, kind: string, name: string, field: string): never {
  if (!(e instanceof AllocError)) throw e;
  if (e.code === 'invalid' || e.code === 'taken') throw invalidError(kind, { kind: kind.toLowerCase() + 's', name }, [{ field, message: `Invalid value: ${e.message}` }]);
  if (e.code === 'exhausted') throw new ApiError('ServiceUnavailable', `${kind} ${JSON.stringify(name)}: ${e.message}`, { kind: kind.toLowerCase() + 's', name });
  throw new ApiError('InternalError', `${kind} ${JSON.stringify(name)}: allocator state or configuration is broken: ${e.message}; check the cluster config (GET /api/v1/clusterconfig)`, { name });
}

interface Layouts {
  podCidr: PodCidrLayout;
  serviceIp: ServiceIpLayout;
  nodePort: NodePortLayout;
}

export function layoutsOf(spec: ClusterConfigSpec): Layouts {
  return {
    podCidr: parsePodCidrConfig({ clusterCidr: spec.clusterCIDR, nodeMask: spec.nodeMask }),
    serviceIp: parseServiceIpConfig({ serviceCidr: spec.serviceCIDR, clusterDns: spec.clusterDNS }),
    nodePort: parseNodePortConfig({ nodePortRange: spec.nodePortRange }),
  };
}

async function layouts(tx: TxnReader): Promise<Layouts> {
  try {
    return layoutsOf(await readClusterConfig(tx));
  } catch (e) {
    return apiErrorOf(e, 'ClusterConfig', 'cluster', 'spec');
  }
}

// ---- Nodes -----------------------------------------------------------------------------------

/** The node with its podCIDR: the one it holds (re-registration), the one it asked for, or a free one. */
export async function assignPodCidr(tx: Txn, node: Node, old?: Node): Promise<Node> {
  const { podCidr: layout } = await layouts(tx);
  const stored = await tx.get(POD_CIDR_KEY);
  const name = node.metadata.name;
  const wanted = node.spec.podCIDR || undefined;
  if (old?.spec.podCIDR && wanted && wanted !== old.spec.podCIDR) {
    throw invalidError('Node', { kind: 'nodes', name }, [{ field: 'spec.podCIDR', message: `Forbidden: node updates may not change podCIDR (${old.spec.podCIDR}) except from "" to a valid value` }]);
  }
  try {
    const state = stored ? parsePodCidrState(stored.value, layout) : emptyPodCidrState(layout);
    const a = allocatePodCidr(layout, state, { nodeName: name, podCidr: wanted });
    if (!a.reused) tx.put(POD_CIDR_KEY, a.state);
    return { ...node, spec: { ...node.spec, podCIDR: a.podCidr, podCIDRs: [a.podCidr] } };
  } catch (e) {
    return apiErrorOf(e, 'Node', name, 'spec.podCIDR');
  }
}

export async function releaseNodeCidr(tx: Txn, node: Node): Promise<void> {
  const { podCidr: layout } = await layouts(tx);
  const stored = await tx.get(POD_CIDR_KEY);
  if (!stored) return;
  try {
    const r = releasePodCidr(layout, parsePodCidrState(stored.value, layout), node.metadata.name);
    if (r.podCidr !== undefined) tx.put(POD_CIDR_KEY, r.state);
  } catch (e) {
    apiErrorOf(e, 'Node', node.metadata.name, 'spec.podCIDR');
  }
}

// ---- Services --------------------------------------------------------------------------------

export const isClusterDnsService = (s: Service): boolean => s.metadata.namespace === CLUSTER_DNS_SERVICE.namespace && s.metadata.name === CLUSTER_DNS_SERVICE.name;
import { CLUSTER_DNS_SERVICE_KEY } from '../endpoints/node-dns.js';
export { CLUSTER_DNS_SERVICE_KEY };
const hasClusterIp = (s: Service): boolean => s.spec.type !== 'ExternalName' && s.spec.clusterIP !== 'None';
const hasNodePorts = (s: Service): boolean => s.spec.type === 'NodePort' || s.spec.type === 'LoadBalancer';
const nodePortsOf = (s: Service | undefined): number[] => (s && hasNodePorts(s) ? (s.spec.ports ?? []).map((p) => p.nodePort ?? 0).filter((n) => n > 0) : []);

/**
 * The service with its ClusterIP and NodePorts, allocating what is new and releasing what the
 * update dropped. The ClusterIP is immutable once set (as in Kubernetes); a port that keeps its
 * (port, protocol) keeps its nodePort when the update leaves nodePort unset.
 */
export async function assignServiceAddresses(tx: Txn, svc: Service, old?: Service): Promise<Service> {
  const l = await layouts(tx);
  const name = svc.metadata.name;
  const spec = { ...svc.spec };
  await assignClusterIp(tx, l.serviceIp, spec, name, old, isClusterDnsService(svc));
  if (hasNodePorts(svc) || nodePortsOf(old).length > 0) {
    const ports = (spec.ports ?? []).map((p) => {
      const previous = old?.spec.ports?.find((o) => o.port === p.port && (o.protocol ?? 'TCP') === (p.protocol ?? 'TCP'));
      return { ...p, nodePort: p.nodePort || (hasNodePorts(svc) && previous && old && hasNodePorts(old) ? previous.nodePort : undefined) };
    });
    const stored = await tx.get(NODE_PORT_KEY);
    try {
      let state = stored ? parseNodePortState(stored.value, l.nodePort) : emptyNodePortState(l.nodePort);
      state = releaseServiceNodePorts(l.nodePort, state, nodePortsOf(old));
      if (hasNodePorts(svc)) {
        const r = allocateServiceNodePorts(l.nodePort, state, ports.map((p) => ({ port: p.port, protocol: p.protocol ?? 'TCP', nodePort: p.nodePort })));
        state = r.state;
        ports.forEach((p, i) => (p.nodePort = r.nodePorts[i]));
      }
      tx.put(NODE_PORT_KEY, state);
      spec.ports = ports.map(({ nodePort, ...rest }) => (nodePort ? { ...rest, nodePort } : rest));
    } catch (e) {
      return apiErrorOf(e, 'Service', name, 'spec.ports');
    }
  }
  return { ...svc, spec };
}

async function assignClusterIp(tx: Txn, layout: ServiceIpLayout, spec: Service['spec'], name: string, old: Service | undefined, clusterDns: boolean): Promise<void> {
  const want = hasClusterIp({ spec } as Service);
  const had = old && hasClusterIp(old) && old.spec.clusterIP ? old.spec.clusterIP : undefined;
  if (had && want) {
    if (spec.clusterIP && spec.clusterIP !== had) {
      throw invalidError('Service', { kind: 'services', name }, [{ field: 'spec.clusterIP', message: `Invalid value: ${JSON.stringify(spec.clusterIP)}: field is immutable (it is ${had})` }]);
    }
    spec.clusterIP = had;
    spec.clusterIPs = [had];
    return;
  }
  if (!had && !want) {
    if (spec.type === 'ExternalName') delete spec.clusterIP;
    if (spec.clusterIP === 'None') spec.clusterIPs = ['None'];
    return;
  }
  const stored = await tx.get(SERVICE_IP_KEY);
  try {
    const state = stored ? parseServiceIpState(stored.value, layout) : emptyServiceIpState(layout);
    if (had) {
      tx.put(SERVICE_IP_KEY, releaseServiceIp(layout, state, had).state);
      if (spec.type === 'ExternalName') delete spec.clusterIP;
      delete spec.clusterIPs;
      return;
    }
    const a = allocateServiceIp(layout, state, spec.clusterIP || undefined, { clusterDns });
    tx.put(SERVICE_IP_KEY, a.state);
    spec.clusterIP = a.clusterIp;
    spec.clusterIPs = [a.clusterIp];
  } catch (e) {
    apiErrorOf(e, 'Service', name, 'spec.clusterIP');
  }
}

export async function releaseServiceAddresses(tx: Txn, svc: Service): Promise<void> {
  const l = await layouts(tx);
  const name = svc.metadata.name;
  try {
    if (hasClusterIp(svc) && svc.spec.clusterIP) {
      const stored = await tx.get(SERVICE_IP_KEY);
      if (stored) tx.put(SERVICE_IP_KEY, releaseServiceIp(l.serviceIp, parseServiceIpState(stored.value, l.serviceIp), svc.spec.clusterIP).state);
    }
    const nodePorts = nodePortsOf(svc);
    if (nodePorts.length > 0) {
      const stored = await tx.get(NODE_PORT_KEY);
      if (stored) tx.put(NODE_PORT_KEY, releaseServiceNodePorts(l.nodePort, parseNodePortState(stored.value, l.nodePort), nodePorts));
    }
  } catch (e) {
    apiErrorOf(e, 'Service', name, 'spec');
  }
}

/**
 * A new cluster config must fit the allocations already made: the allocators refuse a state that
 * was made for another CIDR or range, and that refusal becomes a 400 naming the field.
 */
export async function checkConfigAgainstAllocations(tx: TxnReader, spec: ClusterConfigSpec): Promise<void> {
  let l: Layouts;
  try {
    l = layoutsOf(spec);
  } catch (e) {
    return apiErrorOf(e, 'ClusterConfig', 'cluster', 'spec');
  }
  const checks: [string, string, (v: unknown) => unknown][] = [
    [POD_CIDR_KEY, 'spec.clusterCIDR', (v) => parsePodCidrState(v, l.podCidr)],
    [SERVICE_IP_KEY, 'spec.serviceCIDR', (v) => parseServiceIpState(v, l.serviceIp)],
    [NODE_PORT_KEY, 'spec.nodePortRange', (v) => parseNodePortState(v, l.nodePort)],
  ];
  await checkClusterDns(tx, spec, l.serviceIp);
  for (const [key, field, parse] of checks) {
    const stored = await tx.get(key);
    if (!stored) continue;
    try {
      parse(stored.value);
    } catch (e) {
      if (!(e instanceof AllocError)) throw e;
      throw invalidError('ClusterConfig', { kind: 'clusterconfigs', name: 'cluster' }, [{ field, message: `Forbidden: ${e.message}` }]);
    }
  }
}

/**
 * A new clusterDNS must not be another Service's ClusterIP, and cannot move while the cluster DNS
 * Service holds another one (a ClusterIP is immutable): that Service is deleted first, and the
 * control plane recreates it at the new address when it next starts.
 */
async function checkClusterDns(tx: TxnReader, spec: ClusterConfigSpec, layout: ServiceIpLayout): Promise<void> {
  const refuse = (message: string): never => {
    throw invalidError('ClusterConfig', { kind: 'clusterconfigs', name: 'cluster' }, [{ field: 'spec.clusterDNS', message: `Forbidden: ${message}` }]);
  };
  const current = await tx.get<ClusterConfig>(CONFIG_KEY);
  if (current && clusterConfigSpecWithDefaults(current.value.spec).clusterDNS === spec.clusterDNS) return; // unchanged: nothing moves
  const dns = await tx.get<Service>(CLUSTER_DNS_SERVICE_KEY);
  const held = dns?.value.spec.clusterIP;
  if (held && held !== 'None' && held !== spec.clusterDNS) {
    refuse(`the Service ${CLUSTER_DNS_SERVICE.namespace}/${CLUSTER_DNS_SERVICE.name} has ClusterIP ${held}, which cannot change; delete that Service first (the control plane recreates it at ${spec.clusterDNS} when it starts), or keep clusterDNS ${held}`);
  }
  if (held === spec.clusterDNS) return;
  const stored = await tx.get(SERVICE_IP_KEY);
  if (!stored) return;
  try {
    if (isServiceIpAllocated(layout, parseServiceIpState(stored.value, layout), spec.clusterDNS)) refuse(`${spec.clusterDNS} is already the ClusterIP of another Service; pick a free address of the service CIDR`);
  } catch (e) {
    if (!(e instanceof AllocError)) throw e; // a state for another CIDR: the serviceCIDR check below reports it
  }
}
