// What Kubernetes' endpoints controller computes for one Service: the pods its selector picks,
// split into ready and not-ready addresses, with each service port resolved per pod (a named
// targetPort can map to different numbers on different pods), then packed into subsets the way
// RepackSubsets does. Pure and deterministic: equal inputs in any order give byte-identical JSON,
// so the controller can compare before writing and never rewrites an unchanged Endpoints.
import { ipSortKey } from '../../net/ip.js';
import type { EndpointAddress, EndpointPort, EndpointSubset, KubeObject, Pod, Service, ServicePort } from '../../api/objects.js';
import { matchesSelectorMap } from '../selectors.js';

/** The API puts namespaced objects without a namespace into "default". */
const DEFAULT_NAMESPACE = 'default';
const namespaceOf = (o: KubeObject): string => o.metadata.namespace ?? DEFAULT_NAMESPACE;

/** One (address, port) fact; port undefined is a headless service's port-less address. */
interface Entry {
  address: EndpointAddress;
  ready: boolean;
  port: EndpointPort | undefined;
}

/**
 * Whether the endpoints controller manages this Service's Endpoints: not for ExternalName (it has
 * no endpoints) and not without a selector (Kubernetes reads an empty selector as "none", leaving
 * the Endpoints to whoever writes them by hand).
 */
function isManaged(service: Service): boolean {
  const selector = service.spec.selector;
  return service.spec.type !== 'ExternalName' && selector !== undefined && Object.keys(selector).length > 0;
}

function isReady(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** A pod with no IP cannot be reached yet; a finished pod never will be again. */
function isServable(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return Boolean(pod.status?.podIP) && phase !== 'Succeeded' && phase !== 'Failed';
}

// Fixed key order everywhere, so JSON.stringify of the result is canonical.
function canonicalAddress(a: EndpointAddress): EndpointAddress {
  const out: EndpointAddress = { ip: a.ip };
  if (a.nodeName !== undefined) out.nodeName = a.nodeName;
  if (a.hostname !== undefined) out.hostname = a.hostname;
  if (a.targetRef) {
    const { namespace, name, uid } = a.targetRef;
    out.targetRef = uid !== undefined ? { kind: 'Pod', namespace, name, uid } : { kind: 'Pod', namespace, name };
  }
  return out;
}

/** A Go omitempty field: an empty port name is no name. */
function canonicalPort(p: EndpointPort): EndpointPort {
  const protocol = p.protocol ?? 'TCP';
  return p.name ? { name: p.name, port: p.port, protocol } : { port: p.port, protocol };
}

function podAddress(pod: Pod): EndpointAddress {
  const { name, uid } = pod.metadata;
  return canonicalAddress({
    ip: pod.status?.podIP as string,
    nodeName: pod.spec.nodeName,
    targetRef: { kind: 'Pod', namespace: namespaceOf(pod), name, uid },
  });
}

/**
 * The container port a service port reaches on this pod (Kubernetes' FindPort): a number as is
 * (podwire's validation also accepts a digits-only string as a number), a name looked up by name
 * AND protocol across the pod's containers. undefined: this pod does not serve this port.
 */
function resolvePort(pod: Pod, sp: ServicePort): number | undefined {
  const target = sp.targetPort ?? sp.port;
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  const protocol = sp.protocol ?? 'TCP';
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
  }
  return undefined;
}

// ---- Packing and ordering --------------------------------------------------------------------

// "\u0000" separates fields so a shorter name sorts before a longer one it prefixes.
const addressSortKey = (a: EndpointAddress): string => `${ipSortKey(a.ip)}\u0000${JSON.stringify(a)}`;
const portSortKey = (p: EndpointPort): string => `${p.name ?? ''}\u0000${String(p.port).padStart(5, '0')}\u0000${p.protocol ?? 'TCP'}`;
const byKey = <T>(key: (v: T) => string) => (a: T, b: T): number => {
  const ka = key(a);
  const kb = key(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** RepackSubsets: map each port to the addresses serving it (ready wins over not-ready). */
function addressesByPort(entries: Iterable<Entry>): Map<string, { port: EndpointPort | undefined; addrs: Map<string, Entry> }> {
  const byPort = new Map<string, { port: EndpointPort | undefined; addrs: Map<string, Entry> }>();
  for (const e of entries) {
    const port = e.port && canonicalPort(e.port);
    const portKey = port ? portSortKey(port) : '';
    let group = byPort.get(portKey);
    if (!group) byPort.set(portKey, (group = { port, addrs: new Map() }));
    const address = canonicalAddress(e.address);
    const addrKey = addressSortKey(address);
    const seen = group.addrs.get(addrKey);
    if (!seen || (e.ready && !seen.ready)) group.addrs.set(addrKey, { address, ready: e.ready, port });
  }
  return byPort;
}

/**
 * Ports served by exactly the same addresses (with the same readiness) share a subset, as in
 * Kubernetes' RepackSubsets; everything sorted so the result is canonical.
 */
function repack(entries: Iterable<Entry>): EndpointSubset[] {
  const groups = new Map<string, { addrs: Entry[]; ports: EndpointPort[] }>();
  for (const { port, addrs } of addressesByPort(entries).values()) {
    const sorted = [...addrs.entries()].sort(byKey(([k]) => k));
    const setKey = sorted.map(([k, e]) => `${k}\u0001${e.ready ? 1 : 0}`).join('\u0002');
    let g = groups.get(setKey);
    if (!g) groups.set(setKey, (g = { addrs: sorted.map(([, e]) => e), ports: [] }));
    if (port) g.ports.push(port);
  }
  const subsets = [...groups.values()].map(({ addrs, ports }) => {
    const s: EndpointSubset = {};
    const ready = addrs.filter((e) => e.ready).map((e) => e.address);
    const notReady = addrs.filter((e) => !e.ready).map((e) => e.address);
    if (ready.length > 0) s.addresses = ready;
    if (notReady.length > 0) s.notReadyAddresses = notReady;
    if (ports.length > 0) s.ports = ports.sort(byKey(portSortKey));
    return s;
  });
  const subsetKey = (s: EndpointSubset): string =>
    [(s.ports ?? []).map(portSortKey).join('\u0001'), [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])].map(addressSortKey).join('\u0001')].join('\u0002');
  return subsets.sort(byKey(subsetKey));
}

// ---- Public API ------------------------------------------------------------------------------

/**
 * The subsets of the Service's Endpoints, or undefined when the controller does not manage them
 * (ExternalName, or no selector). `pods` are candidates: namespace and selector are checked here.
 * A headless Service (clusterIP None) without ports still lists its pods' addresses, port-less.
 */
export function deriveSubsets(service: Service, pods: readonly Pod[]): EndpointSubset[] | undefined {
  if (!isManaged(service)) return undefined;
  const selector = service.spec.selector as Record<string, string>;
  const namespace = namespaceOf(service);
  const ports = service.spec.ports ?? [];
  const headless = service.spec.clusterIP === 'None';
  const entries: Entry[] = [];
  for (const pod of pods) {
    if (namespaceOf(pod) !== namespace || !matchesSelectorMap(selector, pod.metadata.labels) || !isServable(pod)) continue;
    const address = podAddress(pod);
    const ready = isReady(pod);
    if (ports.length === 0 && headless) entries.push({ address, ready, port: undefined });
    for (const sp of ports) {
      const port = resolvePort(pod, sp);
      // A pod without the named port is skipped for that port only (Kubernetes logs and moves on).
      if (port !== undefined) entries.push({ address, ready, port: { name: sp.name, port, protocol: sp.protocol } });
    }
  }
  return repack(entries);
}

function flatten(subsets: readonly EndpointSubset[]): Entry[] {
  return subsets.flatMap((s) => {
    const ports: (EndpointPort | undefined)[] = s.ports && s.ports.length > 0 ? s.ports : [undefined];
    const tagged = [...(s.addresses ?? []).map((address) => ({ address, ready: true })), ...(s.notReadyAddresses ?? []).map((address) => ({ address, ready: false }))];
    return tagged.flatMap((a) => ports.map((port) => ({ ...a, port })));
  });
}

/**
 * Same endpoints, however grouped or ordered (an Endpoints written by another client may pack
 * them differently); undefined reads as no subsets, like an Endpoints without `subsets`.
 */
export function subsetsEqual(a: readonly EndpointSubset[] | undefined, b: readonly EndpointSubset[] | undefined): boolean {
  return JSON.stringify(repack(flatten(a ?? []))) === JSON.stringify(repack(flatten(b ?? [])));
}

/** The Services whose Endpoints a change to this pod can affect (input order kept). */
export function servicesSelectingPod(services: readonly Service[], pod: Pod): Service[] {
  const namespace = namespaceOf(pod);
  return services.filter((s) => isManaged(s) && namespaceOf(s) === namespace && matchesSelectorMap(s.spec.selector as Record<string, string>, pod.metadata.labels));
}
