// MAC addresses (VTEP MACs in Node annotations, link and neighbour addresses): parsed and formatted
// here, so the control plane's validation and the CNI config need no netlink import for them.
import { AddressError } from './ip.js';

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** aa:bb:cc:dd:ee:ff (either case) → 6 bytes; AddressError otherwise. */
export function parseMac(text: string): Buffer {
  if (!MAC_RE.test(text)) throw new AddressError(`invalid MAC address ${JSON.stringify(text)}: expected aa:bb:cc:dd:ee:ff`);
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

/** Lower-case colon-separated hex. */
export function formatMac(bytes: Buffer): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
