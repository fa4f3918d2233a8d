// Underlay addressing: nodes sit on one L2 segment (a bridge inside the underlay netns). The default
// range is TEST-NET-1 (192.0.2.0/24, RFC 5737), which is never routed anywhere real.
import { cidrSize, networkOf, nthAddress, parseCidr } from '../net/cidr.js';
import { formatIp } from '../net/ip.js';

export const DEFAULT_UNDERLAY_CIDR = '192.0.2.0/24';
export const UNDERLAY_BRIDGE = 'br0';
export const NODE_UNDERLAY_IF = 'eth0';
const FIRST_HOST = 11;

export interface UnderlayAddressing {
  cidr: string;
  prefixLen: number;
  /** Node i (1-based) → its underlay address. */
  nodeIp(i: number): string;
}

export function underlayAddressing(cidr: string, nodes: number): UnderlayAddressing {
  const c = parseCidr(cidr);
  if (c.addr.family !== 4) throw new Error(`underlay ${cidr}: only IPv4 underlays are supported`);
  const size = Number(cidrSize(c));
  if (FIRST_HOST + nodes >= size - 1) {
    throw new Error(`underlay ${cidr} is too small for ${nodes} nodes (addresses start at .${FIRST_HOST}); use a larger range`);
  }
  const network = networkOf(c);
  return {
    cidr,
    prefixLen: c.prefixLen,
    nodeIp(i: number): string {
      return formatIp(nthAddress(network, FIRST_HOST + i - 1).bytes);
    },
  };
}
