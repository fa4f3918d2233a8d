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
// This file holds the operations (list, build a transaction, apply, retry); names and canonical
// forms are masq-names.ts, the transactions masq-render.ts, the listing parser masq-listing.ts.
import { CommandError } from '../exec/runner.js';
import { CNI_MASQ_TABLE as MASQ_TABLE } from '../exec/names.js';
import type { Transaction } from '../exec/nft/transaction.js';
import type { NftRunner } from './nft-runner.js';
import { mapFor, ownerComment, resolve, type MasqOwner, type MasqSpec, type Resolved } from './masq-names.js';
import { parseMasqTable, type MasqElement, type MasqState } from './masq-listing.js';
import {
  BASE_CHAIN, baseChainRule, masqAddTransaction, masqDelTransaction, masqGcTransaction, networkChainRules, planMasqGc,
  type MasqGcPlan, type MasqGcScope,
} from './masq-render.js';
import { ruleText } from '../exec/nft/objects.js';

export { FakeNft, realNft, type NftRunner } from './nft-runner.js';
export { networkChain, ownerComment, validateOwner, type MasqOwner, type MasqSpec } from './masq-names.js';
export { parseMasqTable, type MasqElement, type MasqState } from './masq-listing.js';
export {
  masqAddTransaction, masqDelTransaction, masqGcTransaction, networkChainRules, planMasqGc, renderMasqAdd, renderMasqDel, renderMasqGc,
  type MasqGcPlan, type MasqGcScope,
} from './masq-render.js';
export { MASQ_TABLE };
const T = `inet ${MASQ_TABLE}`;

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
    runner.run(masqAddTransaction(spec));
    return r.chain;
  } catch (err) {
    // The one expected failure: the IP is still mapped to another chain (stale entry of another
    // network or subnet), and the add-delete trick needs the old verdict. Anything else rethrows.
    const other = existingElement(runner, r);
    if (!other || other.verdict === `jump ${r.chain}`) throw withContext(what, err);
    try {
      runner.run(masqAddTransaction(spec, other));
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
    return { tx: masqDelTransaction(owned), result: owned };
  }, []);
}

/** Remove elements whose owner is not valid, then network chains no element jumps to. */
export function masqGc(runner: NftRunner, validOwners: Iterable<MasqOwner | string>, scope: MasqGcScope = {}): MasqGcPlan {
  const valid = Array.from(validOwners); // iterated once per attempt
  const chains = scope.chains ? Array.from(scope.chains) : undefined;
  const plan = (state: MasqState) => {
    const gc = planMasqGc(valid, state, { chains });
    return { tx: masqGcTransaction(gc), result: gc };
  };
  return retryOnce('ipMasq GC', runner, plan, { elements: [], chains: [] });
}

/**
 * List, render, apply; on failure list again and retry once, because a concurrent ADD/DEL/GC may
 * have changed what we listed (e.g. an ADD now jumps to a chain we wanted to delete: EBUSY).
 */
function retryOnce<R>(what: string, runner: NftRunner, render: (s: MasqState) => { tx: Transaction; result: R }, none: R): R {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    const state = readMasqState(runner);
    if (!state) return none;
    const { tx, result } = render(state);
    if (!tx.size) return result;
    try {
      runner.run(tx);
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
  const vmap = ruleText(baseChainRule(r.family));
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
