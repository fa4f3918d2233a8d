// The service proxy's model: what every renderer (nftables, iptables, later IPVS) consumes.
// model.ts builds it from Service + Endpoints objects (pure); topology.ts decides which endpoints
// serve which traffic on this node (pure); a renderer turns a ProxyInput into its ruleset.

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

/** One port of one Service: the unit everything is keyed by ("ns/name:portName/protocol"). */
export interface ServicePortInfo {
  key: string;
  namespace: string;
  name: string;
  /** The port's name ('' when the service has a single unnamed port). */
  portName: string;
  protocol: Protocol;
  type: ServiceType;
  /** ClusterIPs (empty for headless and ExternalName services: no rules for those). */
  clusterIPs: string[];
  port: number;
  /** NodePort (NodePort and LoadBalancer types), if allocated. */
  nodePort?: number;
  externalIPs: string[];
  /** status.loadBalancer.ingress IPs, else spec.loadBalancerIP (no cloud controller assigns one here). */
  loadBalancerIPs: string[];
  /** ClientIP affinity, when enabled. */
  sessionAffinity?: { timeoutSeconds: number };
  /** externalTrafficPolicy Local: NodePort/LB/external IP traffic only to this node's endpoints, client IP kept. */
  externalPolicyLocal: boolean;
  /** internalTrafficPolicy Local: ClusterIP traffic only to this node's endpoints. */
  internalPolicyLocal: boolean;
}

export interface EndpointInfo {
  ip: string;
  port: number;
  nodeName?: string;
  /** On this node. */
  isLocal: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** A service port with the endpoints each kind of traffic uses on this node (topology.ts). */
export interface ServicePortEndpoints {
  svc: ServicePortInfo;
  /** Endpoints for traffic to the ClusterIP (internal policy applied). Empty + allEndpoints empty → reject. */
  internalEndpoints: EndpointInfo[];
  /** Endpoints for NodePort / external IP / LB traffic (external policy applied). */
  externalEndpoints: EndpointInfo[];
  /** Every usable endpoint cluster-wide (ready, else serving-terminating): empty means "no endpoints" → reject. */
  allEndpoints: EndpointInfo[];
}

export interface ProxyInput {
  nodeName: string;
  /** The node's own addresses: NodePorts answer on them. */
  nodeIPs: string[];
  /** Pod addresses: traffic from outside them to a ClusterIP is masqueraded. */
  clusterCidrs: string[];
  ports: ServicePortEndpoints[];
}

/** The packet mark bit that asks the postrouting chain to masquerade (kube-proxy's 0x4000). */
export const MASQ_MARK = 0x4000;
