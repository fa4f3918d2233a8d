// The record index the handler answers from: pure, built in one pass from the watched services,
// endpoints and pods (kubernetes/dns docs/specification.md, schema 1.1.0, and CoreDNS's
// kubernetes plugin). A change rebuilds it (10,000 services in tens of ms, see README.md); the
// server swaps the whole index at once, so a query never sees half of a change.
import type { Endpoints, EndpointSubset, Pod, Service } from '../api/objects.js';
import { formatIp, tryParseIp, type IpAddr } from '../net/index.js';
import { dashedIp, isDnsLabel, isUnder, normalizeName, parseDashedIp, reverseName } from './names.js';

export type PodRecordsMode = 'insecure' | 'verified' | 'disabled';
export const POD_RECORDS_MODES: readonly PodRecordsMode[] = ['insecure', 'verified', 'disabled'];
export const SCHEMA_VERSION = '1.1.0';

export interface SrvRecord { priority: number; weight: number; port: number; target: string }

/** What one name has; a name with every list empty exists (an empty non-terminal: NODATA). */
export interface NameRecords {
  a: string[];
  aaaa: string[];
  srv: SrvRecord[];
  ptr: string[];
  txt: string[];
  cname?: string;
}

export interface DnsIndexOptions {
  /** The cluster zone, e.g. cluster.local (no trailing dot needed). */
  zone: string;
  /** Seconds, every answer's TTL (CoreDNS's `ttl`, default 5). */
  ttl: number;
  /**
   * Seconds a negative answer (NXDOMAIN, NODATA) may be cached: the TTL and minimum of the SOA
   * that comes with it (RFC 2308). Default 1, so a client's resolver that cached "no such name"
   * sees a service created right after within 1 s (CoreDNS's 5 s hid new services); the answer
   * comes from the node's own memory, so a longer negative cache saves next to nothing.
   */
  negativeTtl: number;
  podRecords: PodRecordsMode;
}

export const DEFAULT_INDEX_OPTIONS: DnsIndexOptions = { zone: 'cluster.local', ttl: 5, negativeTtl: 1, podRecords: 'insecure' };

export interface DnsIndex {
  readonly zone: string;
  readonly ttl: number;
  /** The SOA's TTL and minimum (DnsIndexOptions.negativeTtl). */
  readonly negativeTtl: number;
  readonly podRecords: PodRecordsMode;
  /** The SOA serial: seconds since the epoch at build time (changes on every rebuild). */
  readonly serial: number;
  readonly names: ReadonlyMap<string, NameRecords>;
  /** `<ns>/<canonical ip>` of every pod with an IP, for podRecords 'verified'. */
  readonly podIps: ReadonlySet<string>;
}

export interface DnsSources {
  services: Iterable<Service>;
  endpoints: Iterable<Endpoints>;
  pods?: Iterable<Pod>;
}

/** Kubernetes' spec field, not yet in src/api/objects.ts' Service (only DNS reads it). */
type ServiceSpec = Service['spec'];

export const emptyRecords = (): NameRecords => ({ a: [], aaaa: [], srv: [], ptr: [], txt: [] });

export class IndexBuilder {
  readonly names = new Map<string, NameRecords>();
  constructor(readonly zone: string) {}

  at(name: string): NameRecords {
    let r = this.names.get(name);
    if (!r) {
      r = emptyRecords();
      this.names.set(name, r);
      // Its ancestors under the zone exist too (empty non-terminals), up to the first one known.
      let parent = name;
      for (let dot = parent.indexOf('.'); dot >= 0; dot = parent.indexOf('.')) {
        parent = parent.slice(dot + 1);
        if (!isUnder(parent, this.zone) || this.names.has(parent)) break;
        this.names.set(parent, emptyRecords());
      }
    }
    return r;
  }

  address(name: string, ip: IpAddr): void {
    const text = formatIp(ip.bytes);
    const list = ip.family === 4 ? this.at(name).a : this.at(name).aaaa;
    if (!list.includes(text)) list.push(text);
  }

  ptr(ip: IpAddr, target: string): void {
    const list = this.at(reverseName(ip)).ptr;
    if (!list.includes(target)) list.push(target);
  }
}

const validIps = (texts: (string | undefined)[]): IpAddr[] => texts.map((t) => tryParseIp(t)).filter((a): a is IpAddr => !!a);

function clusterIpsOf(spec: ServiceSpec): IpAddr[] {
  const texts = spec.clusterIPs?.length ? spec.clusterIPs : [spec.clusterIP];
  return validIps(texts);
}

function addClusterIpService(b: IndexBuilder, svc: Service, fqdn: string, ips: IpAddr[]): void {
  for (const ip of ips) {
    b.address(fqdn, ip);
    b.ptr(ip, fqdn);
  }
  for (const p of svc.spec.ports ?? []) {
    if (!p.name || !isDnsLabel(p.name)) continue; // the spec: SRV only for named ports
    b.at(`_${p.name}._${(p.protocol ?? 'TCP').toLowerCase()}.${fqdn}`).srv.push({ priority: 0, weight: 100, port: p.port, target: fqdn });
  }
}

/** A headless endpoint's own label: its hostname when it is a valid label, else its dashed IP (as CoreDNS). */
const endpointLabel = (hostname: string | undefined, ip: IpAddr): string => (hostname && isDnsLabel(hostname) ? hostname : dashedIp(ip));

function addHeadlessService(b: IndexBuilder, fqdn: string, subsets: EndpointSubset[], publishNotReady: boolean): void {
  const srvNames = new Set<string>();
  for (const subset of subsets) {
    const addrs = [...(subset.addresses ?? []), ...(publishNotReady ? subset.notReadyAddresses ?? [] : [])];
    const named = (subset.ports ?? []).filter((p) => p.name && isDnsLabel(p.name));
    for (const addr of addrs) {
      const ip = tryParseIp(addr.ip);
      if (!ip) continue;
      const host = `${endpointLabel(addr.hostname, ip)}.${fqdn}`;
      b.address(fqdn, ip);
      b.address(host, ip);
      b.ptr(ip, host);
      for (const p of named) {
        const srvName = `_${p.name}._${(p.protocol ?? 'TCP').toLowerCase()}.${fqdn}`;
        srvNames.add(srvName);
        const srv = b.at(srvName).srv;
        if (!srv.some((s) => s.target === host && s.port === p.port)) srv.push({ priority: 0, weight: 100, port: p.port, target: host });
      }
    }
  }
  // SRV weights share 100 among a name's targets (CoreDNS: 100 / count, at least 1).
  for (const name of srvNames) {
    const srv = b.at(name).srv;
    for (const s of srv) s.weight = Math.max(1, Math.floor(100 / srv.length));
  }
}

export function buildDnsIndex(sources: DnsSources, options: Partial<DnsIndexOptions> = {}, now = Date.now()): DnsIndex {
  const opts = { ...DEFAULT_INDEX_OPTIONS, ...options };
  const zone = normalizeName(opts.zone);
  const b = new IndexBuilder(zone);
  addZoneNames(b, opts.podRecords);
  const endpointsByKey = new Map<string, Endpoints>();
  for (const ep of sources.endpoints) endpointsByKey.set(`${ep.metadata.namespace ?? 'default'}/${ep.metadata.name}`, ep);
  for (const svc of sources.services) addService(b, svc, endpointsByKey.get(`${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`));
  const podIps = new Set<string>();
  if (opts.podRecords === 'verified') for (const pod of sources.pods ?? []) for (const key of podIpKeys(pod)) podIps.add(key);
  return { zone, ttl: opts.ttl, negativeTtl: opts.negativeTtl, podRecords: opts.podRecords, serial: Math.floor(now / 1000), names: b.names, podIps };
}

/** The names every index has: the apex, dns-version, svc and pod. */
export function addZoneNames(b: IndexBuilder, podRecords: PodRecordsMode): void {
  b.at(b.zone);
  b.at(`dns-version.${b.zone}`).txt.push(SCHEMA_VERSION);
  b.at(`svc.${b.zone}`);
  if (podRecords !== 'disabled') b.at(`pod.${b.zone}`);
}

/** `<ns>/<ip>` of each of a pod's IPs (podRecords 'verified'). */
export function podIpKeys(pod: Pod): string[] {
  const ns = pod.metadata.namespace ?? 'default';
  return validIps([pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p.ip)]).map((ip) => `${ns}/${formatIp(ip.bytes)}`);
}

/** The service's own name under the zone, undefined when its name or namespace is no DNS label. */
export function serviceFqdn(svc: Service, zone: string): string | undefined {
  const ns = svc.metadata.namespace ?? 'default';
  return isDnsLabel(svc.metadata.name) && isDnsLabel(ns) ? `${svc.metadata.name}.${ns}.svc.${zone}` : undefined;
}

/** One service's records (and its endpoints', when headless) into the builder. */
export function addService(b: IndexBuilder, svc: Service, ep: Endpoints | undefined): void {
  const fqdn = serviceFqdn(svc, b.zone);
  if (!fqdn) return;
  const spec = svc.spec as ServiceSpec;
  if (spec.type === 'ExternalName') {
    if (spec.externalName) b.at(fqdn).cname = normalizeName(spec.externalName);
  } else if (spec.clusterIP === 'None') {
    addHeadlessService(b, fqdn, ep?.subsets ?? [], spec.publishNotReadyAddresses === true);
  } else {
    const ips = clusterIpsOf(spec);
    if (ips.length) addClusterIpService(b, svc, fqdn, ips);
  }
}

/** A pod record `a-b-c-d.<ns>.pod.<zone>` per the index's mode, or undefined when it is none. */
function podRecord(index: DnsIndex, name: string): NameRecords | undefined {
  if (index.podRecords === 'disabled') return undefined;
  const labels = name.slice(0, -(index.zone.length + 1)).split('.');
  if (labels.length !== 3 || labels[2] !== 'pod') return undefined;
  const ip = parseDashedIp(labels[0]);
  if (!ip || !isDnsLabel(labels[1])) return undefined;
  if (index.podRecords === 'verified' && !index.podIps.has(`${labels[1]}/${formatIp(ip.bytes)}`)) return undefined;
  const r = emptyRecords();
  (ip.family === 4 ? r.a : r.aaaa).push(formatIp(ip.bytes));
  return r;
}

/** The records of a normalized name, undefined when the name does not exist (NXDOMAIN). */
export function lookupName(index: DnsIndex, name: string): NameRecords | undefined {
  const found = index.names.get(name);
  if (found) return found;
  if (!name.endsWith(`.pod.${index.zone}`)) return undefined;
  const pod = podRecord(index, name);
  if (pod) return pod;
  // `<ns>.pod.<zone>` exists as an empty non-terminal when any pod name under it could.
  const labels = name.slice(0, -(index.zone.length + 1)).split('.');
  if (index.podRecords === 'insecure' && labels.length === 2 && isDnsLabel(labels[0])) return emptyRecords();
  return undefined;
}
