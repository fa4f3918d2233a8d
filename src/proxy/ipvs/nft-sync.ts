// The IPVS mode's nftables transactions (pure): a full sync rewrites its objects in one atomic
// `nft -f` (chains flushed and refilled, maps and sets flushed and refilled, stale ipvs-* objects
// deleted), a partial sync only adds and deletes the elements that changed. Never anything
// outside the ipvs- names (pod-masquerade and the nftables mode's svc- objects share the table).
import type { MapElement, Ruleset } from '../../exec/nft/objects.js';
import { Transaction } from '../../exec/nft/transaction.js';
import { mapElementText } from '../../exec/nft/objects.js';
import { ProxyRenderError } from '../port-view.js';
import { IPVS_MAPS, IPVS_SETS, isIpvsName, type IpvsElements } from './nft.js';

export interface ExistingIpvsObjects {
  chains: string[];
  maps: string[];
  sets: string[];
}

function assertIpvs(rs: Ruleset): void {
  for (const o of [...rs.chains, ...rs.maps, ...rs.sets]) {
    if (!isIpvsName(o.name)) throw new ProxyRenderError(`ipvs: ${JSON.stringify(o.name)} is not an IPVS mode object (prefix ipvs-)`);
  }
}

export function fullIpvsTransaction(rs: Ruleset, existing: ExistingIpvsObjects = { chains: [], maps: [], sets: [] }): Transaction {
  assertIpvs(rs);
  const tx = new Transaction(rs.table).addTable();
  // Declarations first (rules reference maps and sets; map elements reference chains), then
  // contents: every flush + refill is in the same transaction, so no packet sees a half state.
  for (const c of rs.chains) tx.addChain(c);
  for (const m of rs.maps) tx.addMap(m);
  for (const s of rs.sets) tx.addSet(s);
  for (const c of rs.chains) tx.flush('chain', c.name).addRules(c.name, c.rules);
  for (const m of rs.maps) tx.flush('map', m.name).addElements(m.name, m.elements);
  for (const s of rs.sets) tx.flush('set', s.name).addElements(s.name, s.elements);
  const want = { chains: new Set(rs.chains.map((c) => c.name)), maps: new Set(rs.maps.map((m) => m.name)), sets: new Set(rs.sets.map((s) => s.name)) };
  const stale = {
    chains: existing.chains.filter((n) => isIpvsName(n) && !want.chains.has(n)),
    maps: existing.maps.filter((n) => isIpvsName(n) && !want.maps.has(n)),
    sets: existing.sets.filter((n) => isIpvsName(n) && !want.sets.has(n)),
  };
  for (const c of stale.chains) tx.flush('chain', c);
  for (const m of stale.maps) tx.delete('map', m);
  for (const s of stale.sets) tx.delete('set', s);
  for (const c of stale.chains) tx.delete('chain', c);
  return tx;
}

/** Removes every ipvs- object of the listing (mode switch); an empty transaction when there is none. */
export function removeIpvsTransaction(table: string, existing: ExistingIpvsObjects): Transaction {
  const tx = new Transaction(table);
  const chains = existing.chains.filter(isIpvsName);
  for (const c of chains) tx.flush('chain', c);
  for (const m of existing.maps.filter(isIpvsName)) tx.delete('map', m);
  for (const s of existing.sets.filter(isIpvsName)) tx.delete('set', s);
  for (const c of chains) tx.delete('chain', c);
  return tx;
}

function mapChanges(tx: Transaction, name: string, prev: ReadonlyMap<string, MapElement>, next: ReadonlyMap<string, MapElement>): void {
  const del: string[] = [];
  const add: MapElement[] = [];
  for (const [k, e] of prev) {
    const n = next.get(k);
    if (!n) del.push(k);
    else if (mapElementText(n) !== mapElementText(e)) {
      // A changed verdict: delete then add in the same transaction (nft has no replace).
      del.push(k);
      add.push(n);
    }
  }
  for (const [k, e] of next) if (!prev.has(k)) add.push(e);
  tx.deleteElements(name, del).addElements(name, add);
}

function setChanges(tx: Transaction, name: string, prev: readonly string[], next: readonly string[]): void {
  const p = new Set(prev);
  const n = new Set(next);
  tx.deleteElements(name, prev.filter((e) => !n.has(e))).addElements(name, next.filter((e) => !p.has(e)));
}

/** Only what changed between two element sets (a partial sync); empty when nothing did. */
export function partialIpvsTransaction(table: string, prev: IpvsElements, next: IpvsElements): Transaction {
  const tx = new Transaction(table);
  // One transaction, so atomic: the order only has to be valid (a key's delete before its add).
  mapChanges(tx, IPVS_MAPS.noEndpoints, prev.noEndpoints, next.noEndpoints);
  mapChanges(tx, IPVS_MAPS.services, prev.services, next.services);
  setChanges(tx, IPVS_SETS.bound, prev.bound, next.bound);
  setChanges(tx, IPVS_SETS.hairpin, prev.hairpin, next.hairpin);
  return tx;
}
