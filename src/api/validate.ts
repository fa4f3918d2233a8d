// Input validation for the control plane API, Kubernetes style: every validator returns a list of
// field errors instead of throwing, so one bad body reports all its problems at once, and the
// messages read like kube-apiserver's ("Invalid value: ...", "Required value", "Unsupported value")
// so a kubectl user sees what they are used to. Inputs are `unknown`: they come from JSON bodies.
import { hostBitsSet, tryParseCidr } from '../net/cidr.js';
import { tryParseIp } from '../net/ip.js';

export interface FieldError {
  /** JSON path in Kubernetes form, e.g. "spec.ports[0].port". */
  field: string;
  message: string;
}

type Errors = FieldError[];

const SHOW_MAX = 256;

/** A value as messages quote it, cut short: a bad field may be megabytes of client text. */
const show = (v: unknown): string => {
  const text = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'undefined' : (JSON.stringify(v) ?? String(v));
  return text.length > SHOW_MAX ? `${text.slice(0, SHOW_MAX)}... (${text.length} characters)` : text;
};

export const required = (field: string): FieldError => ({ field, message: 'Required value' });
export const invalid = (field: string, value: unknown, detail: string): FieldError => ({ field, message: `Invalid value: ${show(value)}: ${detail}` });
export const notSupported = (field: string, value: unknown, supported: readonly string[]): FieldError => ({
  field,
  message: `Unsupported value: ${show(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
});
export const forbidden = (field: string, detail: string): FieldError => ({ field, message: `Forbidden: ${detail}` });
export const duplicate = (field: string, value: unknown): FieldError => ({ field, message: `Duplicate value: ${show(value)}` });
const tooLong = (field: string, max: number): FieldError => ({ field, message: `Too long: may not be more than ${max} bytes` });

/** "spec.ports[0].port: Invalid value: 0: ...; metadata.name: Required value" for logs and Status messages. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkString(value: unknown, field: string, max: number, re: RegExp, rule: string): Errors {
  if (value === undefined || value === '') return [required(field)];
  if (typeof value !== 'string') return [invalid(field, value, 'must be a string')];
  const errs: Errors = [];
  if (value.length > max) errs.push(tooLong(field, max));
  if (!re.test(value)) errs.push(invalid(field, value, rule));
  return errs;
}

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_LABEL_RE = new RegExp(`^${DNS1123_LABEL}$`);
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);
const DNS1035_LABEL_RE = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Namespaces, port names: RFC 1123 label, at most 63 characters. */
export function validateDns1123Label(value: unknown, field: string): Errors {
  return checkString(value, field, 63, DNS1123_LABEL_RE, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')");
}

/**
 * Service names: Kubernetes requires an RFC 1035 label (an RFC 1123 label that starts with a
 * letter) because the name becomes a DNS name and an environment variable prefix in pods.
 */
export function validateDns1035Label(value: unknown, field: string): Errors {
  return checkString(value, field, 63, DNS1035_LABEL_RE, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')");
}

/** Node and pod names, externalName: RFC 1123 subdomain, at most 253 characters. */
export function validateDns1123Subdomain(value: unknown, field: string): Errors {
  return checkString(value, field, 253, DNS1123_SUBDOMAIN_RE, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')");
}

/** The longest namespace label plus ".svc." must still fit a 253-character name: "<ns>.svc.<zone>" is every pod's first search domain. */
export const MAX_CLUSTER_DOMAIN = 253 - 63 - '.svc.'.length;

/** clusterDomain: a lowercase DNS name (RFC 1123 labels of at most 63 characters, no trailing dot). */
export function validateClusterDomain(value: unknown, field: string): Errors {
  const errs = validateDns1123Subdomain(value, field);
  if (errs.length > 0) return errs;
  const text = value as string;
  if (text.length > MAX_CLUSTER_DOMAIN) return [invalid(field, value, `must be at most ${MAX_CLUSTER_DOMAIN} characters, so that <namespace>.svc.<domain> stays a valid DNS name`)];
  if (text.split('.').some((label) => label.length > 63)) return [invalid(field, value, 'each dot-separated label must be at most 63 characters')];
  return [];
}

const QUALIFIED_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_RULE = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')";

/** A label or annotation key: [prefix/]name, prefix a DNS subdomain, name at most 63 characters. */
export function validateQualifiedName(value: unknown, field: string): Errors {
  if (typeof value !== 'string' || value === '') return [invalid(field, value, 'name part must be non-empty')];
  const parts = value.split('/');
  if (parts.length > 2) return [invalid(field, value, `a qualified name must be NAME or PREFIX/NAME; ${QUALIFIED_NAME_RE.source}`)];
  const name = parts[parts.length - 1];
  const errs: Errors = [];
  if (parts.length === 2) {
    if (parts[0] === '') errs.push(invalid(field, value, 'prefix part must be non-empty'));
    else errs.push(...validateDns1123Subdomain(parts[0], field).map((e) => ({ field, message: e.message.replace(/^Invalid value: "[^"]*"/, `Invalid value: ${show(value)}: prefix part`) })));
  }
  if (name === '') errs.push(invalid(field, value, 'name part must be non-empty'));
  else if (name.length > 63) errs.push(invalid(field, value, 'name part must be no more than 63 characters'));
  else if (!QUALIFIED_NAME_RE.test(name)) errs.push(invalid(field, value, QUALIFIED_RULE));
  return errs;
}

export function validateLabelValue(value: unknown, field: string): Errors {
  if (typeof value !== 'string') return [invalid(field, value, 'must be a string')];
  if (value.length > 63) return [invalid(field, value, 'must be no more than 63 characters')];
  if (!LABEL_VALUE_RE.test(value)) return [invalid(field, value, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")];
  return [];
}

/** metadata.labels or spec.selector: a string → string map with Kubernetes key and value rules. */
export function validateLabels(labels: unknown, field: string): Errors {
  if (labels === undefined || labels === null) return [];
  if (!isRecord(labels)) return [invalid(field, labels, 'must be an object of string keys to string values')];
  return Object.entries(labels).flatMap(([k, v]) => [...validateQualifiedName(k, field), ...validateLabelValue(v, `${field}[${k}]`)]);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

export function validatePort(value: unknown, field: string): Errors {
  if (value === undefined) return [required(field)];
  if (!isInt(value) || value < 1 || value > 65535) return [invalid(field, value, 'must be between 1 and 65535, inclusive')];
  return [];
}

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Absent means TCP (the Kubernetes default); the value is case-sensitive as in Kubernetes. */
export function validateProtocol(value: unknown, field: string): Errors {
  if (value === undefined) return [];
  return (PROTOCOLS as readonly unknown[]).includes(value) ? [] : [notSupported(field, value, PROTOCOLS)];
}

/**
 * An IP address in canonical-enough form: no zone ("%eth0"), no prefix, no leading zeros in IPv4
 * (Kubernetes rejects "010.0.0.1": other parsers read it as octal).
 */
export function validateIp(value: unknown, field: string, family?: 4 | 6): Errors {
  if (value === undefined || value === '') return [required(field)];
  const ip = tryParseIp(value);
  if (ip === undefined) return [invalid(field, value, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)')];
  if (family !== undefined && ip.family !== family) return [invalid(field, value, `must be an IPv${family} address`)];
  return [];
}

/** A CIDR whose host bits are zero ("10.244.1.0/24", not "10.244.1.5/24"). */
export function validateCidr(value: unknown, field: string): Errors {
  if (value === undefined || value === '') return [required(field)];
  const c = tryParseCidr(value);
  if (c === undefined) return [invalid(field, value, 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)')];
  if (hostBitsSet(c)) return [invalid(field, value, 'must be a network address: the bits after the prefix length must be zero')];
  return [];
}

const IANA_SVC_NAME_RE = /^[-a-z0-9]+$/;

/** A named port (IANA_SVC_NAME, RFC 6335): at most 15 characters, a-z 0-9 '-', a letter, no '--'. */
export function validatePortName(value: unknown, field: string): Errors {
  if (value === undefined || value === '') return [required(field)];
  if (typeof value !== 'string') return [invalid(field, value, 'must be a string')];
  const errs: Errors = [];
  if (value.length > 15) errs.push(invalid(field, value, 'must be no more than 15 characters'));
  if (!IANA_SVC_NAME_RE.test(value)) errs.push(invalid(field, value, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"));
  if (value.includes('--')) errs.push(invalid(field, value, 'must not contain consecutive hyphens'));
  if (!/[a-z]/.test(value)) errs.push(invalid(field, value, 'must contain at least one letter (a-z)'));
  if (value.startsWith('-') || value.endsWith('-')) errs.push(invalid(field, value, 'must not begin or end with a hyphen'));
  return errs;
}

/** targetPort: a port number or the name of a container port. Absent means "same as port". */
export function validateTargetPort(value: unknown, field: string): Errors {
  if (value === undefined) return [];
  if (typeof value === 'string') return /^\d+$/.test(value) ? validatePort(Number(value), field) : validatePortName(value, field);
  return validatePort(value, field);
}

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
export const TRAFFIC_POLICIES = ['Cluster', 'Local'] as const;
export const SESSION_AFFINITIES = ['None', 'ClientIP'] as const;
/** kube-apiserver's MaxClientIPServiceAffinitySeconds: one day; the default is 10800 (3 hours). */
export const MAX_AFFINITY_SECONDS = 86400;

export function oneOf(value: unknown, field: string, supported: readonly string[]): Errors {
  if (value === undefined) return [];
  return supported.includes(value as string) ? [] : [notSupported(field, value, supported)];
}

export function validateServiceType(value: unknown, field: string): Errors {
  return oneOf(value, field, SERVICE_TYPES);
}

export function validateTrafficPolicy(value: unknown, field: string): Errors {
  return oneOf(value, field, TRAFFIC_POLICIES);
}

/** spec.sessionAffinity and spec.sessionAffinityConfig.clientIP.timeoutSeconds (only with ClientIP). */
export function validateSessionAffinity(spec: Record<string, unknown>, field: string): Errors {
  const errs = oneOf(spec.sessionAffinity, `${field}.sessionAffinity`, SESSION_AFFINITIES);
  const config = spec.sessionAffinityConfig;
  if (config === undefined || config === null) return errs;
  const cfgField = `${field}.sessionAffinityConfig`;
  if (spec.sessionAffinity !== 'ClientIP') return [...errs, forbidden(cfgField, '`sessionAffinityConfig` may only be set when `sessionAffinity` is ClientIP')];
  if (!isRecord(config)) return [...errs, invalid(cfgField, config, 'must be an object')];
  if (config.clientIP !== undefined && !isRecord(config.clientIP)) return [...errs, invalid(`${cfgField}.clientIP`, config.clientIP, 'must be an object')];
  const clientIp = config.clientIP;
  const timeout = isRecord(clientIp) ? clientIp.timeoutSeconds : undefined;
  if (timeout === undefined) return errs;
  if (!isInt(timeout) || timeout < 1 || timeout > MAX_AFFINITY_SECONDS) {
    errs.push(invalid(`${cfgField}.clientIP.timeoutSeconds`, timeout, `must be greater than 0 and less than or equal to ${MAX_AFFINITY_SECONDS}`));
  }
  return errs;
}

export interface MetaRules {
  namespaced: boolean;
  /** The rule for metadata.name: services use DNS-1035 labels, nodes and pods DNS-1123 subdomains. */
  name: (value: unknown, field: string) => Errors;
}

export function validateObjectMeta(meta: unknown, rules: MetaRules, field = 'metadata'): Errors {
  if (!isRecord(meta)) return [required(field)];
  const errs = rules.name(meta.name, `${field}.name`);
  if (rules.namespaced && meta.namespace !== undefined) errs.push(...validateDns1123Label(meta.namespace, `${field}.namespace`));
  if (!rules.namespaced && meta.namespace !== undefined && meta.namespace !== '') errs.push(forbidden(`${field}.namespace`, 'not allowed on this type'));
  errs.push(...validateLabels(meta.labels, `${field}.labels`));
  errs.push(...validateAnnotations(meta.annotations, `${field}.annotations`));
  // Set by the server; a client may send them back (a GET's object, edited), but only as text.
  for (const key of ['uid', 'resourceVersion', 'creationTimestamp']) {
    const v = meta[key];
    if (v !== undefined && v !== null && typeof v !== 'string') errs.push(invalid(`${field}.${key}`, v, 'must be a string'));
  }
  return errs;
}

/** kube-apiserver's TotalAnnotationSizeLimitB: keys and values together. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

function validateAnnotations(annotations: unknown, field: string): Errors {
  if (annotations === undefined || annotations === null) return [];
  if (!isRecord(annotations)) return [invalid(field, annotations, 'must be an object of string keys to string values')];
  const errs: Errors = [];
  let bytes = 0;
  for (const [k, v] of Object.entries(annotations)) {
    errs.push(...validateQualifiedName(k, field));
    if (typeof v !== 'string') errs.push(invalid(`${field}[${k}]`, v, 'must be a string'));
    else bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (bytes > MAX_ANNOTATIONS_BYTES) errs.push({ field, message: `Too long: must have at most ${MAX_ANNOTATIONS_BYTES} bytes` });
  return errs;
}

const EXTERNAL_TYPES = new Set(['NodePort', 'LoadBalancer']);

/** spec.ports: names (required and unique when more than one), numbers, protocols, (port, protocol) unique. */
function validateServicePorts(spec: Record<string, unknown>, field: string, type: string): Errors {
  const ports = spec.ports;
  const headless = spec.clusterIP === 'None';
  if (ports === undefined || (Array.isArray(ports) && ports.length === 0)) {
    return type === 'ExternalName' || headless ? [] : [required(field)];
  }
  if (!Array.isArray(ports)) return [invalid(field, ports, 'must be a list')];
  const errs: Errors = [];
  const names = new Set<unknown>();
  const keys = new Set<string>();
  ports.forEach((p: unknown, i) => {
    const f = `${field}[${i}]`;
    if (!isRecord(p)) return void errs.push(invalid(f, p, 'must be an object'));
    if (ports.length > 1 || p.name !== undefined) {
      errs.push(...validateDns1123Label(p.name, `${f}.name`));
      if (typeof p.name === 'string' && p.name !== '' && names.has(p.name)) errs.push(duplicate(`${f}.name`, p.name));
      names.add(p.name);
    }
    errs.push(...validatePort(p.port, `${f}.port`), ...validateProtocol(p.protocol, `${f}.protocol`), ...validateTargetPort(p.targetPort, `${f}.targetPort`));
    const key = `${String(p.port)}/${String(p.protocol ?? 'TCP')}`;
    if (keys.has(key)) errs.push(duplicate(f, { port: p.port, protocol: p.protocol ?? 'TCP' }));
    keys.add(key);
    if (p.nodePort !== undefined && p.nodePort !== 0) {
      if (!EXTERNAL_TYPES.has(type)) errs.push(forbidden(`${f}.nodePort`, 'may not be used when `type` is ' + JSON.stringify(type)));
      else errs.push(...validatePort(p.nodePort, `${f}.nodePort`));
    }
  });
  return errs;
}

function validateClusterIp(spec: Record<string, unknown>, field: string, type: string): Errors {
  const ip = spec.clusterIP;
  if (ip === undefined || ip === '') return [];
  if (type === 'ExternalName') return [forbidden(field, 'may not be set for ExternalName services')];
  if (ip === 'None') return EXTERNAL_TYPES.has(type) ? [invalid(field, ip, `may not be set to 'None' for ${type} services`)] : [];
  return validateIp(ip, field);
}

/** spec.clusterIPs: the allocator rewrites it from clusterIP; what a client sends must still be IPs (or "None"). */
function validateClusterIps(ips: unknown, field: string): Errors {
  if (ips === undefined || ips === null) return [];
  if (!Array.isArray(ips)) return [invalid(field, ips, 'must be a list of IP addresses')];
  return ips.flatMap((ip: unknown, i) => (ip === 'None' ? [] : validateIp(ip, `${field}[${i}]`)));
}

function validateExternal(spec: Record<string, unknown>, field: string, type: string): Errors {
  const errs: Errors = [];
  if (type === 'ExternalName') {
    // A trailing dot (a fully qualified name) is accepted, as Kubernetes does.
    const name = typeof spec.externalName === 'string' ? spec.externalName.replace(/\.$/, '') : spec.externalName;
    errs.push(...validateDns1123Subdomain(name, `${field}.externalName`));
  } else if (spec.externalName !== undefined && typeof spec.externalName !== 'string') {
    errs.push(invalid(`${field}.externalName`, spec.externalName, 'must be a string'));
  }
  const externalIps = spec.externalIPs ?? [];
  if (!Array.isArray(externalIps)) errs.push(invalid(`${field}.externalIPs`, externalIps, 'must be a list of IP addresses'));
  else externalIps.forEach((ip: unknown, i) => errs.push(...validateIp(ip, `${field}.externalIPs[${i}]`)));
  if (spec.loadBalancerIP !== undefined && spec.loadBalancerIP !== '') {
    if (type !== 'LoadBalancer') errs.push(forbidden(`${field}.loadBalancerIP`, 'may only be used when `type` is LoadBalancer'));
    else errs.push(...validateIp(spec.loadBalancerIP, `${field}.loadBalancerIP`));
  }
  if (spec.externalTrafficPolicy !== undefined) {
    const exposed = EXTERNAL_TYPES.has(type) || (Array.isArray(externalIps) && externalIps.length > 0);
    if (!exposed) errs.push(invalid(`${field}.externalTrafficPolicy`, spec.externalTrafficPolicy, 'may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)'));
    else errs.push(...validateTrafficPolicy(spec.externalTrafficPolicy, `${field}.externalTrafficPolicy`));
  }
  return errs;
}

/** A core/v1 Service spec (the subset podwire implements). `type` absent means ClusterIP. */
export function validateServiceSpec(spec: unknown, field = 'spec'): Errors {
  if (!isRecord(spec)) return [required(field)];
  const errs = validateServiceType(spec.type, `${field}.type`);
  const type = typeof spec.type === 'string' ? spec.type : 'ClusterIP';
  errs.push(
    ...validateServicePorts(spec, `${field}.ports`, type),
    ...validateClusterIp(spec, `${field}.clusterIP`, type),
    ...validateClusterIps(spec.clusterIPs, `${field}.clusterIPs`),
    ...validateLabels(spec.selector, `${field}.selector`),
    ...validateSessionAffinity(spec, field),
    ...validateExternal(spec, field, type),
    ...validateTrafficPolicy(spec.internalTrafficPolicy, `${field}.internalTrafficPolicy`),
  );
  if (spec.publishNotReadyAddresses !== undefined && typeof spec.publishNotReadyAddresses !== 'boolean') {
    errs.push(invalid(`${field}.publishNotReadyAddresses`, spec.publishNotReadyAddresses, 'must be true or false'));
  }
  return errs;
}

/** A whole Service body: metadata (name a DNS-1035 label, as Kubernetes requires) and spec. */
export function validateService(body: unknown): Errors {
  if (!isRecord(body)) return [invalid('', body, 'must be a JSON object')];
  return [...validateObjectMeta(body.metadata, { namespaced: true, name: validateDns1035Label }), ...validateServiceSpec(body.spec), ...validateServiceStatus(body.status)];
}

/** status.loadBalancer.ingress[]: what a load balancer controller reports (podwire stores it as sent). */
function validateServiceStatus(status: unknown, field = 'status'): Errors {
  if (status === undefined || status === null) return [];
  if (!isRecord(status)) return [invalid(field, status, 'must be an object')];
  const lb = status.loadBalancer;
  if (lb === undefined || lb === null) return [];
  if (!isRecord(lb)) return [invalid(`${field}.loadBalancer`, lb, 'must be an object')];
  const ingress = lb.ingress;
  if (ingress === undefined || ingress === null) return [];
  const f = `${field}.loadBalancer.ingress`;
  if (!Array.isArray(ingress)) return [invalid(f, ingress, 'must be a list')];
  return ingress.flatMap((item: unknown, i): Errors => {
    if (!isRecord(item)) return [invalid(`${f}[${i}]`, item, 'must be an object')];
    const errs = item.ip === undefined ? [] : validateIp(item.ip, `${f}[${i}].ip`);
    if (item.hostname !== undefined) errs.push(...validateDns1123Subdomain(item.hostname, `${f}[${i}].hostname`));
    return errs;
  });
}
