// The node agent's masquerade, flannel's rules (pod traffic leaving the cluster CIDR is
// masqueraded, cluster↔cluster traffic never is), rendered for nftables or iptables. Pure.
//
// Per family with a cluster CIDR C and this node's pod CIDR P, in order:
//   saddr in C,  daddr in C              → return                      (pod ↔ pod: no NAT)
//   saddr in C,  daddr not multicast     → masquerade fully-random     (pod → outside)
//   saddr !in C, daddr in P              → return                      (outside → local pod: keep source)
//   saddr !in C, daddr in C              → masquerade fully-random     (node/outside → remote pod: replies come back here)
//
// With a VXLAN overlay (input.vxlanPort), the nftables rendering also keeps the overlay's outer
// packets (UDP to that port) out of conntrack: `udp dport PORT notrack` in NFT_NOTRACK_CHAINS at
// priority raw of prerouting (received) and output (sent); without one those chains are removed.
// Only the inner packets need tracking (this masquerade, service DNAT): tracking the outer ones
// too costs a conntrack lookup and entry per tunnel flow for nothing (flannel as deployed pays it).
// The iptables rendering has no such rules (its raw table is left alone): there the outer packets stay tracked.
//
// nftables: chain NFT_CHAIN in table `inet podwire`, as a Transaction of src/exec/nft (the nft
// text is written there). The table is shared (the service proxy
// lives there too): we add it but never flush or delete it, and own only our chain. The chain
// is not called `masquerade` because that is an nft keyword: nftables 1.0.6 (Debian 12) refuses
// it as a chain name in `nft -f` scripts and on the command line, quoted or not.
// iptables: chain IPT_CHAIN in the nat table and one jump to it from POSTROUTING, applied with
// `iptables-restore --noflush`, in which `:CHAIN - [0:0]` creates or flushes only that chain.
import { cidrCovers, formatCidr, networkOf, parseCidr, type Cidr } from '../../net/cidr.js';
import type { Family } from '../../net/ip.js';

import { IPT_MASQ_CHAIN as IPT_CHAIN, NFT_MASQ_CHAIN as NFT_CHAIN, NFT_NOTRACK_CHAINS, NFT_TABLE } from '../../exec/names.js';
import { CommandError } from '../../exec/runner.js';
import { baseSpecText, type AddrField, type BaseChainSpec, type Match as NftMatch, type Rule } from '../../exec/nft/objects.js';
import { Transaction } from '../../exec/nft/transaction.js';

export { IPT_CHAIN, NFT_CHAIN, NFT_NOTRACK_CHAINS, NFT_TABLE };
export const IPT_JUMP_COMMENT = 'podwire: pod masquerade';

export type MasqMode = 'nftables' | 'iptables';

export interface MasqInput {
  /** At most one CIDR per family, like Kubernetes' --cluster-cidr, e.g. ['10.244.0.0/16', 'fd00:10:244::/56']. */
  clusterCidrs: string[];
  /** This node's pod CIDR (Node spec.podCIDR). */
  podCidr: string;
  /** All of this node's pod CIDRs, one per family (Node spec.podCIDRs); podCidr is added to them. */
  podCidrs?: string[];
  /** The VXLAN overlay's UDP port when this node has a VXLAN device (nftables: its outer packets are not tracked). */
  vxlanPort?: number;
}

/** One family's validated, canonical CIDRs (host bits cleared). */
export interface FamilyMasq {
  family: Family;
  clusterCidr: string;
  podCidr: string;
}


const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

interface Canonical {
  family: Family;
  /** Canonical network text (host bits cleared). */
  cidr: string;
  network: Cidr;
}

function canonical(what: string, text: unknown): Canonical {
  if (typeof text !== 'string') throw new CommandError(`masquerade: ${what} must be a CIDR string, got ${JSON.stringify(text)}`);
  let network: Cidr;
  try {
    network = networkOf(parseCidr(text));
  } catch (err) {
    throw new CommandError(`masquerade: ${what}: ${(err as Error).message}`);
  }
  return { family: network.addr.family, cidr: formatCidr(network), network };
}

function onePerFamily(what: string, list: unknown[]): Map<Family, Canonical> {
  const byFamily = new Map<Family, Canonical>();
  for (const text of list) {
    const c = canonical(what, text);
    const seen = byFamily.get(c.family);
    if (seen && seen.cidr !== c.cidr) {
      throw new CommandError(`masquerade: at most one IPv${c.family} ${what} is supported, got ${seen.cidr} and ${c.cidr}`);
    }
    byFamily.set(c.family, c);
  }
  return byFamily;
}

/** Validates the input; one entry per family with a cluster CIDR, IPv4 first. */
export function planFamilies(input: MasqInput): FamilyMasq[] {
  if (!input || !Array.isArray(input.clusterCidrs) || input.clusterCidrs.length === 0) {
    throw new CommandError('masquerade: clusterCidrs must be a non-empty array of CIDRs');
  }
  if (input.podCidrs !== undefined && !Array.isArray(input.podCidrs)) throw new CommandError('masquerade: podCidrs must be an array');
  checkVxlanPort(input.vxlanPort);
  const clusters = onePerFamily('cluster CIDR', input.clusterCidrs);
  const pods = onePerFamily('pod CIDR', [input.podCidr, ...(input.podCidrs ?? [])]);
  for (const [family, pod] of pods) {
    const cluster = clusters.get(family);
    if (!cluster) throw new CommandError(`masquerade: pod CIDR ${pod.cidr} has no IPv${family} cluster CIDR`);
    if (!cidrCovers(cluster.network, pod.network)) throw new CommandError(`masquerade: pod CIDR ${pod.cidr} is not inside cluster CIDR ${cluster.cidr}`);
  }
  const out: FamilyMasq[] = [];
  for (const family of [4, 6] as const) {
    const cluster = clusters.get(family);
    if (!cluster) continue;
    const pod = pods.get(family);
    if (!pod) throw new CommandError(`masquerade: cluster CIDR ${cluster.cidr} needs an IPv${family} pod CIDR for this node (podCidrs)`);
    out.push({ family, clusterCidr: cluster.cidr, podCidr: pod.cidr });
  }
  return out;
}

interface Match {
  cidr: string;
  negate: boolean;
}

/** One of the four rules, independent of the backend. */
export interface MasqRule {
  family: Family;
  saddr: Match;
  daddr: Match;
  action: 'return' | 'masquerade';
  comment: string;
}

export function masqRules(f: FamilyMasq): MasqRule[] {
  const inC = { cidr: f.clusterCidr, negate: false };
  const notInC = { cidr: f.clusterCidr, negate: true };
  const rule = (saddr: Match, daddr: Match, action: MasqRule['action'], comment: string): MasqRule => ({
    family: f.family, saddr, daddr, action, comment: `podwire: ${comment}`,
  });
  return [
    rule(inC, inC, 'return', 'cluster to cluster, no NAT'),
    rule(inC, { cidr: MULTICAST[f.family], negate: true }, 'masquerade', 'cluster to outside, masquerade'),
    rule(notInC, { cidr: f.podCidr, negate: false }, 'return', 'outside to local pods, no NAT'),
    rule(notInC, inC, 'masquerade', 'outside to remote pods, masquerade'),
  ];
}

// ---------------------------------------------------------------------------------------------
// nftables (one Transaction of src/exec/nft: `nft -f -`, atomic)

const NFT_BASE: BaseChainSpec = { type: 'nat', hook: 'postrouting', priority: 'srcnat + 10' };
/** Our chain's `type … hook … priority …;`, as `nft list chain` prints it (masq.ts looks for it). */
export const NFT_CHAIN_SPEC = baseSpecText(NFT_BASE);

function nftRule(r: MasqRule): Rule {
  const family = r.family === 6 ? 6 : undefined;
  const m = (field: AddrField, x: Match): NftMatch => ({ kind: 'addr', field, cidrs: [x.cidr], ...(x.negate ? { negate: true } : {}), ...(family ? { family } : {}) });
  const action: Rule['action'] = r.action === 'return' ? { kind: 'verdict', verdict: { kind: 'return' } } : { kind: 'masquerade', fullyRandom: true };
  return { matches: [m('saddr', r.saddr), m('daddr', r.daddr)], action, comment: r.comment };
}

/**
 * The table (created if missing, never flushed), our chain created and flushed, then our rules,
 * and the overlay's notrack chains the same way (or removed, without a VXLAN port): idempotent
 * and atomic. `recreate` first deletes all of them, for when one exists with another
 * type/hook/priority (nft refuses to change those of an existing base chain: EOPNOTSUPP).
 */
export function nftMasqTransaction(input: MasqInput, opts: { recreate?: boolean } = {}): Transaction {
  const rules = planFamilies(input).flatMap(masqRules).map(nftRule);
  const tx = new Transaction(NFT_TABLE).addTable();
  if (opts.recreate) for (const [name] of NFT_CHAIN_SPECS) removeChain(tx, name);
  tx.addChain({ name: NFT_CHAIN, base: NFT_BASE }).flush('chain', NFT_CHAIN).addRules(NFT_CHAIN, rules);
  for (const hook of NOTRACK_HOOKS) {
    const name = NFT_NOTRACK_CHAINS[hook];
    if (input.vxlanPort !== undefined) tx.addChain({ name, base: notrackBase(hook) }).flush('chain', name).addRules(name, [notrackRule(input.vxlanPort)]);
    else if (!opts.recreate) removeChain(tx, name); // (recreate removed it above)
  }
  return tx;
}

const NOTRACK_HOOKS = ['prerouting', 'output'] as const;
const notrackBase = (hook: (typeof NOTRACK_HOOKS)[number]): BaseChainSpec => ({ type: 'filter', hook, priority: 'raw' });
/**
 * All of our nft chains, each with the `type … hook … priority …;` it must have, as `nft list
 * chain` prints it: the masquerade chain, then the notrack chains (masq.ts lists and checks them).
 */
export const NFT_CHAIN_SPECS: readonly (readonly [string, string])[] = [
  [NFT_CHAIN, NFT_CHAIN_SPEC],
  ...NOTRACK_HOOKS.map((h) => [NFT_NOTRACK_CHAINS[h], baseSpecText(notrackBase(h))] as const),
];

function notrackRule(port: number): Rule {
  return { matches: [{ kind: 'l4proto', proto: 'udp' }, { kind: 'dport', port }], action: { kind: 'notrack' }, comment: 'podwire: VXLAN outer packets, not tracked' };
}

function checkVxlanPort(port: unknown): void {
  if (port === undefined) return;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CommandError(`masquerade: vxlanPort must be an integer port 1-65535, got ${JSON.stringify(port)}`);
  }
}

/** nftMasqTransaction's text. */
export function renderNftMasq(input: MasqInput, opts: { recreate?: boolean } = {}): string {
  return nftMasqTransaction(input, opts).text();
}

// nft 1.0.6 has no `destroy` (a syntax error there; it also needs kernel 6.3), so `add chain` (a
// no-op when the chain exists) makes the delete succeed when the chain is already gone. Flush
// first: old kernels refuse to delete a chain with rules. The caller checks that the table
// exists, so nothing is created where nothing was.
function removeChain(tx: Transaction, name: string): Transaction {
  return tx.addChain({ name }).flush('chain', name).delete('chain', name);
}

/** Removes only our chains (masquerade and notrack); the table stays (it is shared). Needs the table to exist. */
export function nftMasqRemoveTransaction(): Transaction {
  const tx = new Transaction(NFT_TABLE);
  for (const [name] of NFT_CHAIN_SPECS) removeChain(tx, name);
  return tx;
}

/** nftMasqRemoveTransaction's text. */
export function renderNftMasqRemove(): string {
  return nftMasqRemoveTransaction().text();
}

// ---------------------------------------------------------------------------------------------
// iptables (`iptables-restore --noflush` / `ip6tables-restore --noflush`)

function iptRule(r: MasqRule): string {
  const m = (flag: string, x: Match) => `${x.negate ? '! ' : ''}${flag} ${x.cidr}`;
  const target = r.action === 'return' ? '-j RETURN' : '-j MASQUERADE --random-fully';
  // The order iptables-save prints, so a listing reads like the rendering.
  return `-A ${IPT_CHAIN} ${m('-s', r.saddr)} ${m('-d', r.daddr)} -m comment --comment "${r.comment}" ${target}`;
}

/** The POSTROUTING jump, as iptables-save prints it. */
export const IPT_JUMP_RULE = `-A POSTROUTING -m comment --comment "${IPT_JUMP_COMMENT}" -j ${IPT_CHAIN}`;

/**
 * Our chain for one family, or undefined when the input has no CIDR of that family. The jump is
 * rendered only when the caller saw none: a --noflush restore appends, it does not deduplicate.
 */
export function renderIptablesMasq(input: MasqInput, family: Family, opts: { jumpMissing: boolean }): string | undefined {
  const f = planFamilies(input).find((x) => x.family === family);
  if (!f) return undefined;
  const lines = ['*nat', `:${IPT_CHAIN} - [0:0]`, ...masqRules(f).map(iptRule), ...(opts.jumpMissing ? [IPT_JUMP_RULE] : []), 'COMMIT'];
  return lines.join('\n') + '\n';
}

/**
 * Removes our chain and the given jumps (POSTROUTING rules as iptables-save lists them, `-A …`).
 * Declaring the chain first creates or flushes it, so `-X` works whether or not it existed.
 */
export function renderIptablesMasqRemove(jumps: readonly string[]): string {
  const deletes = jumps.map((j) => {
    if (!j.startsWith('-A POSTROUTING ')) throw new CommandError(`masquerade: not a POSTROUTING rule: ${JSON.stringify(j)}`);
    return '-D' + j.slice(2);
  });
  return ['*nat', `:${IPT_CHAIN} - [0:0]`, ...deletes, `-X ${IPT_CHAIN}`, 'COMMIT'].join('\n') + '\n';
}

/** `iptables` / `ip6tables` + suffix ('-save', '-restore', ''). */
export function iptablesBinary(family: Family, suffix = ''): string {
  return (family === 4 ? 'iptables' : 'ip6tables') + suffix;
}
