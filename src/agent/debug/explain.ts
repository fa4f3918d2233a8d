// POST /v1/debug/explain-hop {src, dst, port?, protocol, iif: pod|underlay|local, via?, srcNetnsHint?}:
// this node's part of one packet's path, from live state: the source pod's eth0 → its veth on the
// bridge (iif pod), the service the packet matches and its DNAT candidates (proxy model), the
// kernel's route lookup for the packet (RTM_GETROUTE with src, iif, protocol, port; a dropped
// packet's errno is the break), then the vxlan neighbour + FDB entry towards the peer, the direct
// next hop, or local delivery over the bridge to the destination pod. Answers {hops, next?}: next
// says on which node the packet continues. Read-only, IPv4 only.
import type { FastifyInstance } from 'fastify';
import { Handle } from '../../netlink/handle.js';
import { isIp, parseIp } from '../../net/ip.js';
import { cidrContains, parseCidr } from '../../net/cidr.js';
import { observeNetwork } from '../network/observe.js';
import { BRIDGE_NAME, VXLAN_NAME, type NetworkInput } from '../network/types.js';
import { findPodNetns, POD_IFNAME } from './pod-netns.js';
import { matchService, type ExplainHop } from './explain-service.js';
import { masqueradeAddress, masqueradeReason } from './explain-nat.js';
import { failure, isStatus, registeredInput, sendStatus } from './request.js';
import type { Agent } from '../agent.js';
import type { ServiceProxy } from '../service-proxy.js';

export interface ExplainRouteDeps {
  nodeName: string;
  agent: Pick<Agent, 'networkInput'>;
  handle: Handle;
  proxy: () => Pick<ServiceProxy, 'model'> | undefined;
}

export interface ExplainHopRequest {
  src: string;
  dst: string;
  port?: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  iif: 'pod' | 'underlay' | 'local';
  /** With iif underlay: how the previous node sent it (vxlan: it arrives decapsulated on podwire.1). */
  via?: 'vxlan' | 'direct';
  srcNetnsHint?: string;
}

export interface ExplainHopAnswer {
  hops: ExplainHop[];
  /** Where the packet continues; src when the lookup picked it (a node's own packet: the route's prefsrc). */
  next?: { node?: string; dst: string; port?: number; via: 'vxlan' | 'direct'; src?: string };
}

const IP_PROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;
const ERRNO: Record<number, string> = { 101: 'ENETUNREACH', 113: 'EHOSTUNREACH', 13: 'EACCES', 22: 'EINVAL', 18: 'EXDEV', 3: 'ESRCH', 1: 'EPERM' };
const RTN_LOCAL = 2;

export function validateExplainRequest(body: unknown): ExplainHopRequest | string {
  if (typeof body !== 'object' || body === null) return 'the body must be a JSON object {src, dst, port?, protocol, iif}';
  const b = body as Record<string, unknown>;
  if (!isIp(b.src, 4)) return `src ${JSON.stringify(b.src)} is not an IPv4 address (explain is IPv4 only)`;
  if (!isIp(b.dst, 4)) return `dst ${JSON.stringify(b.dst)} is not an IPv4 address (explain is IPv4 only)`;
  if (b.port !== undefined && (!Number.isInteger(b.port) || (b.port as number) < 1 || (b.port as number) > 65535)) return `port ${JSON.stringify(b.port)} is not 1-65535`;
  if (b.protocol !== 'TCP' && b.protocol !== 'UDP' && b.protocol !== 'SCTP') return `protocol ${JSON.stringify(b.protocol)} is not TCP, UDP or SCTP`;
  if (b.iif !== 'pod' && b.iif !== 'underlay' && b.iif !== 'local') return `iif ${JSON.stringify(b.iif)} is not pod, underlay or local`;
  if (b.via !== undefined && b.via !== 'vxlan' && b.via !== 'direct') return `via ${JSON.stringify(b.via)} is not vxlan or direct`;
  if (b.srcNetnsHint !== undefined && typeof b.srcNetnsHint !== 'string') return 'srcNetnsHint must be a string';
  return { src: b.src, dst: b.dst, protocol: b.protocol, iif: b.iif, ...(b.port !== undefined ? { port: b.port as number } : {}), ...(b.via ? { via: b.via } : {}), ...(b.srcNetnsHint ? { srcNetnsHint: b.srcNetnsHint } : {}) };
}

const inCidr = (ip: string, cidr: string): boolean => cidrContains(parseCidr(cidr), parseIp(ip));

/** The pod's eth0: its ifindex and its veth peer's (IFLA_LINK, an ifindex in the node's netns). */
function podEth0(netnsPath: string): { index: number; peer?: number } | undefined {
  const h = Handle.open({ netns: netnsPath });
  try {
    const eth = h.linkList().find((l) => l.name === POD_IFNAME);
    return eth && { index: eth.index, ...(eth.linkIndex !== undefined ? { peer: eth.linkIndex } : {}) };
  } finally {
    h.close();
  }
}

/** The pod's eth0 and its veth on cni0, as hops; false when the path breaks there. */
function podHops(deps: ExplainRouteDeps, input: NetworkInput, ip: string, hint: string | undefined, hop: (k: string, n: string, d: string, ok?: boolean) => boolean, towardsPod: boolean): boolean {
  const h = deps.handle;
  const netns = findPodNetns({ ip, podCidr: input.podCidr, node: deps.handle, ...(hint ? { hint } : {}) });
  if (!netns) return hop('pod', ip, `no netns on node ${deps.nodeName} has ${ip} on ${POD_IFNAME}: the pod is not running here (or its sandbox is gone)`, false);
  const eth = podEth0(netns);
  const peer = eth?.peer;
  const found = peer === undefined ? undefined : h.linkFind(peer);
  // The index is only meaningful in the netns eth0's peer lives in: it must point back at eth0.
  const veth = found && found.kind === 'veth' && found.linkIndex === eth?.index ? found : undefined;
  const bridge = h.linkFind(BRIDGE_NAME);
  const podHop = () => hop('pod', ip, `${POD_IFNAME} in ${netns}`);
  if (!towardsPod) podHop();
  if (!veth) return hop('veth', '-', `the host side of ${ip}'s ${POD_IFNAME} (ifindex ${peer ?? 'unknown'}) is not in node ${deps.nodeName}'s netns`, false);
  if (!bridge) return hop('bridge', BRIDGE_NAME, `bridge ${BRIDGE_NAME} does not exist on node ${deps.nodeName}; the agent creates it (see its log)`, false);
  if (veth.masterIndex !== bridge.index) return hop('veth', veth.name, `${veth.name} is not a port of ${BRIDGE_NAME} (master ${veth.masterIndex ?? 'none'})`, false);
  if (!veth.up) return hop('veth', veth.name, `${veth.name} is down`, false);
  if (!bridge.up) return hop('bridge', BRIDGE_NAME, `${BRIDGE_NAME} is down`, false);
  if (towardsPod) {
    hop('bridge', BRIDGE_NAME, `up; ${ip} is on this node's pod subnet`);
    hop('veth', veth.name, `port of ${BRIDGE_NAME}, up`);
    return podHop();
  }
  hop('veth', veth.name, `port of ${BRIDGE_NAME}, up`);
  return hop('bridge', BRIDGE_NAME, 'up');
}

export function explainHere(deps: ExplainRouteDeps, input: NetworkInput, req: ExplainHopRequest): ExplainHopAnswer {
  const hops: ExplainHop[] = [];
  const hop = (kind: string, name: string, detail: string, ok = true): boolean => (hops.push({ node: deps.nodeName, kind, name, detail, ok }), ok);
  const h = deps.handle;
  let dst = req.dst;
  let port = req.port;
  let iif: number | undefined;
  let iifName = '';
  if (req.iif === 'pod') {
    if (!inCidr(req.src, input.podCidr)) return (hop('pod', req.src, `${req.src} is not in node ${deps.nodeName}'s podCIDR ${input.podCidr}`, false), { hops });
    if (!podHops(deps, input, req.src, req.srcNetnsHint, hop, false)) return { hops };
    iif = h.linkFind(BRIDGE_NAME)?.index;
    iifName = BRIDGE_NAME;
  } else if (req.iif === 'underlay') {
    const dev = req.via === 'vxlan' ? h.linkFind(VXLAN_NAME) : h.linkFind(input.underlay.ifname);
    const devName = req.via === 'vxlan' ? VXLAN_NAME : input.underlay.ifname;
    if (!dev) return (hop('underlay', devName, `${devName} does not exist on node ${deps.nodeName}`, false), { hops });
    if (!dev.up) return (hop('underlay', devName, `${devName} is down on node ${deps.nodeName}`, false), { hops });
    hop('underlay', devName, req.via === 'vxlan' ? `arrives decapsulated on ${VXLAN_NAME}` : `arrives on ${devName} (${input.underlay.ip})`);
    iif = dev.index;
    iifName = devName;
  }
  // The node's own packet has its source from the first route lookup, before nat output's DNAT.
  let src = req.src;
  if (req.iif === 'local') {
    const first = h.routeGet({ dst, ipProto: IP_PROTO[req.protocol], ...(port !== undefined ? { dport: port } : {}) });
    if (first.ok && first.route.prefsrc) src = first.route.prefsrc;
  }
  let mark: string | undefined;
  let dnated = false;
  const model = deps.proxy()?.model();
  if (model) {
    const m = matchService(model, { src, dst, ...(port !== undefined ? { port } : {}), protocol: req.protocol, fromThisNode: req.iif === 'local' });
    if (m.matched) {
      for (const x of m.hops) if (!hop(x.kind, x.name, x.detail, x.ok)) return { hops };
      if (!m.to) return { hops };
      dst = m.to.ip;
      port = m.to.port;
      mark = m.mark;
      dnated = true;
    }
  }
  const look = h.routeGet({ dst, ...(req.iif !== 'local' ? { src: req.src } : {}), ...(iif !== undefined ? { iif } : {}), ipProto: IP_PROTO[req.protocol], ...(port !== undefined ? { dport: port } : {}) });
  if (!look.ok) return (hop('route', dst, `no route to ${dst} from ${src}${iif !== undefined ? ` arriving on ${iifName}` : ''}: ${ERRNO[look.errno] ?? `errno ${look.errno}`} — the kernel drops the packet`, false), { hops });
  const r = look.route;
  const dev = r.ifindex !== undefined ? h.linkFind(r.ifindex)?.name ?? `#${r.ifindex}` : '-';
  if (r.type === RTN_LOCAL) return (hop('route', dst, `local address of node ${deps.nodeName}: delivered to the node`), { hops });
  const via = `${r.gateway ? `via ${r.gateway} dev ${dev}` : `dev ${dev}`}${req.iif === 'local' && r.prefsrc ? ` src ${r.prefsrc}` : ''}`;
  // Postrouting: the source this packet leaves with (and the next nodes see).
  let from = src;
  const masquerade = (): boolean => {
    const reason = masqueradeReason({ src, dst, clusterCidr: input.clusterCidr, podCidr: input.podCidr, dnated, ...(mark ? { serviceMark: mark } : {}) });
    if (!reason) return true;
    const addrs = r.ifindex === undefined ? [] : h.addrList({ ifindex: r.ifindex, family: 4 }).map((a) => a.cidr);
    const snat = masqueradeAddress(addrs, r.gateway ?? dst);
    if (!snat) return hop('masquerade', dev, `${reason}, but ${dev} has no IPv4 address to masquerade to: the kernel drops the packet`, false);
    from = snat;
    return hop('masquerade', snat, `SNAT ${src} → ${snat} (${dev}'s address): ${reason}`);
  };
  const nextSrc = () => (from !== req.src || req.iif === 'local' ? { src: from } : {});
  if (dev === BRIDGE_NAME) {
    if (!inCidr(dst, input.podCidr)) return (hop('route', dst, `${via}: ${dst} is not in this node's podCIDR ${input.podCidr}, yet routed to ${BRIDGE_NAME}`, false), { hops });
    hop('route', dst, `${via} (this node's pods, ${input.podCidr})`);
    if (masquerade()) podHops(deps, input, dst, undefined, hop, true);
    return { hops };
  }
  const peers = input.peers;
  if (dev === VXLAN_NAME) {
    hop('route', dst, via);
    if (!masquerade()) return { hops };
    const obs = observeNetwork(h);
    const gw = r.gateway ?? dst;
    const neigh = obs.neighs.find((n) => n.ip === gw && n.ifname === VXLAN_NAME);
    const peerByCidr = peers.find((p) => inCidr(gw, p.podCidr));
    if (!neigh?.mac) return (hop('vxlan', peerByCidr?.name ?? gw, `no neighbour entry for ${gw} on ${VXLAN_NAME} (the peer's VTEP address): the kernel cannot address the inner frame`, false), { hops });
    const fdb = obs.fdb.find((f) => f.mac === neigh.mac && f.ifname === VXLAN_NAME);
    if (!fdb) return (hop('vxlan', peerByCidr?.name ?? gw, `neighbour ${gw} lladdr ${neigh.mac}, but no FDB entry for ${neigh.mac} on ${VXLAN_NAME}: the kernel does not know which underlay IP to send to`, false), { hops });
    const peer = peers.find((p) => p.publicIp === fdb.dst);
    if (!peer) return (hop('vxlan', peerByCidr?.name ?? fdb.dst, `neighbour ${gw} lladdr ${neigh.mac}, FDB dst ${fdb.dst}: no node of the cluster has that underlay address${peerByCidr ? ` (node ${peerByCidr.name}, whose VTEP ${gw} is, is at ${peerByCidr.publicIp}: a stale FDB entry)` : ''}`, false), { hops });
    hop('vxlan', peer.name, `neighbour ${gw} lladdr ${neigh.mac}, FDB ${neigh.mac} dst ${fdb.dst} → node ${peer.name}`);
    return { hops, next: { node: peer.name, dst, ...(port !== undefined ? { port } : {}), via: 'vxlan', ...nextSrc() } };
  }
  const nextIp = r.gateway ?? dst;
  const peer = peers.find((p) => p.publicIp === nextIp);
  const owner = peers.find((p) => inCidr(dst, p.podCidr));
  if (owner && peer?.name !== owner.name) {
    return (hop('route', dst, `${via}: ${dst} is a pod address of node ${owner.name} (${owner.podCidr}) but this route does not lead there (expected via ${VXLAN_NAME} or ${owner.publicIp}); is the route to ${owner.podCidr} missing?`, false), { hops });
  }
  if (inCidr(dst, input.podCidr)) return (hop('route', dst, `${via}: ${dst} is in this node's podCIDR ${input.podCidr} but the route does not go to ${BRIDGE_NAME}`, false), { hops });
  hop('route', dst, via);
  if (!masquerade()) return { hops };
  if (peer) {
    hop('underlay', peer.name, `next hop ${nextIp} on ${dev} is node ${peer.name}`);
    return { hops, next: { node: peer.name, dst, ...(port !== undefined ? { port } : {}), via: 'direct', ...nextSrc() } };
  }
  hop('exit', dst, `${via}: leaves the cluster here (no node of the cluster has ${nextIp})`);
  return { hops };
}

export function registerExplainRoutes(app: FastifyInstance, deps: ExplainRouteDeps): void {
  app.post('/v1/debug/explain-hop', async (request, reply) => {
    const req = validateExplainRequest(request.body);
    if (typeof req === 'string') return sendStatus(reply, failure(400, req));
    const input = registeredInput(deps);
    if (isStatus(input)) return sendStatus(reply, input);
    try {
      return explainHere(deps, input, req);
    } catch (e) {
      return sendStatus(reply, failure(500, `explain ${req.src} → ${req.dst} on node ${deps.nodeName}: ${(e as Error).message}`));
    }
  });
}
