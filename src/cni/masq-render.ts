// ipMasq's transactions on table `inet podwire-cni`, as (verb, object) values of src/exec/nft
// (the nft text is written there), and the GC plan. Pure.
import type { Family } from '../net/ip.js';
import { CommandError } from '../exec/runner.js';
import { CNI_MASQ_TABLE as MASQ_TABLE } from '../exec/names.js';
import { ruleText, type NftMap, type Rule, type Verdict } from '../exec/nft/objects.js';
import { Transaction } from '../exec/nft/transaction.js';
import { NET_CHAIN_RE, mapFor, ownerComment, resolve, validateOwner, type MasqOwner, type MasqSpec } from './masq-names.js';
import type { MasqElement, MasqState } from './masq-listing.js';

export const BASE_CHAIN = 'postrouting';
const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };
const MAPS: NftMap[] = [
  { name: 'masq4', key: ['ipv4_addr'], elements: [] },
  { name: 'masq6', key: ['ipv6_addr'], elements: [] },
];

/** `ip saddr vmap @masq4` / `ip6 saddr vmap @masq6`: the base chain's rule for a family. */
export function baseChainRule(family: Family): Rule {
  return { matches: [], action: { kind: 'vmap', key: 'saddr', map: mapFor(family), ...(family === 6 ? { family: 6 as const } : {}) } };
}

/** The table, both maps and the base chain; flush + re-add keeps the rules exactly once. */
function skeleton(tx: Transaction): Transaction {
  tx.addTable();
  for (const m of MAPS) tx.addMap(m);
  return tx
    .addChain({ name: BASE_CHAIN, base: { type: 'nat', hook: 'postrouting', priority: 'srcnat', policy: 'accept' } })
    .flush('chain', BASE_CHAIN)
    .addRules(BASE_CHAIN, [baseChainRule(4), baseChainRule(6)]);
}

function networkRules(family: Family, subnet: string): Rule[] {
  const toReturn = (cidr: string): Rule => ({
    matches: [{ kind: 'addr', field: 'daddr', cidrs: [cidr], ...(family === 6 ? { family: 6 as const } : {}) }],
    action: { kind: 'verdict', verdict: { kind: 'return' } },
  });
  return [toReturn(subnet), toReturn(MULTICAST[family]), { matches: [], action: { kind: 'masquerade' } }];
}

/** The rules of a network chain, exactly as nft lists them (masqCheck compares against this). */
export function networkChainRules(family: Family, subnet: string): string[] {
  return networkRules(family, subnet).map(ruleText);
}

/** A verdict as the listing parser gives it ("jump net-1a2b3c4d", "accept", ...). */
function verdictOf(text: string): Verdict {
  const [kind, chain, extra] = text.split(' ');
  if ((kind === 'jump' || kind === 'goto') && chain && extra === undefined) return { kind, chain };
  if ((kind === 'accept' || kind === 'drop' || kind === 'return' || kind === 'continue') && chain === undefined) return { kind };
  throw new CommandError(`ipMasq: element verdict ${JSON.stringify(text)} is not one nft can be told back`);
}

/**
 * One transaction that makes the pod's element exist exactly once with a fresh comment. nft 1.0.6
 * has no `destroy`, and `add element` of an existing key keeps the old comment (and fails with
 * EEXIST when the verdict differs), so: add (no-op if present with this verdict), delete, add
 * again with the comment. `replacing` is an element found under the same IP with another verdict.
 */
export function masqAddTransaction(spec: MasqSpec, replacing?: MasqElement): Transaction {
  const r = resolve(spec);
  const map = mapFor(r.family);
  const jump: Verdict = { kind: 'jump', chain: r.chain };
  return skeleton(new Transaction(MASQ_TABLE))
    .addChain({ name: r.chain })
    .flush('chain', r.chain)
    .addRules(r.chain, networkRules(r.family, r.subnet))
    .addElements(map, [{ key: [r.podIp], verdict: replacing ? verdictOf(replacing.verdict) : jump }])
    .deleteElements(map, [r.podIp])
    .addElements(map, [{ key: [r.podIp], comment: r.comment, verdict: jump }]);
}

/** Removal of listed elements; the add-before-delete makes it succeed if one is already gone. */
export function masqDelTransaction(elements: readonly MasqElement[], tx = new Transaction(MASQ_TABLE)): Transaction {
  for (const e of elements) {
    tx.addElements(mapFor(e.family), [{ key: [e.ip], verdict: verdictOf(e.verdict) }]).deleteElements(mapFor(e.family), [e.ip]);
  }
  return tx;
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

/** The plan's transaction: its elements removed, then its chains (no operation when there is nothing to do). */
export function masqGcTransaction(plan: MasqGcPlan): Transaction {
  const tx = masqDelTransaction(plan.elements);
  // Flush before delete: kernels before ~4.18 refuse to delete a chain that still has rules.
  for (const c of plan.chains) tx.flush('chain', c).delete('chain', c);
  return tx;
}

// The transactions' text, for tests and goldens.
export const renderMasqAdd = (spec: MasqSpec, replacing?: MasqElement): string => masqAddTransaction(spec, replacing).text();
export const renderMasqDel = (elements: readonly MasqElement[]): string => masqDelTransaction(elements).text();
export const renderMasqGc = (validOwners: Iterable<MasqOwner | string>, current: MasqState, scope: MasqGcScope = {}): string =>
  masqGcTransaction(planMasqGc(validOwners, current, scope)).text();
