// The end-to-end suite's rules oracle for the IPVS service proxy (`podwire-agent --proxy-mode
// ipvs`, run in the kernel VM: test/vm/proxy-e2e-ipvs.long.ts). It reads the kernel, never
// src/proxy/ipvs: `ipvsadm -Ln` (virtual services, real servers with forwarding method, weight and
// connection counts), `ipvsadm -Lcn` (connections and persistence templates), `ipvsadm -Ln
// --stats`, the addresses on podwire-ipvs0 (`ip -j addr`) and the ipvs- chains, maps and sets of
// `nft -j list table inet podwire`. A service address's "targets" are its real servers with a
// weight above 0 (a weight-0 one is draining: no new connection picks it).
import type { Service } from '../../src/api/objects.js';
import { checkRefused, inNetns, sameList } from './proxy-e2e.js';
import { nftView, keyText, type NftView } from './proxy-e2e-nft.js';
import { IPVS_DEVICE, hasLink } from './proxy-e2e-modes.js';
import type { ProxyOracle } from './proxy-e2e-oracle.js';

export interface RealServerView {
  address: string;
  port: number;
  forward: string;
  weight: number;
  active: number;
  inactive: number;
}

export interface VirtualServiceView {
  /** "tcp/10.96.0.10:80". */
  key: string;
  proto: string;
  address: string;
  port: number;
  scheduler: string;
  /** `persistent N` (ClientIP affinity). */
  persistence?: number;
  dests: RealServerView[];
}

export interface IpvsView {
  services: Map<string, VirtualServiceView>;
  /** Addresses on podwire-ipvs0; undefined when the device does not exist. */
  bound: string[] | undefined;
  nft: NftView;
}

export const vsKey = (proto: string, address: string, port: number): string => `${proto.toLowerCase()}/${address}:${port}`;
const hostPort = (s: string): [string, number] => {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
};

/** `ipvsadm -Ln` parsed: "TCP  10.96.0.10:80 rr persistent 600" lines and their "  -> 10.244.1.2:8080 Masq 1 0 0" real servers. */
export function parseIpvsList(text: string): Map<string, VirtualServiceView> {
  const out = new Map<string, VirtualServiceView>();
  let cur: VirtualServiceView | undefined;
  for (const line of text.split('\n')) {
    const vs = /^(TCP|UDP|SCTP)\s+(\S+):(\d+)\s+(\S+)(.*)$/.exec(line);
    if (vs) {
      const [, proto, address, port, scheduler, rest] = vs;
      const persistent = /persistent (\d+)/.exec(rest!);
      cur = { key: vsKey(proto!, address!, Number(port)), proto: proto!.toLowerCase(), address: address!, port: Number(port), scheduler: scheduler!, dests: [], ...(persistent ? { persistence: Number(persistent[1]) } : {}) };
      out.set(cur.key, cur);
      continue;
    }
    const rs = /^\s+->\s+(\d+\.\d+\.\d+\.\d+):(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (rs && cur) cur.dests.push({ address: rs[1]!, port: Number(rs[2]), forward: rs[3]!, weight: Number(rs[4]), active: Number(rs[5]), inactive: Number(rs[6]) });
  }
  return out;
}

export function boundAddresses(netns: string): string[] | undefined {
  if (!hasLink(netns, IPVS_DEVICE)) return undefined;
  const links = JSON.parse(inNetns(netns, 'ip', ['-j', '-4', 'addr', 'show', 'dev', IPVS_DEVICE]) || '[]') as { addr_info: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).sort();
}

export function ipvsView(netns: string): IpvsView {
  return { services: parseIpvsList(inNetns(netns, 'ipvsadm', ['-Ln'])), bound: boundAddresses(netns), nft: nftView(netns) };
}

/** One line of `ipvsadm -Lcn`: a connection or (state NONE, client port 0) a persistence template. */
export interface IpvsConn {
  proto: string;
  state: string;
  client: string;
  virtual: string;
  dest: string;
}

export function ipvsConns(netns: string): IpvsConn[] {
  const out: IpvsConn[] = [];
  for (const line of inNetns(netns, 'ipvsadm', ['-Lcn']).split('\n')) {
    // A persistence template is listed with client port 0 (protocol IP for a fwmark service).
    const m = /^(TCP|UDP|SCTP|IP)\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(line);
    if (m) out.push({ proto: m[1]!.toLowerCase(), state: m[2]!, client: m[3]!, virtual: m[4]!, dest: m[5]! });
  }
  return out;
}

/** `ipvsadm -Ln --stats`: the total connections (Conns) of each virtual service ("tcp/ip:port") and real server ("tcp/ip:port -> ip:port"). */
export function ipvsConnStats(netns: string): Map<string, number> {
  const out = new Map<string, number>();
  let cur = '';
  for (const line of inNetns(netns, 'ipvsadm', ['-Ln', '--stats']).split('\n')) {
    const vs = /^(TCP|UDP|SCTP)\s+(\S+):(\d+)\s+(\d+)/.exec(line);
    if (vs) {
      cur = vsKey(vs[1]!, vs[2]!, Number(vs[3]));
      out.set(cur, Number(vs[4]));
      continue;
    }
    const rs = /^\s+->\s+(\S+)\s+(\d+)/.exec(line);
    if (rs && cur) out.set(`${cur} -> ${rs[1]}`, Number(rs[2]));
  }
  return out;
}

const FIXED_CHAINS = ['ipvs-prerouting', 'ipvs-output', 'ipvs-postrouting', 'ipvs-mark-cluster', 'ipvs-mark', 'ipvs-reject'];
const MAPS = ['ipvs-services', 'ipvs-no-endpoints'];
const SETS = ['ipvs-bound-ips', 'ipvs-hairpin'];

/** Real servers that take new connections (weight > 0), "ip:port" sorted; undefined without the virtual service. */
export function liveTargets(v: IpvsView, key: string): string[] | undefined {
  const s = v.services.get(key);
  return s?.dests.filter((d) => d.weight > 0 && d.forward === 'Masq').map((d) => `${d.address}:${d.port}`).sort();
}

const nftKey = (proto: string, address: string, port: number) => `${address} . ${proto} . ${port}`;

/** The @ipvs-services element of an address: "goto ipvs-mark", "accept", …; undefined without one. */
export function serviceVerdict(v: IpvsView, map: string, proto: string, address: string, port: number): string | undefined {
  const e = v.nft.maps.get(map)?.find((x) => x.key === nftKey(proto, address, port));
  if (!e) return undefined;
  const verdict = e.verdict as Record<string, { target?: string } | null>;
  const [kind] = Object.keys(verdict);
  return verdict[kind!]?.target ? `${kind} ${verdict[kind!]!.target}` : kind;
}

/** A ClusterIP / external / LB IP is served when it is bound on the device, has the nft element and the virtual service. */
function serviceIpTargets(v: IpvsView, ip: string, proto: string, port: number): string[] | undefined {
  if (!v.bound?.includes(`${ip}/32`) || serviceVerdict(v, 'ipvs-services', proto, ip, port) === undefined) return undefined;
  return liveTargets(v, vsKey(proto, ip, port));
}

/** The virtual services of a NodePort (one per node address). */
export function nodePortServices(v: IpvsView, proto: string, nodePort: number): VirtualServiceView[] {
  return [...v.services.values()].filter((s) => s.proto === proto && s.port === nodePort);
}

/** The targets of a NodePort when every node address's virtual service has the same ones (else a list naming the mismatch). */
function nodePortTargets(v: IpvsView, proto: string, nodePort: number): string[] | undefined {
  const list = nodePortServices(v, proto, nodePort);
  if (list.length === 0) return undefined;
  const each = list.map((s) => (serviceVerdict(v, 'ipvs-services', proto, s.address, nodePort) === undefined ? ['no nft element'] : liveTargets(v, s.key)!));
  return each.every((t) => sameList(t, each[0]!)) ? each[0] : [`differ: ${JSON.stringify(each)}`];
}

function nodePortChain(v: IpvsView, proto: string, nodePort: number): string | undefined {
  const verdicts = new Set(nodePortServices(v, proto, nodePort).map((s) => serviceVerdict(v, 'ipvs-services', proto, s.address, nodePort)));
  const [only] = verdicts;
  return verdicts.size === 1 ? only?.replace(/^goto /, '') : undefined;
}

/** A service's addresses: ClusterIPs, external IPs, the LB IP. */
const addressesOf = (svc: Service): string[] => [...(svc.spec.clusterIPs ?? [svc.spec.clusterIP ?? '']), ...(svc.spec.externalIPs ?? []), ...(svc.spec.loadBalancerIP ? [svc.spec.loadBalancerIP] : [])].filter(Boolean);

/** The nft elements ("map: key") and device addresses naming these addresses and NodePorts. */
function elementsFor(v: IpvsView, addresses: readonly string[], nodePorts: readonly number[]): string[] {
  const out: string[] = [];
  for (const [name, entries] of v.nft.maps) {
    if (!name.startsWith('ipvs-')) continue;
    for (const e of entries) {
      const [addr, , port] = e.key.split(' . ');
      if (addresses.includes(addr!) || nodePorts.includes(Number(port))) out.push(`${name}: ${e.key}`);
    }
  }
  for (const e of v.nft.sets.get('ipvs-bound-ips') ?? []) if (addresses.includes(e)) out.push(`ipvs-bound-ips: ${e}`);
  for (const a of v.bound ?? []) if (addresses.includes(a.replace(/\/32$/, ''))) out.push(`${IPVS_DEVICE}: ${a}`);
  return out.sort();
}

/** The node's policy-Local NodePort as it should be: its node's virtual services hold the local endpoints, unmarked (accept); elsewhere new connections are dropped. */
function localPolicy(v: IpvsView, nodePort: number, here: boolean, endpoints: readonly string[]): boolean {
  const list = nodePortServices(v, 'tcp', nodePort);
  if (list.length === 0) return false;
  return list.every((s) => here
    ? sameList(liveTargets(v, s.key), endpoints) && serviceVerdict(v, 'ipvs-services', 'tcp', s.address, nodePort) === 'accept' && serviceVerdict(v, 'ipvs-no-endpoints', 'tcp', s.address, nodePort) === undefined
    : s.dests.length === 0 && serviceVerdict(v, 'ipvs-no-endpoints', 'tcp', s.address, nodePort) === 'drop');
}

export const ipvsOracle: ProxyOracle<IpvsView> = {
  view: ipvsView,
  idle: (v) => v.services.size === 0 && sameList(v.bound, []) &&
    sameList([...v.nft.chains.keys()].filter((n) => n.startsWith('ipvs-')).sort(), [...FIXED_CHAINS].sort()) &&
    MAPS.every((m) => v.nft.maps.get(m)?.length === 0) && SETS.every((s) => v.nft.sets.get(s)?.length === 0) &&
    ![...v.nft.chains.keys(), ...v.nft.maps.keys(), ...v.nft.sets.keys()].some((n) => /^(svc|ep|aff)-/.test(n)),
  // Its nft objects and, as the "chains" of each service, its virtual services.
  names: (v) => [...[...v.nft.chains.keys(), ...v.nft.maps.keys(), ...v.nft.sets.keys()].filter((n) => n.startsWith('ipvs-')), ...v.services.keys()].sort(),

  serviceIpTargets,
  nodePortTargets,
  serviceIpChain: (v, ip, proto, port) => serviceVerdict(v, 'ipvs-services', proto, ip, port)?.replace(/^goto /, ''),
  nodePortChain,
  // NodePorts, external and LB IPs under policy Cluster are always marked for masquerade.
  externalChain: /^ipvs-mark$/,

  checkSpreadRules(t, v, ip, endpoints) {
    const s = v.services.get(vsKey('tcp', ip, 80));
    t.ok(s?.scheduler === 'rr' && s.persistence === undefined, `node1: virtual service ${ip}:80 with scheduler rr, not persistent (${s?.scheduler} ${s?.persistence ?? ''})`);
    t.same(s?.dests.map((d) => `${d.address}:${d.port} ${d.forward} ${d.weight}`).sort(), endpoints.map((e) => `${e} Masq 1`), 'three real servers, masquerade forwarding (NAT), weight 1');
    t.equal(serviceVerdict(v, 'ipvs-services', 'tcp', ip, 80), 'goto ipvs-mark-cluster', '@ipvs-services sends it to ipvs-mark-cluster (masquerade what does not come from a pod)');
  },

  affinity: {
    store: 'persistence templates',
    ready: (v, ip, endpoints) => {
      const s = v.services.get(vsKey('tcp', ip, 80));
      return s?.persistence === 600 && sameList(liveTargets(v, s.key), endpoints);
    },
    // A persistent service's template: the client with port 0, the real server chosen. Its state
    // column is no mark of it: kernel 6.1 lists it ASSURED (older ones NONE).
    endpoint: (netns, ip, clientIp) => {
      const conns = ipvsConns(netns);
      const hits = conns.filter((c) => c.client === `${clientIp}:0` && hostPort(c.virtual)[0] === ip).map((c) => c.dest);
      const near = conns.filter((c) => c.state === 'NONE' || c.client.endsWith(':0') || hostPort(c.virtual)[0] === ip && c.state !== 'TIME_WAIT');
      return hits.length === 1 ? hits[0]! : `${hits.length} templates (${hits.join(', ')}) in ${conns.length} entries; NONE, port-0 or live ones for ${ip}: ${JSON.stringify(near.slice(0, 8))}`;
    },
    // The records are the persistent virtual services' (their templates go with them).
    stores: (netns) => [...ipvsView(netns).services.values()].filter((s) => s.persistence !== undefined).map((s) => s.key),
  },

  localNodePortFromNode: { gap: 'a node\'s own connection to its policy-Local NodePort without a local endpoint is dropped, not sent cluster-wide: the NodePort is one virtual service per node address, whose real servers are the local endpoints only, so it cannot pick by source (kube-proxy\'s IPVS mode has the same limit)' },
  localPolicy: (v, node, nodePort, local) => localPolicy(v, nodePort, node.name === local.node, local.endpoints),
  clusterPolicy: (v, nodePort, endpoints) => sameList(nodePortTargets(v, 'tcp', nodePort), endpoints) && nodePortChain(v, 'tcp', nodePort) === 'ipvs-mark',

  noEndpoints: {
    title: '5. a service without endpoints refuses TCP at once (ECONNREFUSED well under 1 s), never a timeout',
    rules: '@ipvs-no-endpoints elements and virtual services without real servers',
    ready: (v, ip, nodePort) => {
      const np = nodePortServices(v, 'tcp', nodePort);
      return serviceVerdict(v, 'ipvs-no-endpoints', 'tcp', ip, 80) === 'goto ipvs-reject' && v.services.get(vsKey('tcp', ip, 80))?.dests.length === 0 &&
        np.length > 0 && np.every((s) => s.dests.length === 0 && serviceVerdict(v, 'ipvs-no-endpoints', 'tcp', s.address, nodePort) === 'goto ipvs-reject');
    },
    // The ClusterIP is a local address of every node (bound on podwire-ipvs0), so the pod's SYN is
    // routed to the node itself, where ipvs-prerouting's reject answers it before IPVS.
    unrouted: (t, { c, client }, ip) => checkRefused(t, c, 'client pod → ClusterIP (node1 without a route to the service CIDR: the address is local)', client.netns, `${ip}:80`),
  },

  checkHairpinRules(t, v, _svc, pod) {
    const masq = (v.nft.chains.get('ipvs-postrouting') ?? []).some((r) => JSON.stringify(r).includes('"@ipvs-hairpin"') && JSON.stringify(r).includes('"masquerade"'));
    t.ok(masq && (v.nft.sets.get('ipvs-hairpin') ?? []).includes(`${pod.ip} . ${pod.ip}`), `node1: @ipvs-hairpin holds ${pod.ip} . ${pod.ip}, which ipvs-postrouting masquerades`);
  },

  serviceObjects(v, svc) {
    const addresses = addressesOf(svc);
    const ports = (svc.spec.ports ?? []).map((p) => ({ proto: (p.protocol ?? 'TCP').toLowerCase(), port: p.port, nodePort: p.nodePort }));
    const chains = [...v.services.values()].filter((s) => ports.some((p) => p.proto === s.proto && ((addresses.includes(s.address) && s.port === p.port) || s.port === p.nodePort))).map((s) => s.key).sort();
    return { chains, rules: elementsFor(v, addresses, ports.flatMap((p) => (p.nodePort ? [p.nodePort] : []))) };
  },
  chainPerService: true,
  // The nft elements keyed by one of these virtual services.
  referencesTo: (v, names) => {
    const keys = new Set(names.map((n) => /^(\w+)\/(.+):(\d+)$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => nftKey(m[1]!, m[2]!, Number(m[3]))));
    return [...v.nft.maps].filter(([name]) => name.startsWith('ipvs-')).flatMap(([name, entries]) => entries.filter((e) => keys.has(e.key)).map((e) => `${name}: ${keyText(e.key)}`));
  },

  resync: {
    breakage: '`nft delete chain` of our ipvs-prerouting hook chain',
    entry: 'ipvs-prerouting',
    services: 'ipvs-services',
    jumps: (netns) => (nftView(netns).chains.get('ipvs-prerouting') ?? []).some((r) => JSON.stringify(r).includes('"@ipvs-services"')),
    flush: (netns) => void inNetns(netns, 'nft', ['-f', '-'], 'flush chain inet podwire ipvs-prerouting\ndelete chain inet podwire ipvs-prerouting\n'),
  },
};
