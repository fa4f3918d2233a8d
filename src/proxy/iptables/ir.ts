// The structured form of what podwire's service proxy installs with iptables: per table (nat,
// filter) our PODWIRE-* chains, their rules as matches + one target, and the jumps into them
// from built-in chains. render.ts builds it, trace.ts walks it like netfilter would, and
// serialize() below is the only place that knows iptables-restore syntax. Keeping rules
// structured (not strings) is what lets the tracer evaluate them.
//
// Ownership: every chain here starts with PODWIRE- and none is the agent's masquerade chain
// (PODWIRE-POSTRTG, src/agent/masq); serialize() refuses anything else, so a rendering bug
// cannot flush or delete a chain we do not own. Built-in chains are never declared (that would
// flush them in --noflush mode), only given our jumps when the caller found them missing.
//
// Every construct printed here was checked with iptables 1.8.9 (nf_tables backend) in a netns.
import { formatCidr, tryParseCidr } from '../../net/cidr.js';
import { isIp } from '../../net/ip.js';
import { IPT_MASQ_CHAIN as AGENT_MASQ_CHAIN } from '../../exec/names.js';

export type TableName = 'nat' | 'filter';
export const TABLES: readonly TableName[] = ['nat', 'filter'];
export type BuiltinChain = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';
export type L4Proto = 'tcp' | 'udp' | 'sctp';

export const CHAIN_PREFIX = 'PODWIRE-';
/** The agent's chain in the nat table: never declared, flushed or deleted by the proxy. */
export const FOREIGN_CHAIN = AGENT_MASQ_CHAIN;
// XT_EXTENSION_MAXNAMELEN (29) includes the terminating NUL.
const CHAIN_MAX = 28;
// XT_MAX_COMMENT_LEN (256) includes the NUL.
const COMMENT_MAX = 255;

export type Match =
  | { kind: 'protocol'; proto: L4Proto }
  /** -s / -d CIDR (a bare address means /32), `!` when negated */
  | { kind: 'source' | 'destination'; cidr: string; negate?: boolean }
  /** -m tcp|udp|sctp --dport N: needs a protocol match in the same rule */
  | { kind: 'dport'; port: number }
  /** -m addrtype --src-type|--dst-type LOCAL */
  | { kind: 'addrtype'; field: 'src' | 'dst'; type: 'LOCAL'; negate?: boolean }
  /** -m mark [!] --mark VALUE/MASK */
  | { kind: 'mark'; value: number; mask: number; negate?: boolean }
  /** -m statistic --mode random --probability P (printed with 10 decimals, like kube-proxy) */
  | { kind: 'statistic'; probability: number }
  /** -m recent --name N --rcheck --seconds S --reap | -m recent --name N --set (source address) */
  | { kind: 'recent'; op: 'rcheck' | 'set'; name: string; seconds?: number; reap?: boolean }
  | { kind: 'ctstateNew' }
  | { kind: 'comment'; text: string };

export type Target =
  | { kind: 'jump' | 'goto'; chain: string }
  | { kind: 'dnat'; ip: string; port: number }
  /** MARK --or-mark / --xor-mark (xor clears a bit known to be set) */
  | { kind: 'mark'; op: 'or' | 'xor'; value: number }
  | { kind: 'masquerade'; randomFully: boolean }
  | { kind: 'reject'; with: 'tcp-reset' | 'icmp-port-unreachable' }
  | { kind: 'drop' | 'return' | 'accept' };

export interface Rule {
  matches: Match[];
  target: Target;
}

export interface Chain {
  name: string;
  rules: Rule[];
}

/** A rule in a built-in chain whose target is one of our chains. */
export interface BuiltinJump {
  from: BuiltinChain;
  rule: Rule;
}

export interface IptTable {
  chains: Chain[];
  jumps: BuiltinJump[];
}

/** IPv4 only for now (iptables-restore); an ip6tables twin is future work. */
export interface IptIR {
  family: 4;
  tables: Record<TableName, IptTable>;
}

export class IptIRError extends Error {
  readonly code = 'EINVAL';
  constructor(message: string) {
    super(message);
    this.name = 'IptIRError';
  }
}

const NAME_RE = /^PODWIRE-[A-Z0-9][A-Z0-9-]*$/;

/** True for chain names the proxy owns: PODWIRE-*, except the agent's masquerade chain. */
export function isOwnedChain(name: string): boolean {
  return NAME_RE.test(name) && name.length <= CHAIN_MAX && name !== FOREIGN_CHAIN;
}

export function checkChain(name: string): string {
  if (!isOwnedChain(name)) throw new IptIRError(`iptables: ${JSON.stringify(name)} is not a podwire proxy chain (PODWIRE-[A-Z0-9-]*, at most ${CHAIN_MAX} characters, not ${FOREIGN_CHAIN})`);
  return name;
}

/** The id a caller names a built-in jump by (SerializeOptions.missingJumps). */
export function jumpId(table: TableName, j: BuiltinJump): string {
  const t = j.rule.target;
  return `${table} ${j.from} -> ${t.kind === 'jump' || t.kind === 'goto' ? t.chain : '?'}`;
}

// ---------------------------------------------------------------------------------------------
// text

function checkIpv4(what: string, ip: string): string {
  if (!isIp(ip, 4)) throw new IptIRError(`iptables: ${what}: not an IPv4 address: ${JSON.stringify(ip)}`);
  return ip;
}

function cidrText(cidr: string): string {
  if (!cidr.includes('/')) return `${checkIpv4('address match', cidr)}/32`;
  checkIpv4('address match', cidr.slice(0, cidr.indexOf('/')));
  const c = tryParseCidr(cidr);
  if (c === undefined) throw new IptIRError(`iptables: invalid CIDR ${JSON.stringify(cidr)}`);
  return formatCidr(c);
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new IptIRError(`iptables: port must be 1-65535, got ${port}`);
  return port;
}

const hex = (n: number) => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new IptIRError(`iptables: mark must be a 32-bit value, got ${n}`);
  return '0x' + n.toString(16);
};

/** A comment as one shell-style word: quotes, backslashes and newlines could break out of it. */
function quote(text: string): string {
  if (/["\\\n\r]/.test(text) || text.length > COMMENT_MAX) throw new IptIRError(`iptables: comment not printable as one word: ${JSON.stringify(text)}`);
  return `"${text}"`;
}

/** kube-proxy's computeProbability: fmt.Sprintf("%0.10f", p). */
export function probabilityText(p: number): string {
  if (!(p >= 0 && p <= 1)) throw new IptIRError(`iptables: probability must be within 0..1, got ${p}`);
  return p.toFixed(10);
}

function matchText(m: Match, proto: L4Proto | undefined): string {
  switch (m.kind) {
    case 'protocol': return `-p ${m.proto}`;
    case 'source': return `${m.negate ? '! ' : ''}-s ${cidrText(m.cidr)}`;
    case 'destination': return `${m.negate ? '! ' : ''}-d ${cidrText(m.cidr)}`;
    case 'dport':
      if (!proto) throw new IptIRError('iptables: --dport needs a protocol match in the same rule');
      return `-m ${proto} --dport ${checkPort(m.port)}`;
    case 'addrtype': return `-m addrtype ${m.negate ? '! ' : ''}--${m.field}-type ${m.type}`;
    case 'mark': return `-m mark ${m.negate ? '! ' : ''}--mark ${hex(m.value)}/${hex(m.mask)}`;
    case 'statistic': return `-m statistic --mode random --probability ${probabilityText(m.probability)}`;
    case 'recent': return recentText(m);
    case 'ctstateNew': return '-m conntrack --ctstate NEW';
    case 'comment': return `-m comment --comment ${quote(m.text)}`;
  }
}

function recentText(m: Extract<Match, { kind: 'recent' }>): string {
  const parts = ['-m recent', `--name ${checkChain(m.name)}`, `--${m.op}`];
  if (m.seconds !== undefined) {
    if (!Number.isInteger(m.seconds) || m.seconds < 1) throw new IptIRError(`iptables: recent --seconds must be a positive integer, got ${m.seconds}`);
    parts.push(`--seconds ${m.seconds}`);
  }
  // --reap needs --seconds (it drops entries older than that), and --set takes neither.
  if (m.reap) {
    if (m.seconds === undefined || m.op !== 'rcheck') throw new IptIRError('iptables: recent --reap needs --rcheck and --seconds');
    parts.push('--reap');
  }
  return parts.join(' ');
}

function targetText(t: Target, proto: L4Proto | undefined): string {
  switch (t.kind) {
    case 'jump': return `-j ${checkChain(t.chain)}`;
    case 'goto': return `-g ${checkChain(t.chain)}`;
    case 'dnat':
      // A port in --to-destination is only valid with -p tcp|udp|sctp (nf_nat checkentry).
      if (!proto) throw new IptIRError('iptables: DNAT to a port needs a protocol match in the same rule');
      return `-j DNAT --to-destination ${checkIpv4('DNAT', t.ip)}:${checkPort(t.port)}`;
    case 'mark': return `-j MARK --${t.op}-mark ${hex(t.value)}`;
    case 'masquerade': return `-j MASQUERADE${t.randomFully ? ' --random-fully' : ''}`;
    case 'reject':
      if (t.with === 'tcp-reset' && proto !== 'tcp') throw new IptIRError('iptables: REJECT --reject-with tcp-reset needs -p tcp');
      return `-j REJECT --reject-with ${t.with}`;
    case 'drop': return '-j DROP';
    case 'return': return '-j RETURN';
    case 'accept': return '-j ACCEPT';
  }
}

/**
 * The rule's arguments after `-A CHAIN`, in the order iptables-save prints them (addresses and
 * protocol first, then the matches as given, then the target), so a listing reads like this.
 */
export function ruleText(r: Rule): string {
  const first = (kind: Match['kind']) => {
    const found = r.matches.filter((m) => m.kind === kind);
    if (found.length > 1) throw new IptIRError(`iptables: at most one ${kind} match per rule`);
    return found;
  };
  const proto = first('protocol')[0] as Extract<Match, { kind: 'protocol' }> | undefined;
  const head = [...first('source'), ...first('destination'), ...(proto ? [proto] : [])];
  const rest = r.matches.filter((m) => !head.includes(m));
  return [...head, ...rest].map((m) => matchText(m, proto?.proto)).concat(targetText(r.target, proto?.proto)).join(' ');
}

export interface SerializeOptions {
  /** Jumps (jumpId) the caller did not find in the built-in chains, or 'all' (a fresh node). */
  missingJumps?: readonly string[] | 'all';
  /** Our chains, per table, that exist but are no longer rendered: flushed, then deleted. */
  staleChains?: Partial<Record<TableName, readonly string[]>>;
  /**
   * A partial sync: write only these chains of the IR (per table; absent: every chain). The
   * others are left as they are in the kernel, so they must already hold what the IR says.
   */
  only?: Partial<Record<TableName, ReadonlySet<string>>>;
}

function checkTable(table: TableName, t: IptTable, stale: readonly string[]): void {
  const names = new Set<string>();
  for (const c of t.chains) {
    if (names.has(checkChain(c.name))) throw new IptIRError(`iptables: chain ${c.name} declared twice in ${table}`);
    names.add(c.name);
  }
  for (const s of stale) {
    if (names.has(checkChain(s))) throw new IptIRError(`iptables: stale chain ${s} is still rendered in ${table}`);
  }
  const rules = [...t.chains.flatMap((c) => c.rules), ...t.jumps.map((j) => j.rule)];
  for (const r of rules) {
    const target = r.target;
    if ((target.kind === 'jump' || target.kind === 'goto') && !names.has(target.chain)) {
      throw new IptIRError(`iptables: ${table}: rule jumps to ${target.chain}, which is not rendered`);
    }
  }
  for (const j of t.jumps) {
    if (j.rule.target.kind !== 'jump') throw new IptIRError(`iptables: a rule in built-in ${j.from} may only jump to our chain`);
  }
}

/**
 * iptables-restore input for `--noflush`, one transaction per call: in each table, `:CHAIN - [0:0]`
 * creates or flushes each of our chains (stale ones too), then our rules, then the jumps the
 * caller found missing (`-I … 1`: before other rules, as kube-proxy prepends its jumps, so a
 * foreign DROP/ACCEPT earlier in the chain cannot bypass the services), then `-X` for stale
 * chains, which by then are empty and no longer referenced by any rule of ours.
 */
export function serialize(ir: IptIR, opts: SerializeOptions = {}): string {
  const out: string[] = [];
  for (const table of TABLES) {
    const t = ir.tables[table];
    const stale = [...new Set(opts.staleChains?.[table] ?? [])];
    checkTable(table, t, stale);
    const only = opts.only?.[table];
    const chains = only ? t.chains.filter((c) => only.has(c.name)) : t.chains;
    out.push(`*${table}`);
    for (const c of chains) out.push(`:${c.name} - [0:0]`);
    for (const s of stale) out.push(`:${s} - [0:0]`);
    for (const c of chains) for (const r of c.rules) out.push(`-A ${c.name} ${ruleText(r)}`);
    for (const j of t.jumps) {
      const missing = opts.missingJumps === 'all' || (opts.missingJumps ?? []).includes(jumpId(table, j));
      if (missing) out.push(`-I ${j.from} 1 ${ruleText(j.rule)}`);
    }
    for (const s of stale) out.push(`-X ${s}`);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/**
 * Which built-in jumps of the IR an iptables-save listing (per table) lacks: a line
 * `-A FROM … -j TARGET`. Comments and match order may print differently across versions, so only
 * the chain and target are compared, as src/agent/masq does.
 */
export function findMissingJumps(ir: IptIR, saved: Partial<Record<TableName, string>>): string[] {
  const missing: string[] = [];
  for (const table of TABLES) {
    const lines = (saved[table] ?? '').split('\n');
    for (const j of ir.tables[table].jumps) {
      const target = (j.rule.target as { chain: string }).chain;
      const found = lines.some((l) => l.startsWith(`-A ${j.from} `) && new RegExp(` -[jg] ${target}( |$)`).test(l.trimEnd()));
      if (!found) missing.push(jumpId(table, j));
    }
  }
  return missing;
}

/** Our chains (PODWIRE-*, never the agent's) declared in an iptables-save listing of one table. */
export function listedChains(saved: string): string[] {
  return saved.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]).filter(isOwnedChain);
}
