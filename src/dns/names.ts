// DNS names as the index and the handler compare them: lowercase, no trailing dot (the wire's
// 0x20 case is kept only in answers' owner names), reverse names for PTR, and the dashed IP
// labels of pod records and of headless endpoints without a hostname.
import { formatIp, tryParseIp, type IpAddr } from '../net/index.js';

/** Lowercase and without the trailing dot: the form every map key of the index has. */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** `name` is `zone` or under it (both normalized). */
export function isUnder(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** An RFC 1123 label, as Kubernetes validates endpoint hostnames (63 chars, a-z 0-9 '-'). */
export function isDnsLabel(text: string): boolean {
  return /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(text);
}

/** 10.244.1.5 → 5.1.244.10.in-addr.arpa; IPv6 → nibbles under ip6.arpa. */
export function reverseName(ip: IpAddr): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const byte of b) nibbles.push((byte >> 4).toString(16), (byte & 15).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

/** 10.244.1.5 → 10-244-1-5; 2001:db8::1 → 2001-db8--1 (CoreDNS's endpoint and pod labels). */
export function dashedIp(ip: IpAddr): string {
  return formatIp(ip.bytes).replaceAll(ip.family === 4 ? '.' : ':', '-');
}

/** The inverse of dashedIp for a pod record's first label: undefined when it is no address. */
export function parseDashedIp(label: string): IpAddr | undefined {
  const v4 = /^\d+-\d+-\d+-\d+$/.test(label) ? tryParseIp(label.replaceAll('-', '.')) : undefined;
  if (v4) return v4;
  if (!label.includes('-') || !/^[0-9a-f-]+$/.test(label)) return undefined;
  return tryParseIp(label.replaceAll('-', ':'));
}
