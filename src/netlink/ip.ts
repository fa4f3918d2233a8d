// Addresses for netlink payloads: the IP math is src/net's (re-exported here, so the netlink API
// keeps parseIp/formatIp/parseCidr for its users); what is netlink's own is the address family
// number (AF_INET/AF_INET6); MAC addresses are src/net's too (re-exported).
export {
  AddressError, familyOf, formatIp, ipSortKey, parseIp, type Family, type IpAddr,
} from '../net/ip.js';
export { formatCidr, networkCidr, parseCidr, type Cidr } from '../net/cidr.js';
export { formatMac, parseMac } from '../net/mac.js';
import type { Family } from '../net/ip.js';

export function afOf(family: Family): number {
  return family === 4 ? 2 : 10;
}
