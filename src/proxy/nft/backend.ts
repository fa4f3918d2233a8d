// The nftables mode's applier: renders the IR, diffs it against what it last applied (partial
// sync: only changed chains and map elements), and runs one `nft -f -` transaction. A full sync
// (start, node changes, after any failure) lists the names of our objects in the kernel first so
// stale ones are deleted; a partial sync never reads the table back.
import type { CommandRunner } from '../../agent/masq/runner.js';
import type { ProxyBackend, ProxySyncReport } from '../backend.js';
import type { ProxyInput } from '../types.js';
import { renderScript, type ExistingObjects } from './diff.js';
import type { NftIR } from './ir.js';
import { isOwnedName, renderProxyIR } from './render.js';

const TABLE = 'podwire';

export class NftProxyBackend implements ProxyBackend {
  readonly mode = 'nftables' as const;
  private applied: NftIR | undefined;

  constructor(
    private readonly runner: CommandRunner,
    private readonly onSkip?: (key: string, reason: string) => void,
  ) {}

  sync(input: ProxyInput, changed: ReadonlySet<string> | undefined): ProxySyncReport {
    const t0 = performance.now();
    const next = renderProxyIR(input, this.onSkip ? { onSkip: this.onSkip } : {});
    const full = changed === undefined || this.applied === undefined;
    let script: string;
    try {
      script = full ? renderScript(undefined, next, { existing: this.existing() }) : renderScript(this.applied, next);
      if (script !== '') this.apply(script);
    } catch (e) {
      this.applied = undefined; // unknown kernel state: the next sync is a full one
      throw e;
    }
    this.applied = next;
    return { scope: full ? 'full' : 'partial', bytes: script.length, ms: Math.round((performance.now() - t0) * 10) / 10 };
  }

  remove(): void {
    const existing = this.existing();
    this.applied = undefined;
    const names = [...existing.chains, ...existing.maps, ...existing.sets];
    if (names.length === 0) return;
    // Flush chains first (rules reference maps and chains), then drop maps and sets (their
    // elements reference chains), then the chains themselves; one transaction.
    const t = `inet ${TABLE}`;
    const lines = [
      ...existing.chains.map((c) => `flush chain ${t} ${c}`),
      ...existing.maps.map((m) => `delete map ${t} ${m}`),
      ...existing.sets.map((s) => `delete set ${t} ${s}`),
      ...existing.chains.map((c) => `delete chain ${t} ${c}`),
    ];
    this.apply(lines.join('\n') + '\n');
  }

  /** Names of our objects (svc-/ep-/aff-) in table inet podwire; empty when the table is absent. */
  existing(): ExistingObjects {
    const r = this.runner.run('nft', ['-j', 'list', 'table', 'inet', TABLE]);
    const out: ExistingObjects = { chains: [], maps: [], sets: [] };
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return out;
      throw new Error(`nft list table inet ${TABLE} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    const items = (JSON.parse(r.stdout) as { nftables: Record<string, { name?: string; type?: unknown; map?: unknown }>[] }).nftables;
    for (const item of items) {
      if (item.chain?.name && isOwnedName(item.chain.name)) out.chains.push(item.chain.name);
      if (item.map?.name && isOwnedName(item.map.name)) out.maps.push(item.map.name);
      if (item.set?.name && isOwnedName(item.set.name)) out.sets.push(item.set.name);
    }
    return out;
  }

  private apply(script: string): void {
    const r = this.runner.run('nft', ['-f', '-'], script);
    if (r.code !== 0) {
      const first = script.split('\n').slice(0, 3).join(' | ');
      throw new Error(`nft -f failed (exit ${r.code}): ${r.stderr.trim().slice(0, 1000)} (script of ${script.length} bytes starting: ${first})`);
    }
  }
}
