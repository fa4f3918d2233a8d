// Two NftIRs → one nftables Transaction (atomic: the kernel applies all of it or none). Pure.
//
// Full sync (prev undefined): (re)creates every object of `next` and flushes it, so the result
// is `next` whatever was there, then deletes the stale objects the caller found in the kernel
// (`existing`, from `nft -j -t list chains|sets|maps inet`); a chain found with another hook
// (an older release's base-chain priority) is deleted and added again in the same transaction. Partial sync (prev = what the last
// successful transaction installed): only what changed: new objects added, changed chains
// flushed and rewritten, map/set elements added and deleted one by one, removed objects deleted.
//
// Ordering rules the kernel imposes, and which both modes follow:
//   - a chain, map or set must exist before a rule or element names it: declarations first;
//   - an object can be deleted only once nothing refers to it: referring rules are flushed and
//     referring map elements deleted earlier in the same transaction (in-transaction deletes
//     drop references at once on kernel >= 6.2; kube-proxy defers chain deletes by a second
//     for older kernels, which podwire does not support);
//   - a map element cannot change its verdict in place (EBUSY): delete, then add;
//   - a base chain cannot change type/hook/priority (EOPNOTSUPP): delete, then add.
// Nothing here names pod-masquerade or the table itself beyond `add table` (a no-op when it
// exists): the table is shared with the agent's masquerade chain. The transaction's text is
// src/exec/nft/transaction.ts's: this module decides only what to change, and in which order.
import {
  chainSpecText, elementKeyText, mapElementText, mapSpecText, ruleReferences, ruleText, setSpecText,
  type BaseChainSpec, type Chain, type MapElement, type NftMap, type NftSet,
} from '../../exec/nft/objects.js';
import { Transaction } from '../../exec/nft/transaction.js';
import { assertOwned, isOwnedName, type NftIR } from './render.js';

export { ELEMENT_BATCH } from '../../exec/nft/transaction.js';

/** Names of our objects present in the kernel (the caller filters to svc-/ep-/aff-; we re-check). */
export interface ExistingObjects {
  chains: string[];
  maps: string[];
  sets: string[];
  /**
   * The kernel's type/hook/priority of chains in `chains` (a name without an entry: a regular
   * chain). When given, a full sync recreates exactly the chains whose hook differs from what it
   * renders (an older release's priority, a regular chain now rendered as a base chain).
   */
  hooks?: Record<string, BaseChainSpec>;
  /**
   * The maps in `maps` declared with `counter`. When given, a full sync deletes and adds again a
   * map whose counter flag differs from what it renders (an older release's shared picks had
   * none; `add map` of an existing map with another declaration fails with EEXIST).
   */
  counted?: string[];
}

/** Both only matter for a full sync; a partial sync trusts prev to be what the kernel holds. */
export interface ScriptOptions {
  /** Full sync: what the kernel holds now, so stale objects can be deleted. */
  existing?: ExistingObjects;
  /**
   * Full sync: delete and re-add every base chain of `next` found in `existing`, whatever its
   * hook (for a caller that cannot tell; with `existing.hooks` only the differing ones are).
   */
  recreateBaseChains?: boolean;
}

type Named = { name: string };

const byName = <T extends Named>(list: T[]) => new Map(list.map((o) => [o.name, o]));

/** The sync transaction's text (renderTransaction's); '' when a partial sync has nothing to do. */
export function renderScript(prev: NftIR | undefined, next: NftIR, opts: ScriptOptions = {}): string {
  return renderTransaction(prev, next, opts).text();
}

/** The sync transaction from prev (undefined: full sync) to next; no operation when a partial sync has nothing to do. */
export function renderTransaction(prev: NftIR | undefined, next: NftIR, opts: ScriptOptions = {}): Transaction {
  assertOwned(next);
  if (!prev) return fullSync(next, opts);
  assertOwned(prev);
  if (prev.table !== next.table) throw new Error(`nft: partial sync across tables (${prev.table} → ${next.table}): do a full sync`);
  return partialSync(prev, next);
}

function fullSync(next: NftIR, opts: ScriptOptions): Transaction {
  const s = new Transaction(next.table);
  const chains = byName(next.chains);
  const ours = (names: string[] | undefined) => [...new Set((names ?? []).filter(isOwnedName))].sort();
  const existing = { chains: ours(opts.existing?.chains), maps: ours(opts.existing?.maps), sets: ours(opts.existing?.sets) };
  const recreate = chainsToRecreate(next, existing.chains, opts);
  s.addTable();
  // `add chain` of an existing chain with another hook fails the whole transaction (EOPNOTSUPP):
  // such chains are left out here, emptied with the rest, then deleted and added again.
  for (const c of next.chains) if (!recreate.has(c.name)) s.addChain(c);
  const counted = opts.existing?.counted && new Set(opts.existing.counted);
  const have = new Set(existing.maps);
  const respecMaps = new Set(counted ? next.maps.filter((m) => have.has(m.name) && !!m.counter !== counted.has(m.name)).map((m) => m.name) : []);
  for (const m of next.maps) if (!respecMaps.has(m.name)) s.addMap(m);
  for (const set of next.sets) s.addSet(set);
  // Flushing every chain and map of ours (stale ones too) removes every reference to a stale
  // object, so they can all be deleted below. Affinity sets (dynamic) keep their elements:
  // flushing them would break every client's stickiness at each resync.
  const stale = (have: string[], want: Map<string, unknown>) => have.filter((n) => !want.has(n));
  const staleChains = stale(existing.chains, chains);
  for (const c of next.chains) s.flush('chain', c.name);
  for (const name of staleChains) s.flush('chain', name);
  for (const m of next.maps) s.flush('map', m.name);
  for (const set of next.sets) if (!set.flags.includes('dynamic')) s.flush('set', set.name);
  for (const c of next.chains) if (recreate.has(c.name)) s.delete('chain', c.name).addChain(c);
  for (const m of next.maps) if (respecMaps.has(m.name)) s.delete('map', m.name).addMap(m);
  for (const name of stale(existing.maps, byName(next.maps))) s.delete('map', name);
  for (const name of stale(existing.sets, byName(next.sets))) s.delete('set', name);
  for (const name of staleChains) s.delete('chain', name);
  for (const c of next.chains) s.addRules(c.name, c.rules);
  for (const m of next.maps) s.addElements(m.name, m.elements);
  for (const set of next.sets) s.addElements(set.name, set.elements);
  return s;
}

const sameHook = (a: BaseChainSpec | undefined, b: BaseChainSpec | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.type === b.type && a.hook === b.hook && a.priority === b.priority);

/** Chains of `next` that exist with another hook (or, with recreateBaseChains, every existing base chain). */
function chainsToRecreate(next: NftIR, existing: string[], opts: ScriptOptions): Set<string> {
  const have = new Set(existing);
  const hooks = opts.existing?.hooks;
  return new Set(next.chains.filter((c) => {
    if (!have.has(c.name)) return false;
    if (opts.recreateBaseChains && c.base) return true;
    return hooks !== undefined && !sameHook(Object.hasOwn(hooks, c.name) ? hooks[c.name] : undefined, c.base);
  }).map((c) => c.name));
}

const chainBody = (c: Chain) => c.rules.map(ruleText).join('\n');
const baseSpec = (c: Chain) => (c.base ? chainSpecText(c) : '');

interface ElementDiff {
  removed: string[];
  added: MapElement[];
}

function diffMapElements(prev: NftMap, next: NftMap): ElementDiff {
  const before = new Map(prev.elements.map((e) => [elementKeyText(e.key), mapElementText(e)]));
  const after = new Map(next.elements.map((e) => [elementKeyText(e.key), mapElementText(e)]));
  // A changed verdict (or comment) is a delete plus an add: the kernel refuses to rewrite it.
  const removed = [...before.keys()].filter((k) => before.get(k) !== after.get(k));
  const added = next.elements.filter((e) => {
    const k = elementKeyText(e.key);
    return before.get(k) !== after.get(k);
  });
  return { removed, added };
}

/** What changed between two IRs, by object. */
interface Plan {
  addedChains: Chain[];
  removedChains: Chain[];
  /** Base chains whose type/hook/priority changed: delete + add. */
  respecChains: Chain[];
  /** Chains flushed and rewritten (existing, not respecced). */
  rewriteChains: Chain[];
  addedMaps: NftMap[];
  removedMaps: NftMap[];
  recreatedMaps: NftMap[];
  addedSets: NftSet[];
  removedSets: NftSet[];
  recreatedSets: NftSet[];
}

function planObjects<T extends Named>(prev: T[], next: T[], spec: (o: T) => string) {
  const before = byName(prev);
  const after = byName(next);
  return {
    added: next.filter((o) => !before.has(o.name)),
    removed: prev.filter((o) => !after.has(o.name)),
    respecced: next.filter((o) => before.has(o.name) && spec(before.get(o.name)!) !== spec(o)),
  };
}

function plan(prev: NftIR, next: NftIR): Plan {
  const chains = planObjects(prev.chains, next.chains, baseSpec);
  const maps = planObjects(prev.maps, next.maps, mapSpecText);
  const sets = planObjects(prev.sets, next.sets, setSpecText);
  // A map or set that must be recreated cannot be deleted while a rule names it: the chains
  // naming it are rewritten too, whether or not their text changed.
  const recreated = new Set([...maps.respecced, ...sets.respecced].map((o) => o.name));
  const prevChains = byName(prev.chains);
  const respec = new Set(chains.respecced.map((c) => c.name));
  const rewriteChains = next.chains.filter((c) => {
    const old = prevChains.get(c.name);
    if (!old || respec.has(c.name)) return false;
    return chainBody(old) !== chainBody(c) || c.rules.some((r) => ruleReferences(r).setsOrMaps.some((n) => recreated.has(n)));
  });
  return {
    addedChains: chains.added, removedChains: chains.removed, respecChains: chains.respecced, rewriteChains,
    addedMaps: maps.added, removedMaps: maps.removed, recreatedMaps: maps.respecced,
    addedSets: sets.added, removedSets: sets.removed, recreatedSets: sets.respecced,
  };
}

function partialSync(prev: NftIR, next: NftIR): Transaction {
  const p = plan(prev, next);
  const s = new Transaction(next.table);
  const prevMaps = byName(prev.maps);
  const prevSets = byName(prev.sets);
  const recreated = new Set([...p.recreatedMaps, ...p.recreatedSets].map((o) => o.name));
  const mapDiffs = next.maps.filter((m) => prevMaps.has(m.name) && !recreated.has(m.name)).map((m) => ({ m, d: diffMapElements(prevMaps.get(m.name)!, m) }));
  const setDiffs = next.sets.filter((x) => prevSets.has(x.name) && !recreated.has(x.name)).map((x) => {
    const before = new Set(prevSets.get(x.name)!.elements);
    const after = new Set(x.elements);
    return { x, removed: [...before].filter((e) => !after.has(e)), added: x.elements.filter((e) => !before.has(e)) };
  });
  s.addTable();
  // 1. declare what is new, so that rules and elements below can name it
  for (const c of p.addedChains) s.addChain(c);
  for (const m of p.addedMaps) s.addMap(m);
  for (const x of p.addedSets) s.addSet(x);
  // 2. drop references: rewritten, respecced and removed chains are emptied first
  for (const c of [...p.rewriteChains, ...p.respecChains, ...p.removedChains]) s.flush('chain', c.name);
  for (const { m, d } of mapDiffs) s.deleteElements(m.name, d.removed);
  for (const { x, removed } of setDiffs) s.deleteElements(x.name, removed);
  // 3. delete what goes (maps before chains: map elements refer to chains), re-add what is recreated
  for (const c of p.respecChains) s.delete('chain', c.name).addChain(c);
  for (const m of [...p.removedMaps, ...p.recreatedMaps]) s.delete('map', m.name);
  for (const x of [...p.removedSets, ...p.recreatedSets]) s.delete('set', x.name);
  for (const m of p.recreatedMaps) s.addMap(m);
  for (const x of p.recreatedSets) s.addSet(x);
  for (const c of p.removedChains) s.delete('chain', c.name);
  // 4. content
  const written = new Set([...p.addedChains, ...p.rewriteChains, ...p.respecChains].map((c) => c.name));
  for (const c of next.chains) if (written.has(c.name)) s.addRules(c.name, c.rules);
  const fresh = new Set([...p.addedMaps, ...p.recreatedMaps, ...p.addedSets, ...p.recreatedSets].map((o) => o.name));
  for (const m of next.maps) s.addElements(m.name, fresh.has(m.name) ? m.elements : mapDiffs.find((x) => x.m === m)?.d.added ?? []);
  for (const x of next.sets) s.addElements(x.name, fresh.has(x.name) ? x.elements : setDiffs.find((d) => d.x === x)?.added ?? []);
  return s.size === 1 ? new Transaction(next.table) : s;
}
