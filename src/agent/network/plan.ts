// plan(desired, observed) → the ordered, minimal steps that turn the kernel into the desired node
// network. Pure: an intact kernel gives []. Order, and why:
//   links (create, recreate, set)  objects below need their device
//   addresses (deletes, then adds) deleting a primary IPv4 address also drops its secondaries
//                                  (promote_secondaries is off by default), so a stale primary goes
//                                  before the gateway is added next to it
//   neigh + FDB adds               the VTEP entries exist before a route can send into them
//   route replaces                 replace, never delete+add: traffic moves without a gap
//   route deletes → neigh/FDB deletes → link deletes
// When podwire.1 is (re)created or deleted, everything the kernel held on it vanishes with it, so
// those observed objects are neither kept nor deleted one by one.
import { cidrContains, parseCidr } from '../../net/cidr.js';
import { parseIp } from '../../net/ip.js';
import { VXLAN_NAME, type DesiredNetwork, type DesiredRoute, type ObservedNetwork, type Step } from './types.js';

type ObservedLink = ObservedNetwork['links'][number];
type DesiredVxlan = NonNullable<DesiredNetwork['vxlan']>;
/** keep: objects on it stay valid; fresh: (re)created, starts empty; remove/absent: no device. */
type VxlanFate = 'keep' | 'fresh' | 'remove' | 'absent';

function planBridge(desired: DesiredNetwork, observed: ObservedNetwork): Step[] {
  const want = desired.bridge;
  const have = observed.links.find((l) => l.name === want.name);
  // cni0 is never deleted, not even when it has the wrong kind: pods hang off it.
  if (!have) return [{ op: 'bridgeAdd', name: want.name, mtu: want.mtu }];
  const set: Extract<Step, { op: 'linkSet' }> = { op: 'linkSet', name: want.name };
  if (have.mtu !== want.mtu) set.mtu = want.mtu;
  if (!have.up) set.up = true;
  return set.mtu !== undefined || set.up !== undefined ? [set] : [];
}

/** Why the existing device cannot be kept: attributes the kernel does not let us change. */
function immutableDiff(want: DesiredVxlan, have: ObservedLink): string | undefined {
  if (have.kind !== 'vxlan') return `kind ${have.kind ?? 'unknown'} is not vxlan`;
  const vx = have.vxlan;
  if (!vx) return 'no vxlan attributes reported';
  const diffs: string[] = [];
  if (vx.vni !== want.vni) diffs.push(`vni ${vx.vni} → ${want.vni}`);
  if (vx.port !== want.port) diffs.push(`dstport ${vx.port} → ${want.port}`);
  if (vx.local !== want.local) diffs.push(`local ${vx.local ?? 'none'} → ${want.local}`);
  if (vx.devIfname !== want.devIfname) diffs.push(`dev ${vx.devIfname ?? vx.devIndex ?? 'none'} → ${want.devIfname}`);
  if (vx.learning) diffs.push('learning on → off');
  return diffs.length ? diffs.join(', ') : undefined;
}

function vxlanAddStep(want: DesiredVxlan): Step {
  const { name, vni, port, local, devIfname, mtu, mac } = want;
  return { op: 'vxlanAdd', name, vni, port, local, devIfname, mtu, mac };
}

function planVxlan(desired: DesiredNetwork, observed: ObservedNetwork): { create: Step[]; del: Step[]; fate: VxlanFate } {
  const want = desired.vxlan;
  const have = observed.links.find((l) => l.name === VXLAN_NAME);
  if (!want) {
    if (!have) return { create: [], del: [], fate: 'absent' };
    return { create: [], del: [{ op: 'linkDel', name: VXLAN_NAME, why: 'no peer is reached through vxlan with this backend' }], fate: 'remove' };
  }
  if (!have) return { create: [vxlanAddStep(want)], del: [], fate: 'fresh' };
  const why = immutableDiff(want, have);
  if (why) return { create: [{ op: 'linkDel', name: want.name, why: `recreate: ${why}` }, vxlanAddStep(want)], del: [], fate: 'fresh' };
  const set: Extract<Step, { op: 'linkSet' }> = { op: 'linkSet', name: want.name };
  if (have.mtu !== want.mtu) set.mtu = want.mtu;
  if ((have.mac ?? '').toLowerCase() !== want.mac) set.mac = want.mac;
  if (!have.up) set.up = true;
  const changed = set.mtu !== undefined || set.mac !== undefined || set.up !== undefined;
  return { create: changed ? [set] : [], del: [], fate: 'keep' };
}

const isIpv4Cidr = (cidr: string) => !cidr.includes(':');
const ipOf = (cidr: string) => cidr.slice(0, cidr.indexOf('/'));

/**
 * IPv6 addresses are left alone (the kernel puts a link-local one on every device that goes up).
 * On podwire.1 every other IPv4 address goes: the device is ours. On cni0 only those inside the
 * cluster CIDR go (a stale gateway from an earlier podCIDR); anything else was put there by
 * someone else and is not ours to remove.
 */
function planAddrs(desired: DesiredNetwork, observed: ObservedNetwork, fate: VxlanFate): Step[] {
  const wanted: { ifname: string; cidr: string; removable: (cidr: string) => boolean }[] = [
    { ifname: desired.bridge.name, cidr: desired.bridge.gatewayCidr, removable: (c) => cidrContains(parseCidr(desired.clusterCidr), parseIp(ipOf(c))) },
  ];
  if (desired.vxlan && fate !== 'remove') wanted.push({ ifname: desired.vxlan.name, cidr: desired.vxlan.addressCidr, removable: () => true });
  const dels: Step[] = [];
  const adds: Step[] = [];
  for (const w of wanted) {
    const have = fate === 'fresh' && w.ifname === VXLAN_NAME ? [] : observed.addrs.filter((a) => a.ifname === w.ifname);
    for (const a of have) {
      if (a.cidr !== w.cidr && isIpv4Cidr(a.cidr) && w.removable(a.cidr)) dels.push({ op: 'addrDel', ifname: w.ifname, cidr: a.cidr });
    }
    if (!have.some((a) => a.cidr === w.cidr)) adds.push({ op: 'addrAdd', ifname: w.ifname, cidr: w.cidr });
  }
  return [...dels, ...adds];
}

const sameRoute = (a: DesiredRoute, b: ObservedNetwork['routes'][number]) =>
  a.gateway === b.gateway && a.ifname === b.ifname && a.onlink === b.onlink;

function planRoutes(desired: DesiredNetwork, routes: ObservedNetwork['routes']): { replace: Step[]; del: Step[] } {
  const byDst = new Map<string, ObservedNetwork['routes']>();
  for (const r of routes) byDst.set(r.dst, [...(byDst.get(r.dst) ?? []), r]);
  const replace: Step[] = [];
  for (const route of desired.routes) {
    const have = byDst.get(route.dst) ?? [];
    if (have.length !== 1 || !sameRoute(route, have[0])) replace.push({ op: 'routeReplace', route: { ...route } });
  }
  const wantedDsts = new Set(desired.routes.map((r) => r.dst));
  const del: Step[] = [...byDst.keys()].filter((dst) => !wantedDsts.has(dst)).map((dst) => ({ op: 'routeDel', dst }));
  return { replace, del };
}

function planNeighs(desired: DesiredNetwork, neighs: ObservedNetwork['neighs']): { add: Step[]; del: Step[] } {
  const have = new Map(neighs.map((n) => [n.ip, n]));
  const add: Step[] = desired.neighs
    .filter((n) => (have.get(n.ip)?.mac ?? '').toLowerCase() !== n.mac)
    .map((n) => ({ op: 'neighReplace', ifname: n.ifname, ip: n.ip, mac: n.mac }));
  const wanted = new Set(desired.neighs.map((n) => n.ip));
  const del: Step[] = neighs.filter((n) => !wanted.has(n.ip)).map((n) => ({ op: 'neighDel', ifname: n.ifname, ip: n.ip }));
  return { add, del };
}

function planFdb(desired: DesiredNetwork, fdb: ObservedNetwork['fdb']): { add: Step[]; del: Step[] } {
  const key = (e: { mac: string; dst: string }) => `${e.mac.toLowerCase()} ${e.dst}`;
  const have = new Set(fdb.map(key));
  const wanted = new Set(desired.fdb.map(key));
  const add: Step[] = desired.fdb.filter((e) => !have.has(key(e))).map((e) => ({ op: 'fdbAppend', ...e }));
  const del: Step[] = fdb.filter((e) => !wanted.has(key(e))).map((e) => ({ op: 'fdbDel', ifname: e.ifname, mac: e.mac, dst: e.dst }));
  return { add, del };
}

export function plan(desired: DesiredNetwork, observed: ObservedNetwork): Step[] {
  const bridge = planBridge(desired, observed);
  const vxlan = planVxlan(desired, observed);
  // Objects on a device that is being recreated or deleted vanish with it.
  const survives = (ifname: string | undefined) => ifname !== VXLAN_NAME || vxlan.fate === 'keep';
  const routes = planRoutes(desired, observed.routes.filter((r) => survives(r.ifname)));
  const neighs = planNeighs(desired, observed.neighs.filter((n) => n.ifname === VXLAN_NAME && survives(n.ifname)));
  const fdb = planFdb(desired, observed.fdb.filter((e) => e.ifname === VXLAN_NAME && survives(e.ifname)));
  return [
    ...bridge, ...vxlan.create,
    ...planAddrs(desired, observed, vxlan.fate),
    ...neighs.add, ...fdb.add,
    ...routes.replace, ...routes.del,
    ...neighs.del, ...fdb.del,
    ...vxlan.del,
  ];
}

/** One log line per step, in `ip`/`bridge` words. */
export function describeStep(step: Step): string {
  switch (step.op) {
    case 'bridgeAdd':
      return `link add ${step.name} type bridge mtu ${step.mtu} up`;
    case 'vxlanAdd':
      return `link add ${step.name} type vxlan id ${step.vni} dstport ${step.port} local ${step.local} dev ${step.devIfname} nolearning mtu ${step.mtu} address ${step.mac} up`;
    case 'linkDel':
      return `link del ${step.name} (${step.why})`;
    case 'linkSet': {
      const parts = [`link set ${step.name}`];
      if (step.mtu !== undefined) parts.push(`mtu ${step.mtu}`);
      if (step.mac !== undefined) parts.push(`address ${step.mac}`);
      if (step.up !== undefined) parts.push(step.up ? 'up' : 'down');
      return parts.join(' ');
    }
    case 'addrAdd':
      return `addr add ${step.cidr} dev ${step.ifname}`;
    case 'addrDel':
      return `addr del ${step.cidr} dev ${step.ifname}`;
    case 'routeReplace': {
      const r = step.route;
      return `route replace ${r.dst} via ${r.gateway} dev ${r.ifname}${r.onlink ? ' onlink' : ''}`;
    }
    case 'routeDel':
      return `route del ${step.dst}`;
    case 'neighReplace':
      return `neigh replace ${step.ip} lladdr ${step.mac} dev ${step.ifname} nud permanent`;
    case 'neighDel':
      return `neigh del ${step.ip} dev ${step.ifname}`;
    case 'fdbAppend':
      return `fdb append ${step.mac} dev ${step.ifname} dst ${step.dst}`;
    case 'fdbDel':
      return `fdb del ${step.mac} dev ${step.ifname} dst ${step.dst}`;
  }
}
