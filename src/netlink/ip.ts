// Addresses for netlink payloads: the IP math is src/net's (re-exported here, so the netlink API
// keeps parseIp/formatIp/parseCidr for its users); what is netlink's own is the address family
// number (AF_INET/AF_INET6) and MAC addresses.
export {
  AddressError, familyOf, formatIp, ipSortKey, parseIp, type Family, type IpAddr,
} from '../net/ip.js';
export { formatCidr, networkCidr, parseCidr, type Cidr } from '../net/cidr.js';
import type { Family } from '../net/ip.js';
import { AddressError } from '../net/ip.js';

export function afOf(family: Family): number {
  return family === 4 ? 2 : 10;
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function parseMac(text: string): Buffer {
  if (!MAC_RE.test(text)) throw new AddressError(`invalid MAC address ${JSON.stringify(text)}: expected aa:bb:cc:dd:ee:ff`);
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

export function formatMac(bytes: Buffer): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
