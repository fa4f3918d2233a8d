// The pod's DNS settings as the kubelet gives them (ClusterFirst): the cluster DNS Service as the
// nameserver, search <ns>.svc.<zone> svc.<zone> <zone>, options ndots:5. They come from the
// network config's optional "clusterDNS" and "clusterDomain" (the agent's --install-cni writes them
// from the cluster config) and the pod's namespace (CNI_ARGS K8S_POD_NAMESPACE, default "default").
// An explicit "dns" section (CNI spec) wins over them.
import { validateClusterDomain, validateDns1123Label } from '../api/validate.js';
import { checkIp, bad } from './config-fields.js';
import { CniError, CNI_ERR } from './errors.js';

export interface ClusterDnsConf {
  /** The cluster DNS Service's ClusterIP. */
  server: string;
  /** The cluster DNS zone, e.g. cluster.local. */
  domain: string;
}

export interface PodDns {
  nameservers: string[];
  search: string[];
  options: string[];
}

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/** The kubelet's ndots for ClusterFirst pods: "web.default" still goes through the search path first. */
export const POD_NDOTS = 5;

/** "clusterDNS" (an IP) and "clusterDomain" (default cluster.local); clusterDomain alone is an error. */
export function parseClusterDns(o: Record<string, unknown>): ClusterDnsConf | undefined {
  const { clusterDNS, clusterDomain } = o;
  if (clusterDNS === undefined) {
    if (clusterDomain !== undefined) throw bad('config field clusterDomain needs clusterDNS', 'give "clusterDNS": the cluster DNS Service\'s ClusterIP (e.g. 10.96.0.10), or remove clusterDomain');
    return undefined;
  }
  if (typeof clusterDNS !== 'string') throw bad(`config field clusterDNS must be an IP address string, not ${JSON.stringify(clusterDNS).slice(0, 80)}`);
  const server = checkIp(clusterDNS, 'clusterDNS');
  const domain = clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const errs = validateClusterDomain(domain, 'clusterDomain');
  if (errs.length > 0) throw bad(`config field ${errs[0]!.field}: ${errs[0]!.message}`, 'clusterDomain is a DNS name such as cluster.local (no trailing dot)');
  return { server, domain: domain as string };
}

/** The pod's namespace from CNI_ARGS: a DNS-1123 label, since it becomes a search domain. */
export function podNamespace(args: Map<string, string>): string {
  const namespace = args.get('K8S_POD_NAMESPACE') || 'default';
  const errs = validateDns1123Label(namespace, 'K8S_POD_NAMESPACE');
  if (errs.length > 0) throw new CniError(CNI_ERR.INVALID_ENV, `invalid K8S_POD_NAMESPACE in CNI_ARGS: ${errs[0]!.message}`, 'a namespace is a DNS-1123 label (lower case letters, digits and "-", at most 63)');
  return namespace;
}

/** The kubelet's ClusterFirst DNS for a pod of `namespace` (pure). */
export function clusterFirstDns(conf: ClusterDnsConf, namespace: string): PodDns {
  const zone = conf.domain;
  return { nameservers: [conf.server], search: [`${namespace}.svc.${zone}`, `svc.${zone}`, zone], options: [`ndots:${POD_NDOTS}`] };
}
