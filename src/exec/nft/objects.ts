// The nftables objects podwire writes, as values: tables' chains (base or regular), rules as
// matches + one action, maps (verdict or data) and sets, with their elements. transaction.ts puts
// (verb, object) pairs of them into one `nft -f` transaction, fake.ts applies them to an in-memory
// ruleset, the proxy's tracer walks them like the kernel would. Keeping rules structured (not
// strings) is what lets the tracer evaluate them, the diff compare them and the fake check their
// references; the text functions below are the only place that knows nft syntax. Nothing here
// knows who owns which object (the proxy, the masquerade, the CNI plugin): their renderers build
// these values.
//
// Every construct printed here was checked with nftables 1.0.6 (Debian 12) on kernel 6.x. Two
// quirks shape it: base-chain priorities of the proxy are numbers (1.0.6 refuses `priority
// dstnat` on the output hook of an inet table), and `dnat` needs `ip to` in an inet table.
import { CommandError } from '../runner.js';

const invalid = (message: string) => new CommandError(message, 'EINVAL');

export const NFT_FAMILY = 'inet';

export type L4Proto = 'tcp' | 'udp' | 'sctp';
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
export type AddrField = 'saddr' | 'daddr';
/** The address family of an `ip`/`ip6` match: 4 (the default) or 6. */
export type IpFamily = 4 | 6;

/**
 * A named priority with an optional offset, as nft prints it (`srcnat`, `srcnat + 10`), or a
 * number (what the proxy writes: nft 1.0.6 refuses `dstnat` on the output hook of inet).
 */
export type Priority = number | `${'raw' | 'mangle' | 'dstnat' | 'filter' | 'security' | 'srcnat'}${'' | ` ${'+' | '-'} ${number}`}`;

export interface BaseChainSpec {
  type: 'nat' | 'filter';
  hook: Hook;
  priority: Priority;
  /** Printed only when given (the kernel's default is accept). */
  policy?: 'accept' | 'drop';
}

/** The values of nft's named priorities (families ip, ip6, inet). */
const NAMED_PRIORITY: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

/** A priority as a number (`srcnat + 10` is 110): what the kernel stores and orders chains by. */
export function priorityValue(p: Priority): number {
  if (typeof p === 'number') return p;
  const m = /^([a-z]+)(?: ([+-]) (\d+))?$/.exec(p);
  const base = m ? NAMED_PRIORITY[m[1]!] : undefined;
  if (base === undefined) throw invalid(`nft: invalid priority ${JSON.stringify(p)}`);
  return base + (m![2] === '-' ? -Number(m![3]) : Number(m![3] ?? 0));
}

export type Verdict = { kind: 'jump' | 'goto'; chain: string } | { kind: 'accept' | 'drop' | 'return' | 'continue' };

export type Match =
  /** ip|ip6 saddr|daddr [!=] CIDR or { CIDR, ... } */
  | { kind: 'addr'; field: AddrField; cidrs: string[]; negate?: boolean; family?: IpFamily }
  /** ip saddr|daddr @set */
  | { kind: 'addrInSet'; field: AddrField; set: string }
  | { kind: 'l4proto'; proto: L4Proto }
  /** meta l4proto { tcp, udp, ... } */
  | { kind: 'l4protoIn'; protos: L4Proto[] }
  /** th dport N (any transport header: tcp, udp, sctp) */
  | { kind: 'dport'; port: number }
  /** fib saddr|daddr type local: the address is one of this node's own */
  | { kind: 'fibLocal'; field: AddrField }
  /** meta mark & MASK != 0 (isSet) or == 0 */
  | { kind: 'mark'; mask: number; isSet: boolean }
  | { kind: 'ctStateNew' }
  /** ct status dnat: the connection was DNATed (postrouting sees the translated destination) */
  | { kind: 'ctStatusDnat' }
  /** ip saddr . ip daddr @set (a set of address pairs) */
  | { kind: 'addrPairInSet'; set: string };

export type Action =
  | { kind: 'verdict'; verdict: Verdict }
  /**
   * `ip daddr . meta l4proto . th dport vmap @map`, `meta l4proto . th dport vmap @map`, or
   * `ip saddr vmap @map` (`ip6 saddr` with family 6).
   */
  | { kind: 'vmap'; key: 'daddr.proto.dport' | 'proto.dport' | 'saddr'; map: string; family?: IpFamily }
  /**
   * A uniformly random goto among chains. 'vmap': `numgen random mod N vmap { 0 : goto c0, ... }`,
   * one rule, O(1) per packet. 'cascade': the iptables statistic pattern, N rules
   * `numgen random mod N-i == 0 goto ci` (the last one a plain goto), no map at all; see render.ts
   * for why both exist. One IR rule, one or N nft rules: see ruleLines.
   */
  | { kind: 'numgen'; chains: string[]; form: 'vmap' | 'cascade' }
  | { kind: 'dnat'; ip: string; port: number }
  /**
   * DNAT to a uniformly random endpoint, without a chain per endpoint. 'map': `dnat ip to numgen
   * random mod N map { 0 : IP . PORT, ... }`, one rule and an anonymous data map (no verdicts, so
   * none of the jump validation cost of a vmap). 'cascade': N rules `numgen random mod N-i == 0
   * dnat ip to IP:PORT` (the last one without numgen). Needs an l4proto match in the rule.
   */
  | { kind: 'dnatPick'; endpoints: { ip: string; port: number }[]; form: 'map' | 'cascade' }
  /**
   * DNAT through a shared data map keyed by the packet and a random number:
   * `dnat ip to ip daddr . PROTO dport . numgen random mod MOD map @MAP`; the elements
   * `IP . PORT . K : EP_IP . EP_PORT` (K < MOD) of every PROTO service with MOD endpoints live in
   * the one map. No key: no DNAT, the rule does not match. Needs `meta l4proto PROTO` before it.
   * (One map per protocol: nft 1.0.6 cannot read back a map or rule mixing `th dport` into a
   * dnat mapping, nor a `tcp dport` data type with udp keys.)
   */
  | { kind: 'dnatMap'; map: string; mod: number; proto: L4Proto }
  /** meta mark set meta mark | VALUE (or) / ^ VALUE (xor, to clear a bit known to be set) */
  | { kind: 'mark'; op: 'or' | 'xor'; value: number }
  /** `masquerade`, or `masquerade fully-random` (source ports picked at random, not in sequence). */
  | { kind: 'masquerade'; fullyRandom?: boolean }
  | { kind: 'reject'; with: 'tcp-reset' | 'icmpx-port-unreachable' }
  /** `notrack`: conntrack skips the packet (a raw-priority chain only: before conntrack sees it). */
  | { kind: 'notrack' }
  /** update @set { ip saddr }: refreshes the element's timeout, adds it if missing */
  | { kind: 'updateSet'; set: string };

export interface Rule {
  matches: Match[];
  action: Action;
  comment?: string;
  /**
   * `counter` just before the action (in every rule of a cascade): packets and bytes that reached
   * it, read back from the live ruleset (`podwire services`). In a nat chain that is the first
   * packet of each connection only: later packets follow the conntrack entry.
   */
  counter?: boolean;
}

export interface Chain {
  name: string;
  base?: BaseChainSpec;
  comment?: string;
  rules: Rule[];
}

export type KeyPart = 'ipv4_addr' | 'ipv6_addr' | 'inet_proto' | 'inet_service';

export interface MapElement {
  /** One value per key part, e.g. ['10.96.0.10', 'tcp', '80']. */
  key: string[];
  /** A verdict map's value ... */
  verdict?: Verdict;
  /** ... or a data map's, one value per data part, e.g. ['10.244.1.5', '8080']. */
  data?: string[];
  comment?: string;
}

/** A verdict map (`type KEY : verdict`) or, with `typeof`, a data map (`typeof KEY : DATA`). */
export interface NftMap {
  name: string;
  key: KeyPart[];
  comment?: string;
  elements: MapElement[];
  typeof?: { key: string; data: string };
  /** `counter;`: every element gets its own packet/byte counter, bumped by each lookup that finds it. */
  counter?: boolean;
}

export interface NftSet {
  name: string;
  /** Addresses, or address pairs (`ip saddr . ip daddr @set`; elements written "A . B"). */
  type: 'ipv4_addr' | 'ipv4_addr . ipv4_addr';
  /** dynamic + timeout: filled from the packet path (`update`), never by us. */
  flags: ('dynamic' | 'timeout')[];
  timeoutSeconds?: number;
  comment?: string;
  elements: string[];
}

/** The objects of one table (family inet), e.g. what a renderer wants there. */
export interface Ruleset {
  table: string;
  chains: Chain[];
  maps: NftMap[];
  sets: NftSet[];
}


// ---------------------------------------------------------------------------------------------
// text

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$/;
// nft rejects comments over 128 characters (NFTNL_UDATA_COMMENT_MAXLEN).
const COMMENT_MAX = 128;

/** Refuses anything that is not a plain nft identifier: names are spliced into scripts. */
export function checkName(name: string): string {
  if (!NAME_RE.test(name)) throw invalid(`nft: invalid object name ${JSON.stringify(name)}`);
  return name;
}

/** A quoted comment: no quotes or backslashes can break out of it, at most 128 characters. */
export function quoteComment(text: string): string {
  let clean = text.replace(/["\\\n\r\t]/g, '_');
  if (clean.length > COMMENT_MAX) clean = clean.slice(0, COMMENT_MAX - 3) + '...';
  return `"${clean}"`;
}

const hex = (n: number) => '0x' + n.toString(16);

export function verdictText(v: Verdict): string {
  return v.kind === 'jump' || v.kind === 'goto' ? `${v.kind} ${checkName(v.chain)}` : v.kind;
}

const ipKw = (family: IpFamily | undefined) => (family === 6 ? 'ip6' : 'ip');

function cidrList(cidrs: string[]): string {
  if (cidrs.length === 0) throw invalid('nft: empty address list in a match');
  return cidrs.length === 1 ? cidrs[0] : `{ ${cidrs.join(', ')} }`;
}

const L4_PROTOS: readonly string[] = ['tcp', 'udp', 'sctp'];
function checkProto(p: L4Proto): L4Proto {
  if (!L4_PROTOS.includes(p)) throw invalid(`nft: invalid transport protocol ${JSON.stringify(p)}`);
  return p;
}

export function matchText(m: Match): string {
  switch (m.kind) {
    case 'addr': return `${ipKw(m.family)} ${m.field} ${m.negate ? '!= ' : ''}${cidrList(m.cidrs)}`;
    case 'addrInSet': return `ip ${m.field} @${checkName(m.set)}`;
    case 'l4proto': return `meta l4proto ${m.proto}`;
    case 'l4protoIn': return `meta l4proto { ${m.protos.map(checkProto).join(', ')} }`;
    case 'dport': return `th dport ${m.port}`;
    case 'fibLocal': return `fib ${m.field} type local`;
    case 'mark': return `meta mark & ${hex(m.mask)} ${m.isSet ? '!=' : '=='} 0`;
    case 'ctStateNew': return 'ct state new';
    case 'ctStatusDnat': return 'ct status dnat';
    case 'addrPairInSet': return `ip saddr . ip daddr @${checkName(m.set)}`;
  }
}

const VMAP_KEYS: Record<Extract<Action, { kind: 'vmap' }>['key'], (family: IpFamily | undefined) => string> = {
  'daddr.proto.dport': () => 'ip daddr . meta l4proto . th dport',
  'proto.dport': () => 'meta l4proto . th dport',
  saddr: (family) => `${ipKw(family)} saddr`,
};

export function actionText(a: Action): string {
  switch (a.kind) {
    case 'verdict': return verdictText(a.verdict);
    case 'vmap': return `${VMAP_KEYS[a.key](a.family)} vmap @${checkName(a.map)}`;
    case 'numgen': {
      if (a.chains.length === 0) throw invalid('nft: numgen over no chains');
      if (a.form === 'cascade') throw invalid('nft: a numgen cascade is several rules: use ruleLines');
      const arms = a.chains.map((c, i) => `${i} : goto ${checkName(c)}`);
      return `numgen random mod ${a.chains.length} vmap { ${arms.join(', ')} }`;
    }
    case 'dnat': return `dnat ip to ${a.ip}:${a.port}`;
    case 'dnatMap': return `dnat ip to ip daddr . ${a.proto} dport . numgen random mod ${a.mod} map @${checkName(a.map)}`;
    case 'dnatPick': {
      if (a.endpoints.length === 0) throw invalid('nft: dnat pick over no endpoints');
      if (a.form === 'cascade' && a.endpoints.length > 1) throw invalid('nft: a dnat cascade is several rules: use ruleLines');
      if (a.endpoints.length === 1) return `dnat ip to ${a.endpoints[0].ip}:${a.endpoints[0].port}`;
      const arms = a.endpoints.map((e, i) => `${i} : ${e.ip} . ${e.port}`);
      return `dnat ip to numgen random mod ${a.endpoints.length} map { ${arms.join(', ')} }`;
    }
    case 'mark': return `meta mark set meta mark ${a.op === 'or' ? '|' : '^'} ${hex(a.value)}`;
    case 'masquerade': return a.fullyRandom ? 'masquerade fully-random' : 'masquerade';
    case 'reject': return a.with === 'tcp-reset' ? 'reject with tcp reset' : 'reject with icmpx port-unreachable';
    case 'notrack': return 'notrack';
    case 'updateSet': return `update @${checkName(a.set)} { ip saddr }`;
  }
}

/**
 * The nft rule(s) of one IR rule: one, except for a cascade over N chains or endpoints, which is
 * N rules. Arm i is taken with probability 1/(N-i) of what reaches it, so each of the N is 1/N.
 */
export function ruleLines(r: Rule): string[] {
  const tail = r.comment ? ` comment ${quoteComment(r.comment)}` : '';
  const matches = r.matches.map(matchText);
  const a = r.action;
  const count = r.counter ? 'counter ' : '';
  let arms: string[];
  if (a.kind === 'numgen' && a.form === 'cascade') arms = a.chains.map((c) => `${count}goto ${checkName(c)}`);
  else if (a.kind === 'dnatPick' && a.form === 'cascade' && a.endpoints.length > 1) arms = a.endpoints.map((e) => `${count}dnat ip to ${e.ip}:${e.port}`);
  else return [[...matches, count + actionText(a)].join(' ') + tail];
  if (arms.length === 0) throw invalid('nft: numgen over no chains');
  return arms.map((arm, i) => {
    const left = arms.length - i;
    const pick = left > 1 ? [`numgen random mod ${left} == 0`] : [];
    return [...matches, ...pick, arm].join(' ') + (i === 0 ? tail : '');
  });
}

/** ruleLines as one string (newline-separated): what diffs compare. */
export function ruleText(r: Rule): string {
  return ruleLines(r).join('\n');
}

/** `type T hook H priority P;` and, when given, ` policy accept;`. */
export function baseSpecText(b: BaseChainSpec): string {
  return `type ${b.type} hook ${b.hook} priority ${b.priority};${b.policy ? ` policy ${b.policy};` : ''}`;
}

/** The `{ ... }` of `add chain`, or '' for a regular chain without comment. */
export function chainSpecText(c: Pick<Chain, 'base' | 'comment'>): string {
  const parts: string[] = [];
  if (c.base) parts.push(baseSpecText(c.base));
  if (c.comment) parts.push(`comment ${quoteComment(c.comment)};`);
  return parts.length ? `{ ${parts.join(' ')} }` : '';
}

export function mapSpecText(m: NftMap): string {
  const comment = m.comment ? ` comment ${quoteComment(m.comment)};` : '';
  return `{ ${mapTypeText(m)};${m.counter ? ' counter;' : ''}${comment} }`;
}

export function mapTypeText(m: NftMap): string {
  return m.typeof ? `typeof ${m.typeof.key} : ${m.typeof.data}` : `type ${m.key.join(' . ')} : verdict`;
}

export function setSpecText(s: NftSet): string {
  const parts = [`type ${s.type};`];
  if (s.flags.length) parts.push(`flags ${s.flags.join(',')};`);
  if (s.timeoutSeconds !== undefined) parts.push(`timeout ${s.timeoutSeconds}s;`);
  if (s.comment) parts.push(`comment ${quoteComment(s.comment)};`);
  return `{ ${parts.join(' ')} }`;
}

export function elementKeyText(key: string[]): string {
  return key.join(' . ');
}

export function mapElementText(e: MapElement): string {
  const comment = e.comment ? ` comment ${quoteComment(e.comment)}` : '';
  if (!e.verdict === !e.data) throw invalid(`nft: map element ${elementKeyText(e.key)} needs a verdict or data`);
  return `${elementKeyText(e.key)}${comment} : ${e.verdict ? verdictText(e.verdict) : e.data!.join(' . ')}`;
}

/** Chains, maps and sets a chain's rules refer to by name (jump/goto targets, @sets, @maps). */
export function ruleReferences(r: Rule): { chains: string[]; setsOrMaps: string[] } {
  const chains: string[] = [];
  const named: string[] = [];
  for (const m of r.matches) if (m.kind === 'addrInSet' || m.kind === 'addrPairInSet') named.push(m.set);
  const a = r.action;
  if (a.kind === 'verdict' && (a.verdict.kind === 'jump' || a.verdict.kind === 'goto')) chains.push(a.verdict.chain);
  if (a.kind === 'numgen') chains.push(...a.chains);
  if (a.kind === 'vmap' || a.kind === 'dnatMap') named.push(a.map);
  if (a.kind === 'updateSet') named.push(a.set);
  return { chains, setsOrMaps: named };
}
