// The cluster DNS Service, kube-system/kube-dns, kept by the control plane itself (as kubeadm's
// CoreDNS addon installs it): created at the first start and at every later one when missing, so a
// data dir made by an older release gets it too. Its ClusterIP is the cluster config's clusterDNS,
// which the ClusterIP allocator hands to no other Service. No selector: its Endpoints are the
// nodes' DNS servers, kept by the endpoints controller (endpoints/node-dns.ts).
import { CLUSTER_DNS_SERVICE, type ClusterConfigSpec, type Service } from '../../api/objects.js';
import { isStoreError, type Store } from '../store/types.js';
import { CLUSTER_DNS_SERVICE_KEY, readClusterConfig } from './allocations.js';
import { bodyName, pathNamespace } from './keys.js';
import type { Registry } from './registry.js';
import { resource } from './resources.js';
import { ApiError } from './status.js';

export const CLUSTER_DNS_LABELS = { 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' } as const;

/** The Service as created (pure): ClusterIP clusterDNS, ports dns 53/UDP and dns-tcp 53/TCP, as CoreDNS's. */
export function clusterDnsServiceBody(spec: Pick<ClusterConfigSpec, 'clusterDNS'>): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: CLUSTER_DNS_SERVICE.name, namespace: CLUSTER_DNS_SERVICE.namespace, labels: { ...CLUSTER_DNS_LABELS } },
    spec: {
      type: 'ClusterIP',
      clusterIP: spec.clusterDNS,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
      ],
    },
  };
}

export type ClusterDnsOutcome =
  | { result: 'created'; clusterIP: string }
  | { result: 'present'; clusterIP: string }
  /** The Service exists with another ClusterIP than clusterDNS (made by hand): left alone. */
  | { result: 'mismatch'; clusterIP: string; clusterDNS: string };

/**
 * Creates kube-system/kube-dns when it is missing; an existing one is left as it is. Throws an
 * ApiError saying what to do when it cannot be created (e.g. an older release gave clusterDNS to
 * another Service).
 */
export async function ensureClusterDnsService(store: Store, registry: Registry): Promise<ClusterDnsOutcome> {
  const spec = await readClusterConfig(store);
  const existing = await store.get<Service>(CLUSTER_DNS_SERVICE_KEY);
  if (existing) return outcomeOf(existing.value, spec, 'present');
  const def = resource('services');
  try {
    const created = (await registry.create(def, pathNamespace(CLUSTER_DNS_SERVICE.namespace), clusterDnsServiceBody(spec))) as Service;
    return outcomeOf(created, spec, 'created');
  } catch (e) {
    if (e instanceof ApiError && e.code === 409) {
      // Another control plane sharing the store created it first.
      const now = await store.get<Service>(CLUSTER_DNS_SERVICE_KEY);
      if (now) return outcomeOf(now.value, spec, 'present');
    }
    if (isStoreError(e)) throw e;
    const why = e instanceof ApiError ? e.message : (e as Error).message;
    throw new ApiError(
      'InternalError',
      `cannot create the cluster DNS Service ${CLUSTER_DNS_SERVICE.namespace}/${bodyName(def, CLUSTER_DNS_SERVICE.name)} at ${spec.clusterDNS}: ${why}; ` +
        `free that address (delete the Service holding it) or set another spec.clusterDNS (PUT /api/v1/clusterconfig), then restart the control plane`,
    );
  }
}

function outcomeOf(svc: Service, spec: ClusterConfigSpec, result: 'created' | 'present'): ClusterDnsOutcome {
  const clusterIP = svc.spec.clusterIP ?? '';
  return clusterIP === spec.clusterDNS ? { result, clusterIP } : { result: 'mismatch', clusterIP, clusterDNS: spec.clusterDNS };
}
