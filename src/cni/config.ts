// The network configuration on stdin: the reference bridge plugin's options with `type: "podwire"`,
// validated completely before anything is touched. Without an `ipam` section the node subnet comes
// from the agent's subnet.env (flannel's convention), with flannel's defaults for that mode.
import path from 'node:path';
import { networkCidr } from '../net/cidr.js';
import { parseRangeSets } from '../ipam/range.js';
import { NETWORK_NAME_MAX, NETWORK_NAME_RE } from '../ipam/store.js';
import type { RangeSet } from '../ipam/types.js';
import type { ControlPlaneConf } from './register.js';
import { parseClusterDns, type ClusterDnsConf } from './cluster-dns.js';
import {
  bad, checkCidr, checkIp, optBool, optString, parseControlPlane, parseDns, parseMtu, parsePluginType, parseRequests,
  parseValidAttachments, PLUGIN_NAME_RE,
} from './config-fields.js';
import { CniError, CNI_ERR } from './errors.js';
import { readSmallFile, type FileReadError } from './files.js';
import { SUPPORTED_CNI_VERSIONS } from './version.js';
import { isObject, parsePrevResult, type Result } from './result.js';

export const DEFAULT_SUBNET_FILE = '/run/podwire/subnet.env';
export const DEFAULT_DATA_DIR = '/var/lib/podwire/networks';

export interface RouteConf {
  dst: string;
  gw?: string;
}

export interface IpamConf {
  /** 'podwire' = the built-in allocator; anything else names a delegated IPAM plugin in CNI_PATH. */
  type: string;
  ranges: RangeSet[];
  routes: RouteConf[];
  dataDir: string;
  /** The ipam section as given, for delegates. */
  raw: Record<string, unknown>;
}

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  /** Per-pod masquerade entries (masq.ts); never when ipMasqByNode. */
  ipMasq: boolean;
  /**
   * subnet.env says PODWIRE_IPMASQ=true: the node agent masquerades this node's pods with its own
   * node-level rules (flannel's FLANNEL_IPMASQ), so the plugin writes no per-pod rule even when the
   * config asks for ipMasq: pod start and stop cost no firewall exec. GC still removes per-pod
   * entries of this network left from before (cmdGc).
   */
  ipMasqByNode: boolean;
  mtu: number;
  hairpinMode: boolean;
  ipam: IpamConf;
  dns?: Record<string, unknown>;
  /** clusterDNS/clusterDomain: the result's dns for pods (cluster-dns.ts) when there is no explicit dns. */
  clusterDns?: ClusterDnsConf;
  /** runtimeConfig.mac / args.cni.mac / CNI_ARGS MAC: the container interface's MAC. */
  mac?: string;
  /** runtimeConfig.ips / args.cni.ips / CNI_ARGS IP: requested addresses (plain IPs). */
  requestedIps: string[];
  prevResult?: Result;
  /** GC: cni.dev/valid-attachments */
  validAttachments?: { containerId: string; ifname: string }[];
  /** The whole config object, to pass to delegated plugins unchanged. */
  raw: Record<string, unknown>;
  /** Where the node subnet came from when there was no ipam section. */
  subnetFile?: string;
  /** Register pods with the control plane (see register.ts). */
  controlPlane?: ControlPlaneConf;
}

/** Options of the reference bridge plugin that podwire does not implement: refused, never ignored. */
const UNSUPPORTED = ['vlan', 'vlanTrunk', 'preserveDefaultVlan', 'promiscMode', 'macspoofchk', 'enabledad',
  'disableContainerInterface', 'forceAddress', 'portIsolation'];


export function parseRoutes(v: unknown, where: string): RouteConf[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw bad(`config field ${where} must be a list of {"dst": CIDR, "gw"?: IP}`);
  return v.map((r, i) => {
    if (!isObject(r) || typeof r.dst !== 'string') throw bad(`config field ${where}[${i}] needs "dst" (a CIDR)`);
    const route: RouteConf = { dst: checkCidr(r.dst, `${where}[${i}].dst`) };
    if (r.gw !== undefined) {
      if (typeof r.gw !== 'string') throw bad(`config field ${where}[${i}].gw must be an IP address`);
      route.gw = checkIp(r.gw, `${where}[${i}].gw`);
    }
    return route;
  });
}

/** host-local's `ranges` (or its legacy single-range `subnet`/`rangeStart`/`rangeEnd`/`gateway`). */
function parseRanges(ipam: Record<string, unknown>): RangeSet[] {
  let ranges: unknown = ipam.ranges;
  if (ranges === undefined && ipam.subnet !== undefined) {
    ranges = [[{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]];
  }
  if (!Array.isArray(ranges) || ranges.length === 0 || !ranges.every((s) => Array.isArray(s) && s.length > 0)) {
    throw bad('config field ipam.ranges must be a non-empty list of non-empty lists of ranges',
      'e.g. "ranges": [[{"subnet": "10.244.1.0/24"}]]');
  }
  const sets: RangeSet[] = ranges.map((set: unknown[], i) => set.map((r, j) => {
    if (!isObject(r) || typeof r.subnet !== 'string') throw bad(`config field ipam.ranges[${i}][${j}] needs "subnet" (a CIDR)`);
    const range: RangeSet[number] = { subnet: r.subnet };
    for (const k of ['rangeStart', 'rangeEnd', 'gateway'] as const) {
      if (r[k] === undefined) continue;
      if (typeof r[k] !== 'string') throw bad(`config field ipam.ranges[${i}][${j}].${k} must be an IP address`);
      range[k] = r[k] as string;
    }
    return range;
  }));
  try {
    parseRangeSets(sets);
  } catch (err) {
    throw bad(`invalid ipam ranges: ${(err as Error).message}`);
  }
  return sets;
}

export interface SubnetEnv {
  network: string;
  subnet: string;
  mtu?: number;
  ipMasq?: boolean;
}

/** flannel's subnet.env convention with PODWIRE_ names: KEY=VALUE lines. */
export function parseSubnetEnv(text: string, file: string): SubnetEnv {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*?)\s*$/.exec(line);
    if (m) vars.set(m[1], m[2].replace(/^"(.*)"$/, '$1'));
  }
  const need = (k: string) => {
    const v = vars.get(k);
    if (!v) throw bad(`${file} has no ${k}`, 'the podwire agent writes this file; is it running on this node?');
    return v;
  };
  const env: SubnetEnv = { network: checkCidr(need('PODWIRE_NETWORK'), `${file} PODWIRE_NETWORK`), subnet: checkCidr(need('PODWIRE_SUBNET'), `${file} PODWIRE_SUBNET`) };
  try {
    // The same checks as an ipam section's range: the bridge gets the gateway address of this one.
    parseRangeSets([[{ subnet: networkCidr(env.subnet), gateway: env.subnet.split('/')[0] }]], 'subnet');
  } catch (err) {
    throw bad(`${file} PODWIRE_SUBNET ${JSON.stringify(env.subnet)}: ${(err as Error).message}`, 'the podwire agent writes this file from the node\'s podCIDR; check the node\'s spec.podCIDR');
  }
  const mtu = vars.get('PODWIRE_MTU');
  if (mtu !== undefined) {
    if (!/^\d+$/.test(mtu) || +mtu < 68 || +mtu > 65535) throw bad(`${file}: PODWIRE_MTU ${JSON.stringify(mtu)} is not an MTU (68-65535)`);
    env.mtu = Number(mtu);
  }
  const masq = vars.get('PODWIRE_IPMASQ');
  if (masq !== undefined) {
    if (masq !== 'true' && masq !== 'false') throw bad(`${file}: PODWIRE_IPMASQ must be true or false`);
    env.ipMasq = masq === 'true';
  }
  return env;
}

/** subnet.env is a few lines; anything bigger is not one. */
export const SUBNET_FILE_MAX = 64 << 10;

function readSubnetEnv(file: string, field: string): SubnetEnv {
  let text: string;
  try {
    text = readSmallFile(file, SUBNET_FILE_MAX).toString('utf8');
  } catch (err) {
    const code = (err as FileReadError).code;
    if (code === 'ENOTREG' || code === 'EFBIG') {
      throw bad(`config field ${field}: ${(err as Error).message}`, 'subnetFile must name the subnet.env the podwire agent writes');
    }
    throw new CniError(code === 'ENOENT' ? CNI_ERR.TRY_AGAIN_LATER : CNI_ERR.IO, `cannot read the node subnet from ${file}: ${code}`,
      'the config has no "ipam" section, so the node subnet comes from the podwire agent; start the agent, or add an "ipam" section');
  }
  return parseSubnetEnv(text, file);
}

function parseIpam(o: Record<string, unknown>, subnetEnv: SubnetEnv | undefined): IpamConf {
  if (subnetEnv) {
    // Without an ipam section the reservations go to dataDir (top level), e.g. one per node when
    // several nodes share a machine (the netns lab).
    const dataDir = optString(o, 'dataDir') ?? DEFAULT_DATA_DIR;
    if (!dataDir.startsWith('/')) throw bad('config field dataDir must be an absolute path');
    const gateway = subnetEnv.subnet.split('/')[0];
    return {
      type: 'podwire',
      ranges: [[{ subnet: networkCidr(subnetEnv.subnet), gateway }]],
      routes: [{ dst: subnetEnv.network }],
      dataDir,
      raw: {},
    };
  }
  const ipam = o.ipam;
  if (!isObject(ipam)) throw bad('config field ipam must be an object');
  const type = optString(ipam, 'type', 'ipam.type') ?? 'podwire';
  if (!PLUGIN_NAME_RE.test(type)) throw bad(`config field ipam.type ${JSON.stringify(type)} is not a plugin name`);
  if (type !== 'podwire') return { type, ranges: [], routes: [], dataDir: '', raw: ipam };
  const dataDir = optString(ipam, 'dataDir', 'ipam.dataDir') ?? DEFAULT_DATA_DIR;
  if (!path.isAbsolute(dataDir)) throw bad(`config field ipam.dataDir ${JSON.stringify(dataDir)} must be an absolute path`);
  return { type, ranges: parseRanges(ipam), routes: parseRoutes(ipam.routes, 'ipam.routes'), dataDir, raw: ipam };
}

export interface ParseOptions {
  cniArgs?: Map<string, string>;
  /** Read subnet.env from here instead of the config's subnetFile (tests). */
  subnetFileOverride?: string;
}

/** Parse and validate stdin. Throws CniError: 6 (not JSON), 1 (version), 2 (unsupported option), 7. */
export function parseConfig(stdin: string, opts: ParseOptions = {}): NetConf {
  let o: unknown;
  try {
    o = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI_ERR.DECODE, `cannot decode the network config on stdin: ${(err as Error).message}`, 'the runtime must pass the network config as JSON on stdin');
  }
  if (!isObject(o)) throw new CniError(CNI_ERR.DECODE, 'the network config on stdin is not a JSON object');
  const cniVersion = o.cniVersion;
  if (typeof cniVersion !== 'string' || !SUPPORTED_CNI_VERSIONS.includes(cniVersion)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `incompatible CNI version ${JSON.stringify(cniVersion)}`,
      `podwire supports cniVersion ${SUPPORTED_CNI_VERSIONS.join(', ')}`);
  }
  const name = o.name;
  if (typeof name !== 'string' || !NETWORK_NAME_RE.test(name) || name.length > NETWORK_NAME_MAX) {
    throw bad(`invalid network name ${JSON.stringify(name)}`, 'a network name is 1-128 letters, digits, "_", "." or "-", starting with a letter or digit');
  }
  for (const key of UNSUPPORTED) {
    if (o[key] !== undefined && o[key] !== false) {
      throw new CniError(CNI_ERR.UNSUPPORTED_FIELD, `config field ${key} is not supported by podwire`, 'remove it, or use the reference bridge plugin for this network');
    }
  }
  const fromFile = o.ipam === undefined;
  let subnetFile: string | undefined;
  let subnetEnv: SubnetEnv | undefined;
  if (fromFile) {
    subnetFile = opts.subnetFileOverride ?? optString(o, 'subnetFile') ?? DEFAULT_SUBNET_FILE;
    subnetEnv = readSubnetEnv(subnetFile, 'subnetFile');
  }
  const bridge = optString(o, 'bridge') ?? 'cni0';
  if (Buffer.byteLength(bridge) > 15 || /[\s/:]/.test(bridge)) throw bad(`config field bridge ${JSON.stringify(bridge)} is not an interface name (1-15 characters)`);
  const isDefaultGateway = optBool(o, 'isDefaultGateway', fromFile);
  const requests = parseRequests(o, opts.cniArgs ?? new Map());
  const conf: NetConf = {
    cniVersion,
    name,
    type: parsePluginType(o),
    bridge,
    isDefaultGateway,
    isGateway: optBool(o, 'isGateway', fromFile) || isDefaultGateway,
    ipMasq: optBool(o, 'ipMasq', subnetEnv ? subnetEnv.ipMasq !== true : false) && subnetEnv?.ipMasq !== true,
    ipMasqByNode: subnetEnv?.ipMasq === true,
    mtu: parseMtu(o, subnetEnv?.mtu ?? 1500),
    hairpinMode: optBool(o, 'hairpinMode', fromFile),
    ipam: parseIpam(o, subnetEnv),
    mac: requests.mac,
    requestedIps: requests.ips,
    validAttachments: parseValidAttachments(o),
    raw: o,
    subnetFile,
    controlPlane: parseControlPlane(o),
  };
  const dns = parseDns(o);
  if (dns) conf.dns = dns;
  const clusterDns = parseClusterDns(o);
  if (clusterDns) conf.clusterDns = clusterDns;
  if (o.prevResult !== undefined) conf.prevResult = parsePrevResult(o.prevResult);
  return conf;
}
