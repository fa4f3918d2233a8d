// The iptables mode's applier (kube-proxy --proxy-mode iptables): reads iptables-save once per
// sync (which of our chains exist, which jumps from built-in chains are missing), renders, and runs
// one `iptables-restore --noflush` transaction that rewrites our PODWIRE-* chains, deletes our stale
// ones and adds missing jumps; nothing else is touched. A sync whose text equals the last one
// written, with nothing missing or stale, writes nothing.
import type { CommandRunner } from '../../agent/masq/runner.js';
import type { ProxyBackend, ProxySyncReport } from '../backend.js';
import type { ProxyInput } from '../types.js';
import { findMissingJumps, listedChains, serialize, TABLES, type TableName } from './ir.js';
import { renderIptablesIR } from './render.js';

function section(saved: string, table: TableName): string {
  const start = saved.indexOf(`*${table}\n`);
  if (start < 0) return '';
  const end = saved.indexOf('\nCOMMIT', start);
  return saved.slice(start, end < 0 ? undefined : end);
}

export class IptablesProxyBackend implements ProxyBackend {
  readonly mode = 'iptables' as const;
  private lastText: string | undefined;

  constructor(
    private readonly runner: CommandRunner,
    private readonly onSkip?: (key: string, reason: string) => void,
  ) {}

  private save(): Record<TableName, string> {
    const out = {} as Record<TableName, string>;
    for (const table of TABLES) {
      const r = this.runner.run('iptables-save', ['-t', table]);
      if (r.code !== 0) throw new Error(`iptables-save -t ${table} failed (exit ${r.code}): ${r.stderr.trim()}`);
      out[table] = section(r.stdout, table);
    }
    return out;
  }

  private restore(text: string): void {
    const r = this.runner.run('iptables-restore', ['--noflush', '-w', '5'], text);
    if (r.code !== 0) throw new Error(`iptables-restore --noflush failed (exit ${r.code}): ${r.stderr.trim().slice(0, 1000)}`);
  }

  sync(input: ProxyInput, _changed: ReadonlySet<string> | undefined): ProxySyncReport {
    const t0 = performance.now();
    const ir = renderIptablesIR(input, this.onSkip ? { onSkip: this.onSkip } : {});
    const saved = this.save();
    const missingJumps = findMissingJumps(ir, saved);
    const staleChains = {} as Record<TableName, string[]>;
    let missingChains = false;
    for (const table of TABLES) {
      const rendered = new Set(ir.tables[table].chains.map((c) => c.name));
      const listed = listedChains(saved[table]);
      staleChains[table] = listed.filter((c) => !rendered.has(c));
      missingChains ||= [...rendered].some((c) => !listed.includes(c));
    }
    const stale = TABLES.some((t) => staleChains[t].length > 0);
    const text = serialize(ir, { missingJumps, staleChains });
    const core = serialize(ir); // the same rules without jump/stale lines: what "unchanged" compares
    if (core === this.lastText && missingJumps.length === 0 && !stale && !missingChains) {
      return { scope: 'full', bytes: 0, ms: Math.round((performance.now() - t0) * 10) / 10 };
    }
    try {
      this.restore(text);
    } catch (e) {
      this.lastText = undefined;
      throw e;
    }
    this.lastText = core;
    return { scope: 'full', bytes: text.length, ms: Math.round((performance.now() - t0) * 10) / 10 };
  }

  /** Deletes the jumps to our chains from built-in chains, then flushes and deletes our chains. */
  remove(): void {
    this.lastText = undefined;
    const saved = this.save();
    const lines: string[] = [];
    for (const table of TABLES) {
      const ours = listedChains(saved[table]);
      if (ours.length === 0) continue;
      const jumps = saved[table].split('\n').filter((l) => /^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l) && ours.some((c) => new RegExp(` -[jg] ${c}( |$)`).test(l)));
      lines.push(`*${table}`, ...jumps.map((l) => l.replace(/^-A /, '-D ')), ...ours.map((c) => `:${c} - [0:0]`), ...ours.map((c) => `-X ${c}`), 'COMMIT');
    }
    if (lines.length > 0) this.restore(lines.join('\n') + '\n');
  }
}
