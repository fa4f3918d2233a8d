// What a debugging command's SRC / DST names: a pod (NAME in namespace default, NS/NAME, or its
// IP), a node (its name or an address), a service (NAME, NS/NAME, or its ClusterIP / external /
// LoadBalancer IP), with an optional :PORT[/PROTO] on DST. Pure: the lists come from the control
// plane. Unknown names are usage errors listing the close matches.
import type { Node, Pod, Service } from '../../api/objects.js';
import { canonicalIp, isIp as isIpGuard } from '../../net/ip.js';
import { UsageError } from '../../flags/flags.js';
import { closeMatches } from './suggest.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface Cluster {
  pods: Pod[];
  nodes: Node[];
  services: Service[];
}

export type Resolved =
  | { kind: 'pod'; pod: Pod; namespace: string; name: string; ip: string; node?: string }
  | { kind: 'node'; node: Node; name: string; ip?: string }
  | { kind: 'service'; service: Service; namespace: string; name: string; ip: string }
  /** An address that is no pod, node or service of the cluster (e.g. outside it). */
  | { kind: 'ip'; ip: string };

export interface DestinationSpec {
  what: string;
  port?: number;
  protocol: Protocol;
}

/** isIp without the type guard (a failed check must not narrow a string to never). */
const isIp = (text: string, family?: 4 | 6): boolean => isIpGuard(text, family);

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** "web", "web:80", "10.96.0.1:53/udp", "default/web:80/TCP", "[fd00::1]:80". */
export function parseDestination(text: string): DestinationSpec {
  const bad = (why: string) => new UsageError(`destination ${JSON.stringify(text)}: ${why}; expected NAME, NS/NAME or IP, optionally :PORT or :PORT/PROTO (e.g. web:80/TCP)`);
  if (text === '') throw bad('empty');
  let rest = text;
  let protocol: Protocol = 'TCP';
  const slashProto = /\/(tcp|udp|sctp)$/i.exec(rest);
  if (slashProto) {
    protocol = slashProto[1]!.toUpperCase() as Protocol;
    rest = rest.slice(0, -slashProto[0].length);
  }
  let what = rest;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracket) {
    what = bracket[1]!;
    portText = bracket[2];
    if (!isIp(what, 6)) throw bad(`${what} in brackets is not an IPv6 address`);
  } else if (!isIp(rest, 6)) {
    const i = rest.lastIndexOf(':');
    if (i >= 0) {
      what = rest.slice(0, i);
      portText = rest.slice(i + 1);
    }
  }
  if (slashProto && portText === undefined) throw bad('a protocol needs a port');
  if (what === '') throw bad('no name or address before the port');
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw bad(`port ${JSON.stringify(portText)} is not 1-65535`);
    port = Number(portText);
  }
  if (!PROTOCOLS.includes(protocol)) throw bad(`protocol ${protocol}`);
  return { what, ...(port !== undefined ? { port } : {}), protocol };
}

const podIps = (p: Pod): string[] => [...new Set([p.status?.podIP, ...(p.status?.podIPs ?? []).map((x) => x.ip)].filter((x): x is string => !!x).map(canonicalIp))];
const nodeIps = (n: Node): string[] => (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => canonicalIp(a.address));
const serviceIps = (s: Service): string[] =>
  [...new Set([s.spec.clusterIP, ...(s.spec.clusterIPs ?? []), ...(s.spec.externalIPs ?? []), s.spec.loadBalancerIP, ...((s.status as { loadBalancer?: { ingress?: { ip?: string }[] } } | undefined)?.loadBalancer?.ingress ?? []).map((i) => i.ip)]
    .filter((x): x is string => !!x && x !== 'None' && isIp(x)).map(canonicalIp))];

const podOf = (pod: Pod, ip: string): Resolved => ({ kind: 'pod', pod, namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name, ip, ...(pod.spec.nodeName ? { node: pod.spec.nodeName } : {}) });
const nodeOf = (node: Node): Resolved => {
  const ip = nodeIps(node)[0];
  return { kind: 'node', node, name: node.metadata.name, ...(ip ? { ip } : {}) };
};
const serviceOf = (service: Service, ip: string): Resolved => ({ kind: 'service', service, namespace: service.metadata.namespace ?? 'default', name: service.metadata.name, ip });

/**
 * What `what` names. `allow` limits the kinds (ping: pods and addresses). An IP is a pod's, a
 * node's, a service's, else `ip`. A name is looked up as a pod, then a node, then a service (a
 * pod and a service of the same name: `pod:` or `svc:` in front picks one).
 */
export function resolveName(what: string, cluster: Cluster, allow: ReadonlyArray<Resolved['kind']> = ['pod', 'node', 'service', 'ip']): Resolved {
  const kinds = allow.join(', ');
  if (isIp(what)) {
    const ip = canonicalIp(what);
    const pod = cluster.pods.find((p) => podIps(p).includes(ip));
    const found: Resolved | undefined = pod && allow.includes('pod') ? podOf(pod, ip) : undefined;
    if (found) return found;
    const node = allow.includes('node') ? cluster.nodes.find((n) => nodeIps(n).includes(ip)) : undefined;
    if (node) return { ...nodeOf(node), ip } as Resolved;
    const svc = allow.includes('service') ? cluster.services.find((s) => serviceIps(s).includes(ip)) : undefined;
    if (svc) return serviceOf(svc, ip);
    if (allow.includes('ip')) return { kind: 'ip', ip };
    throw new UsageError(`${what} is not the address of any ${kinds.replace(', ip', '')} the control plane knows`);
  }
  let name = what;
  let only: Resolved['kind'] | undefined;
  const tagged = /^(pod|node|svc|service):(.+)$/.exec(what);
  if (tagged) {
    only = tagged[1] === 'svc' || tagged[1] === 'service' ? 'service' : (tagged[1] as 'pod' | 'node');
    name = tagged[2]!;
  }
  const [ns, n] = name.includes('/') ? [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)] : ['default', name];
  const want = (k: Resolved['kind']) => allow.includes(k) && (only === undefined || only === k);
  if (want('pod')) {
    const pod = cluster.pods.find((p) => p.metadata.name === n && (p.metadata.namespace ?? 'default') === ns);
    if (pod) {
      const ip = podIps(pod)[0];
      if (!ip) throw new UsageError(`pod ${ns}/${n} has no IP yet (its phase: ${pod.status?.phase ?? 'unknown'})`);
      return podOf(pod, ip);
    }
  }
  if (want('node') && !name.includes('/')) {
    const node = cluster.nodes.find((x) => x.metadata.name === name);
    if (node) return nodeOf(node);
  }
  if (want('service')) {
    const svc = cluster.services.find((s) => s.metadata.name === n && (s.metadata.namespace ?? 'default') === ns);
    if (svc) {
      const ip = serviceIps(svc)[0];
      if (!ip) throw new UsageError(`service ${ns}/${n} has no IP (headless or ExternalName); name one of its pods instead`);
      return serviceOf(svc, ip);
    }
  }
  const candidates = [
    ...(want('pod') ? cluster.pods.map((p) => ((p.metadata.namespace ?? 'default') === 'default' ? p.metadata.name : `${p.metadata.namespace}/${p.metadata.name}`)) : []),
    ...(want('node') ? cluster.nodes.map((x) => x.metadata.name) : []),
    ...(want('service') ? cluster.services.map((s) => ((s.metadata.namespace ?? 'default') === 'default' ? s.metadata.name : `${s.metadata.namespace}/${s.metadata.name}`)) : []),
  ];
  const close = closeMatches(name, candidates);
  const kindWords = (only ? [only] : allow.filter((k) => k !== 'ip')).join(', ');
  throw new UsageError(`no ${kindWords} named ${JSON.stringify(name)}${close.length ? `; did you mean ${close.join(', ')}?` : ''}${allow.includes('ip') ? ' (or give an IP address)' : ''}`);
}
