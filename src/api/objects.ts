// The API objects the control plane stores and serves: Kubernetes core/v1 shapes (the subset podwire
// uses), plus podwire's own ClusterConfig. podwire-specific node data (underlay IP, VTEP MAC,
// backend) lives in annotations, as flannel does, so a stock kubectl shows and round-trips it.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Opaque to clients: the store's modRevision of the object, as a decimal string. */
  resourceVersion?: string;
  creationTimestamp?: string;
}

export interface TypeMeta {
  apiVersion: string;
  kind: string;
}

export interface KubeObject extends TypeMeta {
  metadata: ObjectMeta;
}

// ---- Node ------------------------------------------------------------------------------------

export const NODE_ANNOTATIONS = {
  /** The node's underlay address: VXLAN peers send to it, host-gw routes point at it. */
  publicIp: 'podwire.io/public-ip',
  /** MAC of the node's VXLAN device (podwire.1). */
  vtepMac: 'podwire.io/vtep-mac',
  /** The backend the node runs: vxlan, host-gw or auto. */
  backend: 'podwire.io/backend',
  /** The agent's authenticated HTTPS debug endpoint (--debug-listen): https://UNDERLAY_IP:PORT. */
  agentEndpoint: 'podwire.io/agent-endpoint',
  /** SHA-256 of that endpoint's certificate (DER), lowercase hex: the CLI pins it. */
  agentCertSha256: 'podwire.io/agent-cert-sha256',
  /**
   * The node's cluster DNS server (the agent's, on its pod gateway, port 53), while it serves: the
   * control plane keeps kube-system/kube-dns's Endpoints from these, and other nodes fall back to
   * them when their own server is down. A node may only name an address in its own podCIDR.
   */
  dnsEndpoint: 'podwire.io/dns-endpoint',
} as const;

export interface NodeAddress {
  type: 'InternalIP' | 'ExternalIP' | 'Hostname';
  address: string;
}

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

export interface Node extends KubeObject {
  apiVersion: 'v1';
  kind: 'Node';
  spec: {
    /** Allocated by the control plane at registration (a requested one is honoured if free). */
    podCIDR?: string;
    podCIDRs?: string[];
    unschedulable?: boolean;
  };
  status?: {
    addresses?: NodeAddress[];
    conditions?: NodeCondition[];
  };
}

// ---- Pod -------------------------------------------------------------------------------------

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface Pod extends KubeObject {
  apiVersion: 'v1';
  kind: 'Pod';
  spec: {
    nodeName?: string;
    /** Only the ports matter to podwire (named targetPorts resolve against them). */
    containers?: { name: string; image?: string; ports?: ContainerPort[] }[];
  };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    conditions?: { type: string; status: 'True' | 'False' | 'Unknown'; reason?: string; message?: string; lastProbeTime?: string; lastTransitionTime?: string }[];
  };
}

// ---- Service ---------------------------------------------------------------------------------

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

export interface ServicePort {
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  /** A number, or the name of a container port. */
  targetPort?: number | string;
  nodePort?: number;
}

export interface Service extends KubeObject {
  apiVersion: 'v1';
  kind: 'Service';
  spec: {
    type?: ServiceType;
    selector?: Record<string, string>;
    ports?: ServicePort[];
    /** '' or absent on create: allocate; 'None': headless; an IP: reserve that one. */
    clusterIP?: string;
    clusterIPs?: string[];
    externalName?: string;
    externalIPs?: string[];
    loadBalancerIP?: string;
    sessionAffinity?: 'None' | 'ClientIP';
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    externalTrafficPolicy?: 'Cluster' | 'Local';
    /** Cluster DNS: a headless service's records list not-ready endpoints too (src/dns). */
    publishNotReadyAddresses?: boolean;
    internalTrafficPolicy?: 'Cluster' | 'Local';
  };
  status?: {
    loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] };
  };
}

// ---- Endpoints -------------------------------------------------------------------------------

export interface EndpointAddress {
  ip: string;
  nodeName?: string;
  hostname?: string;
  targetRef?: { kind: 'Pod'; namespace: string; name: string; uid?: string };
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

export interface Endpoints extends KubeObject {
  apiVersion: 'v1';
  kind: 'Endpoints';
  subsets?: EndpointSubset[];
}

/** Label on Endpoints written by the control plane's endpoints controller (from a selector). */
export const MANAGED_BY_LABEL = 'endpoints.podwire.io/managed-by';
export const MANAGED_BY_CONTROLLER = 'podwire-controlplane';
/**
 * Kubernetes' annotation (the EndpointSlice controller sets it): when the change to a Pod or
 * Service that made this write happened, RFC 3339 with milliseconds. Agents measure network
 * programming latency from it (kube-proxy's network_programming_duration_seconds).
 */
export const LAST_CHANGE_TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';

// ---- ClusterConfig (podwire's own) -----------------------------------------------------------

export type Backend = 'vxlan' | 'host-gw' | 'auto';
export const BACKENDS: readonly Backend[] = ['vxlan', 'host-gw', 'auto'];

export interface ClusterConfigSpec {
  clusterCIDR: string;
  /** Prefix length of each node's podCIDR. */
  nodeMask: number;
  serviceCIDR: string;
  /** "first-last", inclusive. */
  nodePortRange: string;
  backend: Backend;
  /** VXLAN network identifier and UDP port. */
  vni: number;
  vxlanPort: number;
  /** The cluster DNS service's ClusterIP (kube-system/kube-dns): pods' nameserver. Default: the 10th address of serviceCIDR. */
  clusterDNS: string;
  /** The cluster's DNS zone: pods search <ns>.svc.<zone>, svc.<zone>, <zone>. */
  clusterDomain: string;
}

export interface ClusterConfig extends KubeObject {
  apiVersion: 'podwire.io/v1';
  kind: 'ClusterConfig';
  spec: ClusterConfigSpec;
}

export const DEFAULT_CLUSTER_CONFIG: ClusterConfigSpec = {
  clusterCIDR: '10.244.0.0/16',
  nodeMask: 24,
  serviceCIDR: '10.96.0.0/12',
  nodePortRange: '30000-32767',
  backend: 'vxlan',
  vni: 1,
  vxlanPort: 8472,
  clusterDNS: '10.96.0.10',
  clusterDomain: 'cluster.local',
};

/** The cluster DNS Service the control plane keeps (as kubeadm's CoreDNS addon names it). */
export const CLUSTER_DNS_SERVICE = { namespace: 'kube-system', name: 'kube-dns' } as const;

// ---- Lists, watch events, Status -------------------------------------------------------------

export interface ObjectList<T> {
  apiVersion: 'v1';
  kind: string; // e.g. ServiceList
  metadata: { resourceVersion: string };
  items: T[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEventBody<T = KubeObject> {
  type: WatchEventType;
  object: T | Status;
}

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Expired';

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

/** Kubernetes' meta/v1 Status: every error body, so kubectl prints it as it would kube-apiserver's. */
export interface Status {
  apiVersion: 'v1';
  kind: 'Status';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message: string;
  reason?: StatusReason;
  details?: { name?: string; kind?: string; causes?: StatusCause[] };
  code: number;
}
