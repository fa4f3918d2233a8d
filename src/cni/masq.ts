// ipMasq for the CNI plugin, in nftables: the reference `bridge` plugin's behaviour (masquerade
// traffic from the pod IP to anything outside the pod's subnet, except multicast), but with one
// verdict-map element per pod instead of one iptables chain per pod:
//
//   table inet podwire-cni {
//     map masq4 { type ipv4_addr : verdict; }      pod IP → jump net-<hash>   (comment "<cid>/<ifname>")
//     map masq6 { type ipv6_addr : verdict; }
//     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//       ip saddr vmap @masq4
//       ip6 saddr vmap @masq6 }
//     chain net-<hash> { ip daddr <subnet> return; ip daddr 224.0.0.0/4 return; masquerade }
//   }
//
// So ADD/DEL are one small `nft -f -` transaction each, per-packet cost does not grow with the
// number of pods, and GC finds every pod's entry by its comment. We only ever touch this table.
import { createHash } from 'node:crypto';
import { bitsOf, formatIp, parseIp, type Family } from '../net/ip.js';
import { networkOf, parseCidr } from '../net/cidr.js';
import { CONTAINER_ID_RULE, IFNAME_RULE, containerIdProblem, ifnameProblem } from '../netlink/names.js';
import { CommandError } from '../exec/runner.js';
import { CNI_MASQ_TABLE as MASQ_TABLE } from '../exec/names.js';
import type { NftRunner } from './nft-runner.js';

export { FakeNft, realNft, type NftRunner } from './nft-runner.js';
export { MASQ_TABLE };
const T = `inet ${MASQ_TABLE}`;
const BASE_CHAIN = 'postrouting';
const NET_CHAIN_RE = /^net-[0-9a-f]{8}$/;
const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };
// nft 1.0.6 refuses element comments longer than 128 characters ("comment too long").
const COMMENT_MAX = 128;

export interface MasqOwner {
  containerId: string;
  ifname: string;
}

export interface MasqSpec {
  /** CNI network name (only hashed into the chain name, never written into the ruleset). */
  network: string;
  /** The pod's subnet as a CIDR; host bits are ignored (10.244.1.2/24 means 10.244.1.0/24). */
  subnet: string;
  podIp: string;
  owner: MasqOwner;
}

export interface MasqElement {
  ip: string;
  family: Family;
  /** The element's comment: `containerId/ifname` (see ownerComment); undefined when it has none. */
  owner: string | undefined;
  /** jump/goto target, undefined for any other verdict. */
  chain: string | undefined;
  /** The verdict in nft syntax ("jump net-1a2b3c4d"), needed to delete the element safely. */
  verdict: string;
}

export interface MasqState {
  elements: MasqElement[];
  chains: string[];
  /** Each chain's rules, as nft prints them (only the forms this module writes are decoded). */
  rules: Record<string, string[]>;
}


// ---------------------------------------------------------------------------------------------
// Validation and naming

// The comment is written inside "..." and nft strings have no escapes: the attachment rules of
// src/netlink/names.ts keep quotes, backslash and whitespace out of both names, '~' out of
// container IDs (see ownerComment) and '/' (our separator) out of interface names.
export function validateOwner(owner: MasqOwner): void {
  const { containerId, ifname } = owner ?? ({} as MasqOwner);
  const idProblem = containerIdProblem(containerId);
  if (idProblem) throw new CommandError(`ipMasq: invalid container ID ${JSON.stringify(containerId)}: ${idProblem} (${CONTAINER_ID_RULE})`);
  const ifProblem = ifnameProblem(ifname);
  if (ifProblem) throw new CommandError(`ipMasq: invalid interface name ${JSON.stringify(ifname)}: ${ifProblem} (${IFNAME_RULE})`);
}

/**
 * The element comment that identifies an attachment. Container IDs may be up to 255 characters but
 * nft caps comments at 128, so long IDs are shortened to a prefix + '~' + hash ('~' cannot occur
 * in a container ID, so a shortened comment never equals a plain one).
 */
export function ownerComment(owner: MasqOwner): string {
  validateOwner(owner);
  const plain = `${owner.containerId}/${owner.ifname}`;
  if (plain.length <= COMMENT_MAX) return plain;
  const digest = createHash('sha256').update(owner.containerId).digest('hex').slice(0, 16);
  const keep = COMMENT_MAX - owner.ifname.length - digest.length - 2;
  return `${owner.containerId.slice(0, keep)}~${digest}/${owner.ifname}`;
}

interface Resolved {
  family: Family;
  podIp: string;
  subnet: string; // canonical, as nft prints it back
  chain: string;
  comment: string;
}

function canonicalSubnet(text: string): { family: Family; text: string } {
  let cidr;
  try {
    cidr = parseCidr(text);
  } catch (err) {
    throw new CommandError(`ipMasq: subnet: ${(err as Error).message}`);
  }
  const addr = formatIp(networkOf(cidr).addr.bytes);
  // nft prints a full-length prefix as a plain address; matching that keeps masqCheck exact.
  return { family: cidr.addr.family, text: cidr.prefixLen === bitsOf(cidr.addr.family) ? addr : `${addr}/${cidr.prefixLen}` };
}

function canonicalIp(text: string): { family: Family; text: string } {
  try {
    const ip = parseIp(text);
    return { family: ip.family, text: formatIp(ip.bytes) };
  } catch (err) {
    throw new CommandError(`ipMasq: pod IP: ${(err as Error).message}`);
  }
}

/** Chain for one (network, subnet): the JSON pair is hashed so "a"+"b/24" cannot equal "ab"+"/24". */
export function networkChain(network: string, subnet: string): string {
  if (typeof network !== 'string' || network === '') throw new CommandError('ipMasq: network name must be a non-empty string');
  const canonical = canonicalSubnet(subnet).text;
  return 'net-' + createHash('sha256').update(JSON.stringify([network, canonical])).digest('hex').slice(0, 8);
}

function resolve(spec: MasqSpec): Resolved {
  const comment = ownerComment(spec.owner);
  const subnet = canonicalSubnet(spec.subnet);
  const ip = canonicalIp(spec.podIp);
  if (ip.family !== subnet.family) {
    throw new CommandError(`ipMasq: pod IP ${spec.podIp} is IPv${ip.family} but subnet ${spec.subnet} is IPv${subnet.family}`);
  }
  return { family: ip.family, podIp: ip.text, subnet: subnet.text, chain: networkChain(spec.network, spec.subnet), comment };
}

const mapFor = (family: Family): string => (family === 4 ? 'masq4' : 'masq6');
const ipKw = (family: Family): string => (family === 4 ? 'ip' : 'ip6');

// ---------------------------------------------------------------------------------------------
// Pure renderers (nft -f input)

/** The table, both maps and the base chain; flush + re-add keeps the rules exactly once. */
function renderSkeleton(): string[] {
  return [
    `add table ${T}`,
    `add map ${T} masq4 { type ipv4_addr : verdict; }`,
    `add map ${T} masq6 { type ipv6_addr : verdict; }`,
    `add chain ${T} ${BASE_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`,
    `flush chain ${T} ${BASE_CHAIN}`,
    `add rule ${T} ${BASE_CHAIN} ip saddr vmap @masq4`,
    `add rule ${T} ${BASE_CHAIN} ip6 saddr vmap @masq6`,
  ];
}

/** The rules of a network chain, exactly as nft lists them (masqCheck compares against this). */
export function networkChainRules(family: Family, subnet: string): string[] {
  return [`${ipKw(family)} daddr ${subnet} return`, `${ipKw(family)} daddr ${MULTICAST[family]} return`, 'masquerade'];
}

/**
 * One transaction that makes the pod's element exist exactly once with a fresh comment. nft 1.0.6
 * has no `destroy`, and `add element` of an existing key keeps the old comment (and fails with
 * EEXIST when the verdict differs), so: add (no-op if present with this verdict), delete, add
 * again with the comment. `replacing` is an element found under the same IP with another verdict.
 */
export function renderMasqAdd(spec: MasqSpec, replacing?: MasqElement): string {
  const r = resolve(spec);
  const map = mapFor(r.family);
  const jump = `jump ${r.chain}`;
  const lines = [
    ...renderSkeleton(),
    `add chain ${T} ${r.chain}`,
    `flush chain ${T} ${r.chain}`,
    ...networkChainRules(r.family, r.subnet).map((rule) => `add rule ${T} ${r.chain} ${rule}`),
    `add element ${T} ${map} { ${r.podIp} : ${replacing?.verdict ?? jump} }`,
    `delete element ${T} ${map} { ${r.podIp} }`,
    `add element ${T} ${map} { ${r.podIp} comment "${r.comment}" : ${jump} }`,
  ];
  return lines.join('\n') + '\n';
}

/** Removal of listed elements; the add-before-delete makes it succeed if one is already gone. */
export function renderMasqDel(elements: readonly MasqElement[]): string {
  const lines = elements.flatMap((e) => [
    `add element ${T} ${mapFor(e.family)} { ${e.ip} : ${e.verdict} }`,
    `delete element ${T} ${mapFor(e.family)} { ${e.ip} }`,
  ]);
  return lines.length ? lines.join('\n') + '\n' : '';
}

export interface MasqGcPlan {
  elements: MasqElement[];
  chains: string[];
}

/** Limits GC to elements jumping to, and chains among, these chains (e.g. one network's). */
export interface MasqGcScope {
  chains?: Iterable<string>;
}

function validComments(validOwners: Iterable<MasqOwner | string>): Set<string> {
  const comments = new Set<string>();
  for (const o of validOwners) {
    if (typeof o === 'string') comments.add(o);
    else if (isValidOwner(o)) comments.add(ownerComment(o)); // a malformed owner can own nothing
  }
  return comments;
}

function isValidOwner(o: MasqOwner): boolean {
  try {
    validateOwner(o);
    return true;
  } catch {
    return false;
  }
}

/** Elements not owned by a valid attachment, and network chains no remaining element jumps to. */
export function planMasqGc(validOwners: Iterable<MasqOwner | string>, current: MasqState, scope: MasqGcScope = {}): MasqGcPlan {
  const valid = validComments(validOwners);
  const only = scope.chains ? new Set(scope.chains) : undefined;
  const inScope = (chain: string | undefined) => !only || (chain !== undefined && only.has(chain));
  const stale = current.elements.filter((e) => inScope(e.chain) && (e.owner === undefined || !valid.has(e.owner)));
  const used = new Set(current.elements.filter((e) => !stale.includes(e)).map((e) => e.chain));
  const chains = current.chains.filter((c) => NET_CHAIN_RE.test(c) && inScope(c) && !used.has(c));
  return { elements: stale, chains };
}

export function renderMasqGc(validOwners: Iterable<MasqOwner | string>, current: MasqState, scope: MasqGcScope = {}): string {
  const plan = planMasqGc(validOwners, current, scope);
  // Flush before delete: kernels before ~4.18 refuse to delete a chain that still has rules.
  const chainLines = plan.chains.flatMap((c) => [`flush chain ${T} ${c}`, `delete chain ${T} ${c}`]);
  return renderMasqDel(plan.elements) + (chainLines.length ? chainLines.join('\n') + '\n' : '');
}

// ---------------------------------------------------------------------------------------------
// Parser of `nft -j list table inet podwire-cni`

type Json = Record<string, any>;

function verdictText(v: unknown): { verdict: string; chain: string | undefined } {
  if (v && typeof v === 'object') {
    const [kind, body] = Object.entries(v as Json)[0] ?? [];
    if ((kind === 'jump' || kind === 'goto') && typeof body?.target === 'string') {
      return { verdict: `${kind} ${body.target}`, chain: body.target };
    }
    if (kind) return { verdict: kind, chain: undefined };
  }
  return { verdict: String(v), chain: undefined };
}

function parseElement(family: Family, pair: unknown): MasqElement {
  const [key, value] = Array.isArray(pair) ? pair : [pair, undefined];
  const val = typeof key === 'object' && key !== null ? key.elem?.val : key;
  const comment = typeof key === 'object' && key !== null ? key.elem?.comment : undefined;
  const ip = canonicalIp(String(val)).text;
  return { ip, family, owner: typeof comment === 'string' ? comment : undefined, ...verdictText(value) };
}

function exprText(e: Json): string {
  const [kind, body] = Object.entries(e)[0] ?? ['?', undefined];
  if (kind === 'match' && body?.left?.payload) {
    const { protocol, field } = body.left.payload;
    const right = body.right?.prefix ? `${body.right.prefix.addr}/${body.right.prefix.len}` : String(body.right);
    return `${protocol} ${field} ${body.op === '==' ? '' : body.op + ' '}${right}`;
  }
  if (kind === 'vmap' && body?.key?.payload) return `${body.key.payload.protocol} ${body.key.payload.field} vmap ${body.data}`;
  if (body === null) return kind; // return, masquerade, accept, ...
  if ((kind === 'jump' || kind === 'goto') && body?.target) return `${kind} ${body.target}`;
  return JSON.stringify(e); // not a form we write: kept verbatim so a comparison fails visibly
}

export function parseMasqTable(listing: unknown): MasqState {
  const items = (listing as Json)?.nftables;
  if (!Array.isArray(items)) throw new CommandError('ipMasq: nft -j output has no "nftables" array', 'NFT_BAD_JSON');
  const state: MasqState = { elements: [], chains: [], rules: {} };
  for (const item of items as Json[]) {
    if (item.map && item.map.table === MASQ_TABLE && (item.map.name === 'masq4' || item.map.name === 'masq6')) {
      const family: Family = item.map.name === 'masq4' ? 4 : 6;
      for (const pair of item.map.elem ?? []) state.elements.push(parseElement(family, pair));
    } else if (item.chain && item.chain.table === MASQ_TABLE) {
      state.chains.push(item.chain.name);
      state.rules[item.chain.name] ??= [];
    } else if (item.rule && item.rule.table === MASQ_TABLE) {
      (state.rules[item.rule.chain] ??= []).push((item.rule.expr ?? []).map(exprText).join(' '));
    }
  }
  return state;
}

/** The table's state, or undefined when the table does not exist. */
export function readMasqState(runner: NftRunner): MasqState | undefined {
  try {
    return parseMasqTable(runner.listJson(['list', 'table', 'inet', MASQ_TABLE]));
  } catch (err) {
    if ((err as CommandError).code === 'ENOENT') return undefined;
    throw err;
  }
}

function withContext(what: string, err: unknown): CommandError {
  const e = err as CommandError;
  return new CommandError(`${what}: ${e.message}`, e.code ?? 'CMD_FAILED');
}

/** Make the pod's traffic masqueraded; idempotent. Returns the network chain it jumps to. */
export function masqAdd(runner: NftRunner, spec: MasqSpec): string {
  const r = resolve(spec); // validation errors surface before anything runs
  const what = `ipMasq ADD ${r.podIp} for ${r.comment}`;
  try {
    runner.run(renderMasqAdd(spec));
    return r.chain;
  } catch (err) {
    // The one expected failure: the IP is still mapped to another chain (stale entry of another
    // network or subnet), and the add-delete trick needs the old verdict. Anything else rethrows.
    const other = existingElement(runner, r);
    if (!other || other.verdict === `jump ${r.chain}`) throw withContext(what, err);
    try {
      runner.run(renderMasqAdd(spec, other));
      return r.chain;
    } catch (err2) {
      throw withContext(what, err2);
    }
  }
}

/** The element listed for the pod's IP; undefined also when listing fails (the caller rethrows). */
function existingElement(runner: NftRunner, r: Resolved): MasqElement | undefined {
  try {
    return readMasqState(runner)?.elements.find((e) => e.ip === r.podIp && e.family === r.family);
  } catch {
    return undefined;
  }
}

/**
 * Remove every element this attachment owns (found by its comment, so DEL needs no IP and never
 * removes an IP that has since been given to another container). Succeeds when nothing is there.
 */
export function masqDel(runner: NftRunner, owner: MasqOwner): MasqElement[] {
  const comment = ownerComment(owner);
  return retryOnce(`ipMasq DEL for ${comment}`, runner, (state) => {
    const owned = state.elements.filter((e) => e.owner === comment);
    return { script: renderMasqDel(owned), result: owned };
  }, []);
}

/** Remove elements whose owner is not valid, then network chains no element jumps to. */
export function masqGc(runner: NftRunner, validOwners: Iterable<MasqOwner | string>, scope: MasqGcScope = {}): MasqGcPlan {
  const valid = Array.from(validOwners); // iterated once per attempt
  const chains = scope.chains ? Array.from(scope.chains) : undefined;
  const plan = (state: MasqState) => ({ script: renderMasqGc(valid, state, { chains }), result: planMasqGc(valid, state, { chains }) });
  return retryOnce('ipMasq GC', runner, plan, { elements: [], chains: [] });
}

/**
 * List, render, apply; on failure list again and retry once, because a concurrent ADD/DEL/GC may
 * have changed what we listed (e.g. an ADD now jumps to a chain we wanted to delete: EBUSY).
 */
function retryOnce<R>(what: string, runner: NftRunner, render: (s: MasqState) => { script: string; result: R }, none: R): R {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    const state = readMasqState(runner);
    if (!state) return none;
    const { script, result } = render(state);
    if (!script) return result;
    try {
      runner.run(script);
      return result;
    } catch (err) {
      lastErr = err;
    }
  }
  throw withContext(what, lastErr);
}

/** For CNI CHECK: undefined when the pod is masqueraded as ADD set it up, else what is wrong. */
export function masqCheck(runner: NftRunner, spec: MasqSpec): string | undefined {
  const r = resolve(spec);
  const state = readMasqState(runner);
  if (!state) return `ipMasq: nftables table ${T} does not exist`;
  const base = state.rules[BASE_CHAIN];
  const vmap = `${ipKw(r.family)} saddr vmap @${mapFor(r.family)}`;
  if (!base) return `ipMasq: chain ${BASE_CHAIN} is missing from table ${T}`;
  if (!base.includes(vmap)) return `ipMasq: chain ${BASE_CHAIN} has no rule "${vmap}" (rules: ${JSON.stringify(base)})`;
  const element = state.elements.find((e) => e.ip === r.podIp && e.family === r.family);
  if (!element) return `ipMasq: ${r.podIp} has no element in map ${mapFor(r.family)} (expected one for ${r.comment})`;
  if (element.owner !== r.comment) return `ipMasq: element ${r.podIp} is owned by ${JSON.stringify(element.owner)}, expected ${JSON.stringify(r.comment)}`;
  if (element.chain !== r.chain) return `ipMasq: element ${r.podIp} points to "${element.verdict}", expected "jump ${r.chain}"`;
  const want = networkChainRules(r.family, r.subnet);
  const have = state.rules[r.chain];
  if (!have) return `ipMasq: chain ${r.chain} for network ${JSON.stringify(spec.network)} ${r.subnet} is missing`;
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    return `ipMasq: chain ${r.chain} has rules ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`;
  }
  return undefined;
}
