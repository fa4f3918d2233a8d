// IP address and MAC parsing/formatting for netlink payloads (network byte order bytes).
import net from 'node:net';

export type Family = 4 | 6;

export interface IpAddr {
  family: Family;
  bytes: Buffer;
}

export interface Cidr {
  addr: IpAddr;
  prefixLen: number;
}

export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

export function parseIp(text: string): IpAddr {
  const kind = net.isIP(text);
  if (kind === 4) return { family: 4, bytes: Buffer.from(text.split('.').map(Number)) };
  if (kind === 6) return { family: 6, bytes: parseIpv6(text) };
  throw new AddressError(`invalid IP address ${JSON.stringify(text)}`);
}

function parseIpv6(text: string): Buffer {
  let head = text;
  const tailV4: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tailV4.push(...v4[1].split('.').map(Number));
    head = text.slice(0, -v4[1].length) + '0:0';
  }
  const [left, right] = head.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '') : []);
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const fill = right === undefined ? [] : new Array(8 - l.length - r.length).fill('0');
  const all = [...l, ...fill, ...r];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tailV4.length) Buffer.from(tailV4).copy(out, 12);
  return out;
}

export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new AddressError(`cannot format a ${bytes.length}-byte address`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  // RFC 5952: compress the longest run (length >= 2) of zero groups.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw new AddressError(`invalid CIDR ${JSON.stringify(text)}: expected ADDRESS/PREFIX, e.g. 10.244.1.0/24`);
  const addr = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  const prefixLen = Number(prefixText);
  const max = addr.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || prefixLen > max) {
    throw new AddressError(`invalid CIDR ${JSON.stringify(text)}: prefix length must be 0-${max}`);
  }
  return { addr, prefixLen };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.addr.bytes)}/${c.prefixLen}`;
}

export function familyOf(bytes: Buffer): Family {
  return bytes.length === 4 ? 4 : 6;
}

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

/** The network of an address with prefix: 10.244.1.5/24 → 10.244.1.0/24 (host bits cleared). */
export function networkCidr(text: string): string {
  const c = parseCidr(text);
  const bytes = Buffer.from(c.addr.bytes);
  for (let bit = c.prefixLen; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return `${formatIp(bytes)}/${c.prefixLen}`;
}

/** A sort key: IPv4 before IPv6, each numerically (fixed-width hex), anything unparseable last, as text. */
export function ipSortKey(ip: string): string {
  try {
    const { family, bytes } = parseIp(ip);
    return `${family}${bytes.toString('hex')}`;
  } catch {
    return `9${ip}`;
  }
}
