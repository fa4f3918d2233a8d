// ProxyInput fixtures for the iptables renderer's tests (iptFixtures): a three-node cluster and
// one service port per case, with endpoint lists categorised by the real topology.ts, so the
// tests see what the agent would hand the renderer. The nftables tests build their own cases from
// service() and endpoints().
import { servicePortEndpoints } from '../../src/proxy/topology.js';
import type { EndpointInfo, ProxyInput, ServicePortInfo } from '../../src/proxy/types.js';

const NODE_IP: Record<string, string> = { 'node-a': '192.168.56.10', 'node-b': '192.168.56.11', 'node-c': '192.168.56.12' };
const CLUSTER_CIDR = '10.244.0.0/16';
/** Each node's cni0 address: local too, as the tracer's localAddresses. */
const GATEWAY: Record<string, string> = { 'node-a': '10.244.1.1', 'node-b': '10.244.2.1', 'node-c': '10.244.3.1' };

export type EndpointSpec = Omit<EndpointInfo, 'isLocal'>;

/** A ClusterIP service port named NAME (port 80, TCP, port name http) with `over` applied. */
export function service(name: string, over: Partial<ServicePortInfo> = {}): ServicePortInfo {
  const portName = over.portName ?? 'http';
  const protocol = over.protocol ?? 'TCP';
  return {
    key: `default/${name}:${portName}/${protocol}`, namespace: 'default', name, portName, protocol, type: 'ClusterIP',
    clusterIPs: [], port: 80, externalIPs: [], loadBalancerIPs: [], externalPolicyLocal: false, internalPolicyLocal: false, ...over,
  };
}

/** Ready endpoints from 'ip@node' strings. */
export function endpoints(list: string[], port = 8080): EndpointSpec[] {
  return list.map((s) => {
    const [ip, nodeName] = s.split('@');
    return { ip, port, nodeName, ready: true, serving: true, terminating: false };
  });
}

const THREE = () => endpoints(['10.244.1.5@node-a', '10.244.2.5@node-b', '10.244.3.5@node-c']);

/** One service port per rendering case; the golden files are named after these. */
const SERVICES = {
  /** ClusterIP, 3 endpoints, one per node (an IPv6 ClusterIP too, which is skipped). */
  clusterip: () => [service('web', { clusterIPs: ['10.96.0.10', 'fd00:96::10'] }), THREE()] as const,
  /** LoadBalancer: NodePort + external IP + LB IP. */
  'nodeport-lb': () => [service('shop', {
    type: 'LoadBalancer', clusterIPs: ['10.96.0.20'], nodePort: 30080, externalIPs: ['192.0.2.10'], loadBalancerIPs: ['198.51.100.10'],
  }), THREE()] as const,
  affinity: () => [service('sticky', { portName: '', clusterIPs: ['10.96.0.30'], sessionAffinity: { timeoutSeconds: 10800 } }),
    endpoints(['10.244.1.6@node-a', '10.244.2.6@node-b'])] as const,
  /** externalTrafficPolicy Local, UDP: endpoints on nodes a and b, none on c. */
  'local-policy': () => [service('local', {
    type: 'NodePort', protocol: 'UDP', clusterIPs: ['10.96.0.40'], port: 53, nodePort: 30053, externalIPs: ['192.0.2.40'], externalPolicyLocal: true,
  }), endpoints(['10.244.1.8@node-a', '10.244.2.8@node-b'], 5353)] as const,
  'no-endpoints': () => [service('empty', { type: 'NodePort', clusterIPs: ['10.96.0.50'], nodePort: 30050, externalIPs: ['192.0.2.50'] }), []] as const,
};

type Case = keyof typeof SERVICES;
const CASES = Object.keys(SERVICES) as Case[];

/** The ProxyInput node `node` renders for these cases; `edit` may change a case's endpoints. */
function input(cases: readonly Case[], node = 'node-a', edit?: (c: Case, eps: EndpointSpec[]) => EndpointSpec[]): ProxyInput {
  return {
    nodeName: node,
    nodeIPs: [NODE_IP[node], 'fd00::10', '127.0.0.1'],
    clusterCidrs: [CLUSTER_CIDR, 'fd00:10:244::/56'],
    ports: cases.map((c) => {
      const [info, list] = SERVICES[c]();
      const eps = edit ? edit(c, [...list]) : [...list];
      return servicePortEndpoints(info, eps.map((e) => ({ ...e, isLocal: e.nodeName === node })));
    }),
  };
}

/** What the tracer needs to know about a node: its own addresses. */
function localAddresses(node: string): string[] {
  return [NODE_IP[node], GATEWAY[node]];
}

export const iptFixtures = { NODE_IP, GATEWAY, CLUSTER_CIDR, CASES, SERVICES, service, endpoints, input, localAddresses };
export type IptCase = Case;
