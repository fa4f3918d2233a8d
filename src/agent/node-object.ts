// The agent's own Node object and what it reads from its peers' (pure): podwire's node data lives
// in annotations (flannel does the same), the underlay address also in status.addresses.
import { isIp } from '../net/index.js';
import { NODE_ANNOTATIONS, type Backend, type Node } from '../api/objects.js';
import type { PeerNode, UnderlayInfo } from './network/types.js';

export interface NodeRegistration {
  nodeName: string;
  underlay: UnderlayInfo;
  vtepMac: string;
  backend: Backend;
  /** The HTTPS debug endpoint (--debug-listen) and its certificate's SHA-256; absent: none, any old annotations go. */
  debugEndpoint?: { url: string; certSha256: string };
}

/** The Node as this agent wants it, keeping what others set (labels, podCIDR, other annotations). */
export function nodeBody(reg: NodeRegistration, existing?: Node): Node {
  const annotations: Record<string, string> = {
    ...(existing?.metadata.annotations ?? {}),
    [NODE_ANNOTATIONS.publicIp]: reg.underlay.ip,
    [NODE_ANNOTATIONS.vtepMac]: reg.vtepMac,
    [NODE_ANNOTATIONS.backend]: reg.backend,
  };
  delete annotations[NODE_ANNOTATIONS.agentEndpoint];
  delete annotations[NODE_ANNOTATIONS.agentCertSha256];
  if (reg.debugEndpoint) {
    annotations[NODE_ANNOTATIONS.agentEndpoint] = reg.debugEndpoint.url;
    annotations[NODE_ANNOTATIONS.agentCertSha256] = reg.debugEndpoint.certSha256;
  }
  const conditions = (existing?.status?.conditions ?? []).filter((c) => c.type !== 'NetworkUnavailable');
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { ...(existing?.metadata ?? {}), name: reg.nodeName, annotations },
    spec: { ...(existing?.spec ?? {}) },
    status: {
      ...(existing?.status ?? {}),
      addresses: [
        { type: 'InternalIP', address: reg.underlay.ip },
        { type: 'Hostname', address: reg.nodeName },
      ],
      conditions,
    },
  };
}

/** NetworkUnavailable=False once the node network is in place (what flannel and Calico report). */
export function withNetworkReady(node: Node, ready: boolean, message: string, now: string): Node {
  const previous = node.status?.conditions?.find((c) => c.type === 'NetworkUnavailable');
  const status = ready ? 'False' : 'True';
  const condition = {
    type: 'NetworkUnavailable',
    status: status as 'True' | 'False',
    reason: ready ? 'PodwireIsUp' : 'PodwireSyncFailed',
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: previous?.status === status ? (previous.lastTransitionTime ?? now) : now,
  };
  const others = (node.status?.conditions ?? []).filter((c) => c.type !== 'NetworkUnavailable');
  return { ...node, status: { ...(node.status ?? {}), conditions: [...others, condition] } };
}

/** A peer as the network planner sees it; undefined when the Node lacks what routing needs. */
export function peerOf(node: Node): PeerNode | undefined {
  const a = node.metadata.annotations ?? {};
  const publicIp = a[NODE_ANNOTATIONS.publicIp] ?? node.status?.addresses?.find((x) => x.type === 'InternalIP')?.address;
  const podCidr = node.spec.podCIDR;
  if (!publicIp || !podCidr) return undefined;
  return { name: node.metadata.name, podCidr, publicIp, ...(a[NODE_ANNOTATIONS.vtepMac] ? { vtepMac: a[NODE_ANNOTATIONS.vtepMac] } : {}) };
}

/**
 * The addresses the service proxy answers NodePorts on (kube-proxy's --nodeport-addresses=primary
 * reads them from the Node too): the Node's InternalIP and ExternalIP addresses, in that order,
 * without duplicates or anything that is not an IP; `fallback` (the underlay address) when it has
 * none, e.g. before the Node was read.
 */
export function proxyNodeIps(node: Node | undefined, fallback: readonly string[]): string[] {
  const addresses = node?.status?.addresses ?? [];
  const of = (type: 'InternalIP' | 'ExternalIP') => addresses.filter((a) => a?.type === type && isIp(a.address)).map((a) => a.address);
  const ips = [...new Set([...of('InternalIP'), ...of('ExternalIP')])];
  return ips.length > 0 ? ips : [...fallback];
}

/** flannel's subnet.env, with PODWIRE_ names (read by the CNI plugin when its config has no ipam). */
export function subnetEnvText(clusterCidr: string, gatewayCidr: string, mtu: number): string {
  // The agent masquerades at node level, so the plugin must not add its own per-pod rules.
  return `PODWIRE_NETWORK=${clusterCidr}\nPODWIRE_SUBNET=${gatewayCidr}\nPODWIRE_MTU=${mtu}\nPODWIRE_IPMASQ=true\n`;
}
