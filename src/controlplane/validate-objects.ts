// Validators for the stored object kinds besides Service: Node, Pod, Endpoints and podwire's
// ClusterConfig. They build on validate.ts (same FieldError lists, same kube-apiserver wording) and
// check ClusterConfig with the allocators' own parsers, so the API can never accept a config that
// the allocators would later refuse at startup.
import { cidrOverlaps } from '../net/cidr.js';
import { isLinkLocalMulticast, isLinkLocalUnicast, isLoopback, isUnspecified, parseIp, unmap4 } from '../net/ip.js';
import { parseMac } from '../net/mac.js';
import { AllocError, parseNetwork } from './alloc/bitmap.js';
import { parsePodCidrConfig } from './alloc/cidr.js';
import { parseNodePortConfig } from './alloc/node-port.js';
import { defaultClusterDnsIp, parseServiceIpConfig } from './alloc/service-ip.js';
import { BACKENDS, DEFAULT_CLUSTER_CONFIG, NODE_ANNOTATIONS, type ClusterConfigSpec } from '../api/objects.js';
import {
  duplicate,
  forbidden,
  invalid,
  isRecord,
  oneOf,
  required,
  validateCidr,
  validateDns1035Label,
  validateDns1123Label,
  validateClusterDomain,
  validateDns1123Subdomain,
  validateIp,
  validateObjectMeta,
  validatePort,
  validatePortName,
  validateProtocol,
  type FieldError,
} from '../api/validate.js';

type Errors = FieldError[];

/** Syntax only ("aa:bb:cc:dd:ee:ff", either case); whether it is unicast is the caller's rule. */
export function isMac(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  try {
    parseMac(text);
    return true;
  } catch {
    return false;
  }
}

/** Absent is fine; otherwise a list of objects, each checked by `check` with its own field path. */
function eachObject(list: unknown, field: string, check: (item: Record<string, unknown>, f: string, i: number) => Errors): Errors {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) return [invalid(field, list, 'must be a list')];
  return list.flatMap((item: unknown, i) => (isRecord(item) ? check(item, `${field}[${i}]`, i) : [invalid(`${field}[${i}]`, item, 'must be an object')]));
}

function optional(value: unknown, field: string, check: (v: unknown, f: string) => Errors): Errors {
  return value === undefined ? [] : check(value, field);
}

function optionalString(value: unknown, field: string): Errors {
  return value === undefined || typeof value === 'string' ? [] : [invalid(field, value, 'must be a string')];
}

const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;
/** Free text and timestamps of node and pod conditions (podwire reads none of them, but stores them). */
const CONDITION_TEXT = ['reason', 'message', 'lastHeartbeatTime', 'lastTransitionTime', 'lastProbeTime'] as const;

function validateConditions(list: unknown, field: string): Errors {
  return eachObject(list, field, (c, f) => {
    const type = c.type === undefined || c.type === '' ? [required(`${f}.type`)] : optionalString(c.type, `${f}.type`);
    const text = CONDITION_TEXT.flatMap((key) => optionalString(c[key], `${f}.${key}`));
    return [...type, ...(c.status === undefined ? [required(`${f}.status`)] : oneOf(c.status, `${f}.status`, CONDITION_STATUSES)), ...text];
  });
}

/** Dual stack allows one address (or CIDR) per family; more would make "the pod's IPv4" ambiguous. */
function onePerFamily(values: unknown[], field: string, what: string): Errors {
  // Malformed entries are reported by the caller; for the rest, a valid IPv4 text never contains ':'.
  const families = values.filter((v): v is string => typeof v === 'string').map((v) => (v.includes(':') ? 6 : 4));
  return new Set(families).size < families.length ? [invalid(field, values, `may specify no more than one ${what} for each IP family`)] : [];
}

// ---- Node --------------------------------------------------------------------------------------

const ADDRESS_TYPES = ['InternalIP', 'ExternalIP', 'Hostname'] as const;

function validateNodeAnnotations(meta: unknown): Errors {
  const annotations = isRecord(meta) && isRecord(meta.annotations) ? meta.annotations : {};
  const f = (key: string) => `metadata.annotations[${key}]`;
  const errs = optional(annotations[NODE_ANNOTATIONS.publicIp], f(NODE_ANNOTATIONS.publicIp), validateIp);
  errs.push(...optional(annotations[NODE_ANNOTATIONS.dnsEndpoint], f(NODE_ANNOTATIONS.dnsEndpoint), validateIp));
  const mac = annotations[NODE_ANNOTATIONS.vtepMac];
  if (mac !== undefined && !isMac(mac)) errs.push(invalid(f(NODE_ANNOTATIONS.vtepMac), mac, 'must be a MAC address, e.g. "aa:bb:cc:dd:ee:ff"'));
  // The VTEP MAC becomes a unicast FDB and neighbour entry on every peer: a group address cannot.
  else if (mac !== undefined && (parseMac(mac)[0] & 1) !== 0) errs.push(invalid(f(NODE_ANNOTATIONS.vtepMac), mac, 'must be a unicast MAC address (the multicast bit of the first octet is set)'));
  errs.push(...oneOf(annotations[NODE_ANNOTATIONS.backend], f(NODE_ANNOTATIONS.backend), BACKENDS));
  return errs;
}

function validateNodeSpec(spec: unknown, field: string): Errors {
  if (spec === undefined || spec === null) return [];
  if (!isRecord(spec)) return [invalid(field, spec, 'must be an object')];
  const errs = optional(spec.podCIDR, `${field}.podCIDR`, validateCidr);
  const cidrs = spec.podCIDRs;
  if (cidrs !== undefined && !Array.isArray(cidrs)) errs.push(invalid(`${field}.podCIDRs`, cidrs, 'must be a list'));
  else if (Array.isArray(cidrs)) {
    cidrs.forEach((c: unknown, i) => errs.push(...validateCidr(c, `${field}.podCIDRs[${i}]`)));
    errs.push(...onePerFamily(cidrs, `${field}.podCIDRs`, 'CIDR'));
    if (spec.podCIDR !== undefined && cidrs.length > 0 && cidrs[0] !== spec.podCIDR) {
      errs.push(invalid(`${field}.podCIDRs[0]`, cidrs[0], `must match podCIDR ${JSON.stringify(spec.podCIDR)}`));
    }
  }
  if (spec.unschedulable !== undefined && typeof spec.unschedulable !== 'boolean') errs.push(invalid(`${field}.unschedulable`, spec.unschedulable, 'must be a boolean'));
  return errs;
}

function validateNodeStatus(status: unknown, field: string): Errors {
  if (status === undefined || status === null) return [];
  if (!isRecord(status)) return [invalid(field, status, 'must be an object')];
  const addresses = eachObject(status.addresses, `${field}.addresses`, (a, f) => {
    if (a.type === undefined) return [required(`${f}.type`)];
    const errs = oneOf(a.type, `${f}.type`, ADDRESS_TYPES);
    if (errs.length > 0) return errs;
    return a.type === 'Hostname' ? validateDns1123Subdomain(a.address, `${f}.address`) : validateIp(a.address, `${f}.address`);
  });
  return [...addresses, ...validateConditions(status.conditions, `${field}.conditions`)];
}

export function validateNode(body: unknown): Errors {
  if (!isRecord(body)) return [invalid('', body, 'must be a JSON object')];
  return [
    ...validateObjectMeta(body.metadata, { namespaced: false, name: validateDns1123Subdomain }),
    ...validateNodeAnnotations(body.metadata),
    ...validateNodeSpec(body.spec, 'spec'),
    ...validateNodeStatus(body.status, 'status'),
  ];
}

// ---- Pod ---------------------------------------------------------------------------------------

const POD_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const;

/** Port names must be unique across all containers: a Service's named targetPort resolves against the pod. */
function validateContainers(list: unknown, field: string): Errors {
  const containerNames = new Set<unknown>();
  const portNames = new Set<unknown>();
  return eachObject(list, field, (c, f) => {
    const errs = validateDns1123Label(c.name, `${f}.name`);
    if (typeof c.name === 'string' && containerNames.has(c.name)) errs.push(duplicate(`${f}.name`, c.name));
    containerNames.add(c.name);
    errs.push(...optionalString(c.image, `${f}.image`));
    errs.push(...eachObject(c.ports, `${f}.ports`, (p, pf) => {
      const portErrs = optional(p.name, `${pf}.name`, validatePortName);
      if (typeof p.name === 'string' && portNames.has(p.name)) portErrs.push(duplicate(`${pf}.name`, p.name));
      if (p.name !== undefined) portNames.add(p.name);
      return [...portErrs, ...validatePort(p.containerPort, `${pf}.containerPort`), ...validateProtocol(p.protocol, `${pf}.protocol`)];
    }));
    return errs;
  });
}

function validatePodStatus(status: unknown, field: string): Errors {
  if (status === undefined || status === null) return [];
  if (!isRecord(status)) return [invalid(field, status, 'must be an object')];
  const errs = oneOf(status.phase, `${field}.phase`, POD_PHASES);
  errs.push(...optional(status.podIP, `${field}.podIP`, validateIp), ...optional(status.hostIP, `${field}.hostIP`, validateIp));
  errs.push(...eachObject(status.podIPs, `${field}.podIPs`, (p, f) => validateIp(p.ip, `${f}.ip`)));
  if (Array.isArray(status.podIPs)) {
    const ips = status.podIPs.map((p: unknown) => (isRecord(p) ? p.ip : undefined));
    errs.push(...onePerFamily(ips, `${field}.podIPs`, 'IP'));
    if (status.podIP !== undefined && ips.length > 0 && ips[0] !== status.podIP) {
      errs.push(invalid(`${field}.podIPs[0].ip`, ips[0], `must be equal to podIP ${JSON.stringify(status.podIP)}`));
    }
  }
  errs.push(...validateConditions(status.conditions, `${field}.conditions`));
  return errs;
}

export function validatePod(body: unknown): Errors {
  if (!isRecord(body)) return [invalid('', body, 'must be a JSON object')];
  const errs = validateObjectMeta(body.metadata, { namespaced: true, name: validateDns1123Subdomain });
  if (!isRecord(body.spec)) errs.push(body.spec === undefined ? required('spec') : invalid('spec', body.spec, 'must be an object'));
  else errs.push(...optional(body.spec.nodeName, 'spec.nodeName', validateDns1123Subdomain), ...validateContainers(body.spec.containers, 'spec.containers'));
  return [...errs, ...validatePodStatus(body.status, 'status')];
}

// ---- Endpoints ---------------------------------------------------------------------------------

/**
 * Kubernetes refuses these as endpoint IPs: a proxy would forward service traffic to itself
 * (loopback, unspecified) or to an address that means something different on every node (link-local).
 */
function specialIpProblem(text: string): string | undefined {
  // An IPv4-mapped IPv6 address reaches the IPv4 host, so the IPv4 rules apply (as Go's net.IP does).
  const a = unmap4(parseIp(text));
  if (isUnspecified(a)) return 'may not be unspecified (0.0.0.0, ::)';
  if (isLoopback(a)) return 'may not be in the loopback range (127.0.0.0/8, ::1/128)';
  if (isLinkLocalUnicast(a)) return 'may not be in the link-local range (169.254.0.0/16, fe80::/10)';
  if (isLinkLocalMulticast(a)) return 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/16)';
  return undefined;
}

function validateEndpointAddress(a: Record<string, unknown>, f: string): Errors {
  const errs = validateIp(a.ip, `${f}.ip`);
  const problem = errs.length === 0 ? specialIpProblem(a.ip as string) : undefined;
  if (problem !== undefined) errs.push(invalid(`${f}.ip`, a.ip, problem));
  errs.push(...optional(a.nodeName, `${f}.nodeName`, validateDns1123Subdomain), ...optional(a.hostname, `${f}.hostname`, validateDns1123Label));
  if (a.targetRef !== undefined && !isRecord(a.targetRef)) errs.push(invalid(`${f}.targetRef`, a.targetRef, 'must be an object'));
  else if (isRecord(a.targetRef)) for (const key of ['kind', 'namespace', 'name', 'uid']) errs.push(...optionalString(a.targetRef[key], `${f}.targetRef.${key}`));
  return errs;
}

/** Names are required with more than one port: kube-proxy matches them to the Service's port names. */
function validateEndpointPorts(list: unknown, field: string): Errors {
  const names = new Set<unknown>();
  const requireName = Array.isArray(list) && list.length > 1;
  return eachObject(list, field, (p, f) => {
    const errs = requireName || p.name !== undefined ? validateDns1123Label(p.name, `${f}.name`) : [];
    if (typeof p.name === 'string' && p.name !== '' && names.has(p.name)) errs.push(duplicate(`${f}.name`, p.name));
    names.add(p.name);
    return [...errs, ...validatePort(p.port, `${f}.port`), ...validateProtocol(p.protocol, `${f}.protocol`)];
  });
}

export function validateEndpoints(body: unknown): Errors {
  if (!isRecord(body)) return [invalid('', body, 'must be a JSON object')];
  // The name is the Service's, so it follows the Service rule (DNS-1035 label).
  const errs = validateObjectMeta(body.metadata, { namespaced: true, name: validateDns1035Label });
  errs.push(...eachObject(body.subsets, 'subsets', (s, f) => [
    ...eachObject(s.addresses, `${f}.addresses`, validateEndpointAddress),
    ...eachObject(s.notReadyAddresses, `${f}.notReadyAddresses`, validateEndpointAddress),
    ...validateEndpointPorts(s.ports, `${f}.ports`),
  ]));
  return errs;
}

// ---- ClusterConfig -----------------------------------------------------------------------------

const SPEC_KEYS = Object.keys(DEFAULT_CLUSTER_CONFIG) as (keyof ClusterConfigSpec)[];
const MAX_VNI = 0xffffff;

/** Runs an allocator parser; its AllocError('config') becomes an Invalid error on `field`. */
function viaParser<T>(field: string, value: unknown, parse: () => T): { errs: Errors; result?: T } {
  try {
    return { errs: [], result: parse() };
  } catch (err) {
    if (!(err instanceof AllocError)) throw err;
    return { errs: [invalid(field, value, err.message)] };
  }
}

function validateNetworks(spec: Record<string, unknown>, field: string): Errors {
  const clusterCIDR = spec.clusterCIDR ?? DEFAULT_CLUSTER_CONFIG.clusterCIDR;
  const serviceCIDR = spec.serviceCIDR ?? DEFAULT_CLUSTER_CONFIG.serviceCIDR;
  const nodeMask = spec.nodeMask ?? DEFAULT_CLUSTER_CONFIG.nodeMask;
  const clusterErrs = validateCidr(clusterCIDR, `${field}.clusterCIDR`);
  const serviceErrs = validateCidr(serviceCIDR, `${field}.serviceCIDR`);
  const errs = [...clusterErrs, ...serviceErrs];
  const maskOk = typeof nodeMask === 'number' && Number.isInteger(nodeMask);
  if (!maskOk) errs.push(invalid(`${field}.nodeMask`, nodeMask, 'must be an integer'));
  // The parsers only run on CIDRs validateCidr accepted, so the same problem is not reported twice.
  const cluster = clusterErrs.length === 0 ? viaParser(`${field}.clusterCIDR`, clusterCIDR, () => parseNetwork(clusterCIDR, 'clusterCIDR')) : undefined;
  const services = serviceErrs.length === 0 ? viaParser(`${field}.serviceCIDR`, serviceCIDR, () => parseServiceIpConfig({ serviceCidr: serviceCIDR as string })) : undefined;
  errs.push(...(cluster?.errs ?? []), ...(services?.errs ?? []));
  if (services?.result) errs.push(...validateClusterDns(spec.clusterDNS, services.result, serviceCIDR as string, `${field}.clusterDNS`));
  // With the CIDR known good, whatever the pod CIDR parser refuses is the node mask (alone or against the prefix).
  if (cluster?.result && maskOk) errs.push(...viaParser(`${field}.nodeMask`, nodeMask, () => parsePodCidrConfig({ clusterCidr: clusterCIDR as string, nodeMask })).errs);
  // Pod and service routes would shadow each other: a ClusterIP that is also a pod IP is unreachable.
  if (cluster?.result && services?.result && cidrOverlaps(cluster.result.cidr, services.result.cidr.cidr)) {
    errs.push(invalid(`${field}.serviceCIDR`, serviceCIDR, `must not overlap the cluster CIDR ${cluster.result.text}`));
  }
  return errs;
}

/** clusterDNS: an allocatable address of the service CIDR; absent, the CIDR must have the default (10th) one. */
function validateClusterDns(value: unknown, layout: ReturnType<typeof parseServiceIpConfig>, serviceCIDR: string, field: string): Errors {
  if (value === undefined || value === null) {
    return defaultClusterDnsIp(layout) ? [] : [invalid(field, value, `service CIDR ${serviceCIDR} has no 10th address for the cluster DNS Service; give spec.clusterDNS (an address of the service CIDR)`)];
  }
  const ipErrs = validateIp(value, field);
  if (ipErrs.length > 0) return ipErrs;
  return viaParser(field, value, () => parseServiceIpConfig({ serviceCidr: serviceCIDR, clusterDns: value as string })).errs;
}

export function validateClusterConfig(body: unknown): Errors {
  if (!isRecord(body)) return [invalid('', body, 'must be a JSON object')];
  const errs = optional(body.apiVersion, 'apiVersion', (v, f) => oneOf(v, f, ['podwire.io/v1']));
  errs.push(...optional(body.kind, 'kind', (v, f) => oneOf(v, f, ['ClusterConfig'])));
  // One ClusterConfig per cluster: every component reads it by this fixed name.
  const singleton = (v: unknown, f: string): Errors => (v === 'cluster' ? [] : v === undefined || v === '' ? [required(f)] : [invalid(f, v, 'must be "cluster": the ClusterConfig is a singleton')]);
  errs.push(...validateObjectMeta(body.metadata, { namespaced: false, name: singleton }));
  const spec = body.spec ?? {};
  if (!isRecord(spec)) return [...errs, invalid('spec', spec, 'must be an object')];
  // A misspelt key would otherwise silently fall back to the default, which is hard to notice later.
  for (const key of Object.keys(spec)) if (!(SPEC_KEYS as string[]).includes(key)) errs.push(forbidden(`spec.${key}`, `unknown field; supported fields: ${SPEC_KEYS.join(', ')}`));
  errs.push(...validateNetworks(spec, 'spec'));
  if (spec.nodePortRange !== undefined) errs.push(...viaParser('spec.nodePortRange', spec.nodePortRange, () => parseNodePortConfig({ nodePortRange: spec.nodePortRange as string })).errs);
  errs.push(...oneOf(spec.backend, 'spec.backend', BACKENDS));
  const vni = spec.vni;
  if (vni !== undefined && (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 1 || vni > MAX_VNI)) errs.push(invalid('spec.vni', vni, `must be an integer between 1 and ${MAX_VNI}, inclusive`));
  errs.push(...optional(spec.vxlanPort, 'spec.vxlanPort', validatePort));
  errs.push(...optional(spec.clusterDomain, 'spec.clusterDomain', validateClusterDomain));
  return errs;
}

/** The full spec with defaults for absent fields; assumes validateClusterConfig accepted it. */
export function clusterConfigSpecWithDefaults(spec: unknown): ClusterConfigSpec {
  if (!isRecord(spec)) return { ...DEFAULT_CLUSTER_CONFIG };
  const given = SPEC_KEYS.filter((key) => spec[key] !== undefined && spec[key] !== null).map((key) => [key, spec[key]]);
  const full = { ...DEFAULT_CLUSTER_CONFIG, ...(Object.fromEntries(given) as Partial<ClusterConfigSpec>) };
  // The DNS address follows the service CIDR (a config stored by an older release has none).
  if (spec.clusterDNS === undefined || spec.clusterDNS === null) full.clusterDNS = clusterDnsDefaultOf(full.serviceCIDR);
  return full;
}

/** The 10th address of a service CIDR (10.96.0.10 when it has none: validateClusterConfig refuses such a config without clusterDNS). */
function clusterDnsDefaultOf(serviceCIDR: string): string {
  try {
    const layout = parseServiceIpConfig({ serviceCidr: serviceCIDR });
    return defaultClusterDnsIp(layout) ?? DEFAULT_CLUSTER_CONFIG.clusterDNS;
  } catch {
    return DEFAULT_CLUSTER_CONFIG.clusterDNS;
  }
}
