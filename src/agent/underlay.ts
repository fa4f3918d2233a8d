// Which interface and address the node is reached at by its peers (flannel's --iface / public-ip):
// given by flag, else the interface of the IPv4 default route, else the only interface with a
// global IPv4 address. Pure selection over a netlink dump, so the rules are unit-tested.
import type { Address } from '../netlink/address.js';
import type { Link } from '../netlink/link.js';
import type { Route } from '../netlink/route.js';
import type { UnderlayInfo } from './network/types.js';
import { BRIDGE_NAME, VXLAN_NAME } from './network/types.js';

export interface UnderlayFlags {
  /** --iface NAME */
  iface?: string;
  /** --public-ip IP: the address to advertise (must be on the chosen interface). */
  publicIp?: string;
}

export interface NetDump {
  links: Link[];
  addrs: Address[];
  routes: Route[];
}

const RT_SCOPE_UNIVERSE = 0;
const IGNORED = new Set(['lo', BRIDGE_NAME, VXLAN_NAME]);

export class UnderlayError extends Error {
  override name = 'UnderlayError';
}

function globalV4(addrs: Address[], ifindex: number): Address[] {
  return addrs.filter((a) => a.family === 4 && a.ifindex === ifindex && a.scope === RT_SCOPE_UNIVERSE);
}

function toInfo(link: Link, addr: Address): UnderlayInfo {
  return { ifname: link.name, ifindex: link.index, ip: addr.local, cidr: addr.cidr, mtu: link.mtu };
}

export function pickUnderlay(dump: NetDump, flags: UnderlayFlags = {}): UnderlayInfo {
  // Pods' host veths (pw + 12 hex) and podwire's own devices are never the underlay.
  const usable = dump.links.filter((l) => !IGNORED.has(l.name) && !/^pw[0-9a-f]{12}$/.test(l.name));
  let link: Link | undefined;
  if (flags.iface) {
    link = dump.links.find((l) => l.name === flags.iface);
    if (!link) throw new UnderlayError(`--iface ${flags.iface}: no such interface (have: ${dump.links.map((l) => l.name).join(', ')})`);
  } else if (flags.publicIp) {
    const a = dump.addrs.find((x) => x.local === flags.publicIp);
    link = a && dump.links.find((l) => l.index === a.ifindex);
    if (!link) throw new UnderlayError(`--public-ip ${flags.publicIp}: no interface has this address`);
  } else {
    const def = dump.routes.find((r) => r.family === 4 && r.dst === '0.0.0.0/0' && r.ifindex !== undefined && r.table === 254);
    link = def && usable.find((l) => l.index === def.ifindex);
    if (!link) {
      const candidates = usable.filter((l) => globalV4(dump.addrs, l.index).length > 0);
      if (candidates.length !== 1) {
        throw new UnderlayError(candidates.length === 0
          ? 'no interface with a global IPv4 address to use as the underlay; pass --iface or --public-ip'
          : `no default route and several candidate interfaces (${candidates.map((l) => l.name).join(', ')}); pass --iface or --public-ip`);
      }
      link = candidates[0];
    }
  }
  const addrs = globalV4(dump.addrs, link!.index);
  const addr = flags.publicIp ? addrs.find((a) => a.local === flags.publicIp) : addrs[0];
  if (!addr) throw new UnderlayError(`interface ${link!.name} has ${flags.publicIp ? `no address ${flags.publicIp}` : 'no global IPv4 address'}; pass --public-ip or another --iface`);
  if (!link!.up) throw new UnderlayError(`underlay interface ${link!.name} is down`);
  return toInfo(link!, addr);
}
