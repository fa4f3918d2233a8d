// The nftables mode's applier. It keeps the renderer's state (incremental.ts) between syncs: a
// partial sync re-renders only the changed service ports and diffs just what they touch, then
// runs one `nft -f -` transaction; a full sync (start, node changes, after any failure) renders
// everything and lists the names of our objects in the kernel first, so stale ones are deleted.
// Neither ever reads the ruleset itself back.
import type { CommandRunner } from '../../exec/runner.js';
import type { ProxyBackend, ProxySyncReport } from '../backend.js';
import type { ProxyInput } from '../types.js';
import { renderTransaction, type ExistingObjects } from './diff.js';
import type { BaseChainSpec } from '../../exec/nft/objects.js';
import { Transaction } from '../../exec/nft/transaction.js';
import { NFT_TABLE as TABLE } from '../../exec/names.js';
import { NftRenderState } from './incremental.js';
import { isOwnedName, type RenderOptions } from './render.js';
import { claimElements } from './fragment.js';
import type { DnatCounter } from '../counters.js';
import { parseElementCounters, parseNftCounters, parseNftTextCounters } from './counters.js';

/** An object of `nft -j -t list chains|sets|maps inet` (type/hook/prio: base chains only). */
interface ListedObject {
  name?: string;
  table?: string;
  type?: string;
  hook?: string;
  prio?: number;
  /** Maps: the statements every element carries (`[{ counter: null }]`). */
  stmt?: Record<string, unknown>[];
}

export class NftProxyBackend implements ProxyBackend {
  readonly mode = 'nftables' as const;
  /** What the kernel holds, as far as we know; undefined: unknown, the next sync is full. */
  private state: NftRenderState | undefined;
  private readonly opts: RenderOptions;

  constructor(
    private readonly runner: CommandRunner,
    onSkip?: (key: string, reason: string) => void,
  ) {
    this.opts = onSkip ? { onSkip } : {};
  }

  sync(input: ProxyInput, changed: ReadonlySet<string> | undefined): ProxySyncReport {
    const t0 = performance.now();
    const report = (scope: 'full' | 'partial', bytes: number): ProxySyncReport => ({ scope, bytes, ms: Math.round((performance.now() - t0) * 10) / 10 });
    try {
      if (changed !== undefined && this.state) {
        const partial = this.state.update(input, changed);
        if (partial) {
          const tx = renderTransaction(partial.prev, partial.next);
          return report('partial', tx.size ? this.apply(tx) : 0);
        }
      }
      this.state = undefined;
      const state = NftRenderState.build(input, this.opts);
      const bytes = this.apply(renderTransaction(undefined, state.ir(), { existing: this.existing() }));
      this.state = state;
      return report('full', bytes);
    } catch (e) {
      this.state = undefined; // unknown kernel state: the next sync is a full one
      throw e;
    }
  }

  /**
   * Every chain, map and set of ours the last sync installed is still there: names only (`nft -j
   * -t list chains|sets|maps inet`, ~90 ms at 10,000 services, where listing one chain's rules
   * costs ~0.7 s because nft loads every map's elements first).
   */
  intact(): boolean {
    if (!this.state) return false;
    const want = this.state.objectNames();
    const have = this.existing();
    const present = { chains: new Set(have.chains), maps: new Set(have.maps), sets: new Set(have.sets) };
    return want.chains.every((n) => present.chains.has(n)) && want.maps.every((n) => present.maps.has(n)) && want.sets.every((n) => present.sets.has(n));
  }

  /**
   * DNAT counters: for given keys, their own chains (`nft -j list chain`, one each) and their
   * shared-pick elements (`nft get element`, one per map); without keys, one `nft list table`
   * (its text: far less memory than the JSON listing's tree at 10,000 services).
   * Chain rules get their port key from the render state (the listing has no chain comments).
   */
  counters(keys?: ReadonlySet<string>): DnatCounter[] {
    const state = this.state;
    if (!state) throw new Error('the nftables proxy has not synced yet (or its last sync failed): no rules to read counters from');
    const run = (args: string[]): string => {
      const r = this.runner.run('nft', args);
      if (r.code !== 0) throw new Error(`nft ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`);
      return r.stdout;
    };
    let found: DnatCounter[];
    if (keys === undefined) {
      found = parseNftTextCounters(run(['list', 'table', 'inet', TABLE]));
    } else {
      found = [];
      const elements = new Map<string, string[]>();
      for (const key of keys) {
        const f = state.fragment(key);
        if (!f) continue;
        for (const c of f.chains) found.push(...parseNftCounters(run(['-j', 'list', 'chain', 'inet', TABLE, c.name])));
        for (const e of f.elements) {
          if (!('pick' in e)) continue;
          const list = elements.get(e.map) ?? [];
          for (const el of claimElements(e)) list.push(el.key.join(' . '));
          elements.set(e.map, list);
        }
      }
      for (const [map, list] of elements) found.push(...parseElementCounters(map, run(['get', 'element', 'inet', TABLE, map, `{ ${list.join(', ')} }`])));
    }
    const chainKeys = state.chainKeys();
    const out: DnatCounter[] = [];
    for (const c of found) {
      if (c.dest) out.push(c);
      else if (chainKeys.has(c.in)) out.push({ ...c, portKey: chainKeys.get(c.in)! });
    }
    return out;
  }

  remove(): void {
    const existing = this.existing();
    this.state = undefined;
    const names = [...existing.chains, ...existing.maps, ...existing.sets];
    if (names.length === 0) return;
    // Flush chains first (rules reference maps and chains), then drop maps and sets (their
    // elements reference chains), then the chains themselves; one transaction.
    const tx = new Transaction(TABLE);
    for (const c of existing.chains) tx.flush('chain', c);
    for (const m of existing.maps) tx.delete('map', m);
    for (const s of existing.sets) tx.delete('set', s);
    for (const c of existing.chains) tx.delete('chain', c);
    this.apply(tx);
  }

  /**
   * Names of our objects (svc-/ep-/aff-) in table inet podwire, and the hook of each base chain
   * (a full sync recreates one whose hook differs: nft cannot change it in place); empty when
   * there is none. Lists names only (`list chains|sets|maps`, terse): never the rules or
   * elements of a large table.
   */
  existing(): ExistingObjects {
    const out: ExistingObjects = { chains: [], maps: [], sets: [], hooks: {}, counted: [] };
    for (const [what, list] of [['chains', out.chains], ['sets', out.sets], ['maps', out.maps]] as const) {
      const r = this.runner.run('nft', ['-j', '-t', 'list', what, 'inet']);
      if (r.code !== 0) throw new Error(`nft list ${what} inet failed (exit ${r.code}): ${r.stderr.trim()}`);
      const items = (JSON.parse(r.stdout) as { nftables: Record<string, ListedObject>[] }).nftables;
      const kind = what.slice(0, -1);
      for (const item of items) {
        const o = item[kind];
        if (o?.table !== TABLE || !o.name || !isOwnedName(o.name)) continue;
        list.push(o.name);
        if (kind === 'map' && o.stmt?.some((x) => 'counter' in x)) out.counted!.push(o.name);
        if (kind === 'chain' && o.hook !== undefined) out.hooks![o.name] = { type: o.type, hook: o.hook, priority: o.prio } as BaseChainSpec;
      }
    }
    return out;
  }

  /** Runs the transaction; returns the length of its text. */
  private apply(tx: Transaction): number {
    const script = tx.text();
    const r = this.runner.run('nft', ['-f', '-'], script);
    if (r.code !== 0) {
      const first = script.split('\n').slice(0, 3).join(' | ');
      throw new Error(`nft -f failed (exit ${r.code}): ${r.stderr.trim().slice(0, 1000)} (script of ${script.length} bytes starting: ${first})`);
    }
    return script.length;
  }
}
