// The node agent's masquerade (flannel's job), kept in sync in nftables or iptables mode.
//
// Cheap, idempotent sync: every sync lists what is installed (one `nft list chain` or one
// `iptables-save -t nat` per family, never a write) and writes only when the rendered ruleset or
// the listing differs from what this instance wrote and then listed last time. Comparing with
// our own post-write listing, instead of predicting how nft/iptables print rules, is exact for any
// tool version and still catches drift (someone flushed, edited or deleted our chain or jump).
// In nftables mode "our chain" is three: the masquerade chain and the overlay's two notrack
// chains (render.ts), listed one by one (three `nft list chain`) and written in one transaction.
// The price: a new Masquerade (agent restart) writes once on its first sync, which is harmless:
// each write is one atomic transaction (nft -f / *-restore) that leaves established NAT
// mappings (conntrack) alone.
//
// Mode switch: the first successful sync of an instance then removes the other mode's rules
// (removeOtherMode() does it on demand); a missing binary of the other mode means nothing to
// remove. Briefly both modes' chains exist, which is harmless: the first NAT verdict wins.
import fs from 'node:fs';
import type { Family } from '../../net/ip.js';
import {
  IPT_CHAIN, NFT_CHAIN, NFT_CHAIN_SPECS, NFT_TABLE, iptablesBinary, planFamilies, renderIptablesMasq,
  renderIptablesMasqRemove, renderNftMasq, renderNftMasqRemove, type MasqInput, type MasqMode,
} from './render.js';
import { CommandError, type CommandRunner } from '../../exec/runner.js';

export type { MasqInput, MasqMode } from './render.js';

/** Our iptables objects in one family's nat table, as iptables-save prints them. */
export interface IptablesMasqState {
  /** `-A PODWIRE-POSTRTG …` lines; undefined when the chain does not exist. */
  chain: string[] | undefined;
  /** `-A POSTROUTING … -j PODWIRE-POSTRTG` lines. */
  jumps: string[];
}

export interface MasqObservation {
  mode: MasqMode;
  /**
   * `nft list chain inet podwire pod-masquerade` output, then each notrack chain's (`# absent: NAME`
   * for one that does not exist); undefined when none of them exists or nft is not installed.
   */
  nftables: string | undefined;
  /** Per family; undefined when that iptables-save is not installed. */
  iptables: Record<Family, IptablesMasqState | undefined>;
}

const FAMILIES = [4, 6] as const;
/** Each of our nft chains as `nft list chain` prints it (undefined: absent). */
type NftListing = Map<string, string | undefined>;
const listingText = (l: NftListing): string | undefined =>
  [...l.values()].every((v) => v === undefined) ? undefined : [...l].map(([name, v]) => v ?? `# absent: ${name}\n`).join('');

function tolerateMissing<T>(fn: () => T, absent: T): T {
  try {
    return fn();
  } catch (err) {
    if ((err as CommandError).code === 'CMD_MISSING') return absent;
    throw err;
  }
}

export function parseIptablesSave(text: string): IptablesMasqState {
  const state: IptablesMasqState = { chain: undefined, jumps: [] };
  const rules: string[] = [];
  for (const line of text.split('\n').map((l) => l.trimEnd())) {
    if (line.startsWith(`:${IPT_CHAIN} `)) state.chain = rules;
    else if (line.startsWith(`-A ${IPT_CHAIN} `)) rules.push(line);
    else if (line.startsWith('-A POSTROUTING ') && new RegExp(` -[jg] ${IPT_CHAIN}( |$)`).test(line)) state.jumps.push(line);
  }
  return state;
}

interface PersistedMasq {
  mode: MasqMode;
  nft?: { script: string; listing: string };
  iptables?: Record<string, { script: string; listing: string }>;
}

export class Masquerade {
  private lastNft: { script: string; listing: string } | undefined;
  private readonly lastIpt = new Map<Family, { script: string; listing: string }>();
  private lastFamilies: string | undefined;
  private otherModeRemoved = false;

  /**
   * stateFile (optional): where the last write and the listing it produced are kept, so that an
   * agent restarted on an intact node recognizes its own rules and writes nothing (rule handles stay).
   */
  constructor(
    private readonly runner: CommandRunner,
    readonly mode: MasqMode,
    private readonly stateFile?: string,
  ) {
    if (mode !== 'nftables' && mode !== 'iptables') throw new CommandError(`masquerade: unknown mode ${JSON.stringify(mode)}: expected nftables or iptables`);
    this.loadState();
  }

  private loadState(): void {
    if (!this.stateFile) return;
    try {
      const saved = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as PersistedMasq;
      if (saved.mode !== this.mode) return;
      this.lastNft = saved.nft;
      for (const [family, v] of Object.entries(saved.iptables ?? {})) this.lastIpt.set(Number(family) as Family, v);
    } catch {
      // absent or unreadable: the first sync writes once
    }
  }

  private saveState(): void {
    if (!this.stateFile) return;
    const saved: PersistedMasq = { mode: this.mode, nft: this.lastNft, iptables: Object.fromEntries(this.lastIpt) };
    fs.writeFileSync(`${this.stateFile}.tmp`, JSON.stringify(saved) + '\n', { mode: 0o600 });
    fs.renameSync(`${this.stateFile}.tmp`, this.stateFile);
  }

  /** Makes the installed rules match `input`; returns whether it wrote anything. */
  sync(input: MasqInput): boolean {
    const families = planFamilies(input).map((f) => f.family); // invalid input fails before anything runs
    const wrote = this.mode === 'nftables' ? this.syncNft(input) : this.syncAllIptables(input, families);
    if (wrote) this.saveState();
    // Only once this mode works: if it cannot (e.g. nft is missing), the old mode keeps masquerading.
    return (this.otherModeRemoved ? false : this.removeOtherMode()) || wrote;
  }

  /** Removes this mode's rules (only ours); fine when they are absent. Returns whether it wrote. */
  remove(): boolean {
    this.lastFamilies = undefined;
    if (this.mode === 'nftables') return this.removeNft();
    return FAMILIES.map((f) => this.removeIptables(f)).some(Boolean);
  }

  /** Removes the other mode's rules, e.g. left from before a mode switch. Returns whether it wrote. */
  removeOtherMode(): boolean {
    const wrote = this.mode === 'nftables' ? FAMILIES.map((f) => this.removeIptables(f)).some(Boolean) : this.removeNft();
    this.otherModeRemoved = true;
    return wrote;
  }

  /** What is installed now, in both modes. */
  observe(): MasqObservation {
    return {
      mode: this.mode,
      nftables: tolerateMissing(() => listingText(this.nftListing()), undefined),
      iptables: { 4: tolerateMissing(() => this.iptablesState(4), undefined), 6: tolerateMissing(() => this.iptablesState(6), undefined) },
    };
  }

  // -------------------------------------------------------------------------------------------
  // nftables

  private syncNft(input: MasqInput): boolean {
    const script = renderNftMasq(input);
    const listing = this.nftListing();
    const text = listingText(listing);
    if (text !== undefined && this.lastNft?.script === script && this.lastNft.listing === text) return false;
    // One of our chains with another type/hook/priority cannot be updated in place (EOPNOTSUPP).
    const recreate = NFT_CHAIN_SPECS.some(([name, spec]) => listing.get(name) !== undefined && !listing.get(name)!.includes(spec));
    this.nftApply(recreate ? renderNftMasq(input, { recreate }) : script, 'sync');
    const after = this.nftListing();
    if (after.get(NFT_CHAIN) === undefined) throw new CommandError(`masquerade: nft -f succeeded but chain ${NFT_CHAIN} is not listed`, 'VERIFY_FAILED');
    this.lastNft = { script, listing: listingText(after)! };
    return true;
  }

  private removeNft(): boolean {
    this.lastNft = undefined;
    const listing = tolerateMissing(() => listingText(this.nftListing()), undefined);
    if (listing === undefined) return false;
    this.nftApply(renderNftMasqRemove(), 'remove');
    return true;
  }

  /** Our chains as `nft list chain` prints them; a chain (or the table) that does not exist is undefined. */
  private nftListing(): NftListing {
    const out: NftListing = new Map();
    for (const [name] of NFT_CHAIN_SPECS) {
      const args = ['list', 'chain', 'inet', NFT_TABLE, name];
      const r = this.runner.run('nft', args);
      if (r.code === 0) out.set(name, r.stdout);
      else if (/No such file or directory/.test(r.stderr)) out.set(name, undefined);
      else throw new CommandError(`masquerade: nft ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`, 'CMD_FAILED');
    }
    return out;
  }

  private nftApply(script: string, what: string): void {
    const r = this.runner.run('nft', ['-f', '-'], script);
    if (r.code !== 0) {
      throw new CommandError(`masquerade ${what}: nft -f - (chain inet ${NFT_TABLE} ${NFT_CHAIN}) failed (exit ${r.code}): ${r.stderr.trim()}`, 'CMD_FAILED');
    }
  }

  // -------------------------------------------------------------------------------------------
  // iptables

  private syncAllIptables(input: MasqInput, families: Family[]): boolean {
    const key = families.join(',');
    let wrote = false;
    for (const family of FAMILIES) {
      if (families.includes(family)) wrote = this.syncIptables(input, family) || wrote;
      // A family dropped from the config (or unknown at start): remove its chain once.
      else if (this.lastFamilies !== key) wrote = this.removeIptables(family) || wrote;
    }
    this.lastFamilies = key;
    return wrote;
  }

  private syncIptables(input: MasqInput, family: Family): boolean {
    const script = renderIptablesMasq(input, family, { jumpMissing: false })!;
    const state = this.iptablesState(family);
    const listing = JSON.stringify(state);
    const last = this.lastIpt.get(family);
    if (state.chain && state.jumps.length > 0 && last?.script === script && last.listing === listing) return false;
    this.iptablesRestore(family, renderIptablesMasq(input, family, { jumpMissing: state.jumps.length === 0 })!, 'sync');
    const after = this.iptablesState(family);
    const want = script.split('\n').filter((l) => l.startsWith(`-A ${IPT_CHAIN} `)).length;
    if (after.chain?.length !== want || after.jumps.length === 0) {
      throw new CommandError(`masquerade: ${iptablesBinary(family, '-restore')} succeeded but ${iptablesBinary(family, '-save')} shows ${JSON.stringify(after)}`, 'VERIFY_FAILED');
    }
    this.lastIpt.set(family, { script, listing: JSON.stringify(after) });
    return true;
  }

  private removeIptables(family: Family): boolean {
    this.lastIpt.delete(family);
    const state = tolerateMissing(() => this.iptablesState(family), undefined);
    if (!state || (state.chain === undefined && state.jumps.length === 0)) return false;
    this.iptablesRestore(family, renderIptablesMasqRemove(state.jumps), 'remove');
    return true;
  }

  private iptablesState(family: Family): IptablesMasqState {
    const cmd = iptablesBinary(family, '-save');
    const r = this.runner.run(cmd, ['-t', 'nat']);
    if (r.code !== 0) throw new CommandError(`masquerade: ${cmd} -t nat failed (exit ${r.code}): ${r.stderr.trim()}`, 'CMD_FAILED');
    return parseIptablesSave(r.stdout);
  }

  private iptablesRestore(family: Family, script: string, what: string): void {
    const cmd = iptablesBinary(family, '-restore');
    // -w: wait for the xtables lock (iptables-legacy) instead of failing when another writer holds it.
    const r = this.runner.run(cmd, ['--noflush', '-w', '5'], script);
    if (r.code !== 0) throw new CommandError(`masquerade ${what}: ${cmd} --noflush failed (exit ${r.code}): ${r.stderr.trim()}`, 'CMD_FAILED');
  }
}
