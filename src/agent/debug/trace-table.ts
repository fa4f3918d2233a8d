// The nftables table of one `podwire trace` on one node (pure): `inet podwire-trace-<id>` with two
// base chains just before raw (priority -301: before conntrack and every chain of ours) on
// prerouting (a pod's packet from cni0, or one arriving from a peer, decapsulated on podwire.1)
// and output (the node's own packets), each with a rule marking exactly the probe: its source
// IP, protocol and source port (a random port the CLI chose), `meta nftrace set 1`. The probe's
// destination is not matched: a service's DNAT rewrites it on the way, and on the next node the
// packet carries the endpoint's address. A node that masquerades the probe rewrites its source
// address and port (fully random): for the nodes after it, `alsoFrom` names the addresses the
// probe may then come from (what explain predicts), matched with the protocol only; the CLI keeps
// only the events of the probe's own packet (its IP id, which NAT leaves alone). The text is
// written here, not through exec/nft's IR, which has no source-port match or nftrace statement
// (the proxy and masquerade never need them).
import { NFT_TRACE_TABLE } from '../../exec/names.js';
import { isIp } from '../../net/ip.js';

export type TraceProto = 'TCP' | 'UDP';

export interface TraceMatch {
  id: string;
  src: string;
  sport: number;
  proto: TraceProto;
  /** Source addresses the probe may have after a masquerade on the way (any port). */
  alsoFrom?: string[];
}

/** A trace id: lower-case letters and digits (it becomes part of a table name). */
export const TRACE_ID = /^[a-z0-9]{4,16}$/;

export const PRE_CHAIN = 'trace-prerouting';
export const OUT_CHAIN = 'trace-output';
/** Before raw (-300): conntrack (-200), the proxy's and every other chain see the mark. */
export const TRACE_PRIORITY = -301;

export function traceTableName(id: string): string {
  if (!TRACE_ID.test(id)) throw new Error(`trace id ${JSON.stringify(id)}: expected 4-16 lower-case letters or digits`);
  return `${NFT_TRACE_TABLE}-${id}`;
}

/** `nft -f -` input creating the table (create: a table of that id already there is an error). */
export function traceTableText(m: TraceMatch): string {
  const table = `inet ${traceTableName(m.id)}`;
  if (!isIp(m.src, 4)) throw new Error(`trace source ${JSON.stringify(m.src)} is not an IPv4 address`);
  if (!Number.isInteger(m.sport) || m.sport < 1 || m.sport > 65535) throw new Error(`trace source port ${m.sport} is not 1-65535`);
  const l4 = m.proto === 'TCP' ? 'tcp' : 'udp';
  const also = [...new Set(m.alsoFrom ?? [])].filter((a) => a !== m.src);
  for (const a of also) if (!isIp(a, 4)) throw new Error(`trace alsoFrom ${JSON.stringify(a)} is not an IPv4 address`);
  const mark = `meta nftrace set 1 comment "podwire trace ${m.id}"`;
  const rules = [`ip saddr ${m.src} ${l4} sport ${m.sport} ${mark}`, ...also.map((a) => `ip saddr ${a} meta l4proto ${l4} ${mark}`)];
  return [
    `create table ${table}`,
    `add chain ${table} ${PRE_CHAIN} { type filter hook prerouting priority ${TRACE_PRIORITY}; policy accept; }`,
    `add chain ${table} ${OUT_CHAIN} { type filter hook output priority ${TRACE_PRIORITY}; policy accept; }`,
    // alsoFrom: packets from another node only (prerouting); on output they would be this node's own traffic.
    ...rules.map((r) => `add rule ${table} ${PRE_CHAIN} ${r}`),
    `add rule ${table} ${OUT_CHAIN} ${rules[0]}`,
    '',
  ].join('\n');
}

export function deleteTraceTableText(id: string): string {
  return `delete table inet ${traceTableName(id)}\n`;
}

/** The fence chain's name: its add event in the monitor's output means every earlier event was read. */
export const fenceName = (n: number): string => `fence-${n}`;

/** A chain added and deleted in one transaction: two ruleset events, nothing stays. */
export function fenceText(id: string, n: number): string {
  const table = `inet ${traceTableName(id)}`;
  return `add chain ${table} ${fenceName(n)}\ndelete chain ${table} ${fenceName(n)}\n`;
}

/**
 * The trace tables in `nft list tables inet` output (`table inet podwire-trace-<id>` lines): an
 * agent killed during a trace leaves its table behind (its ttl timer died with it); the next start
 * removes them. Only names of exactly this form, never another table.
 */
export function traceTablesIn(listing: string): string[] {
  const re = new RegExp(`^table inet (${NFT_TRACE_TABLE}-[a-z0-9]{4,16})$`);
  return listing.split('\n').map((l) => re.exec(l.trim())?.[1]).filter((n): n is string => n !== undefined);
}
