// A fake CommandRunner for the masquerade's unit tests: it simulates our chain in nft and in
// iptables/ip6tables (nat table) for the command forms masq.ts uses. The real runners are
// src/exec/runner.ts's.
import { CommandError, type CommandResult, type CommandRunner } from '../../exec/runner.js';
import { IPT_CHAIN, NFT_CHAIN, NFT_TABLE } from './render.js';

interface IptState {
  chain: string[] | undefined;
  postrouting: string[];
}

const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
const fail = (stderr: string): CommandResult => ({ code: 1, stdout: '', stderr });
const NFT_PREFIX = `inet ${NFT_TABLE} ${NFT_CHAIN}`;

/**
 * Simulates our chain in nft and in iptables/ip6tables (nat table), for the command forms this
 * module uses. Transactions are all or nothing, like the real tools.
 */
export class FakeRunner implements CommandRunner {
  readonly calls: { cmd: string; args: string[]; input?: string }[] = [];
  /** Commands to report as not installed. */
  readonly missing = new Set<string>();
  nftTable = false;
  nftChain: string[] | undefined;
  /** The chain's `type … hook … priority …;` ('' for a regular chain). */
  nftChainSpec = '';
  readonly ipt: Record<'iptables' | 'ip6tables', IptState> = {
    iptables: { chain: undefined, postrouting: [] },
    ip6tables: { chain: undefined, postrouting: [] },
  };

  /** Calls that change state: nft -f and *-restore. */
  writes(): { cmd: string; args: string[]; input?: string }[] {
    return this.calls.filter((c) => c.args.includes('-f') || c.cmd.endsWith('-restore'));
  }

  run(cmd: string, args: readonly string[], input?: string): CommandResult {
    this.calls.push({ cmd, args: [...args], input });
    if (this.missing.has(cmd)) throw new CommandError(`${cmd} is not installed (not in PATH)`, 'CMD_MISSING');
    const joined = args.join(' ');
    if (cmd === 'nft' && joined === '-f -') return this.nftApply(input ?? '');
    if (cmd === 'nft' && joined === `list chain ${NFT_PREFIX}`) return this.nftList();
    const fam = cmd.replace(/-(save|restore)$/, '');
    if (fam !== 'iptables' && fam !== 'ip6tables') return fail(`fake: unsupported command ${cmd}`);
    if (cmd.endsWith('-save') && joined === '-t nat') return ok(this.iptSave(this.ipt[fam]));
    if (cmd.endsWith('-restore') && args.includes('--noflush')) return this.iptRestore(fam, input ?? '');
    return fail(`fake: unsupported arguments ${cmd} ${joined}`);
  }

  private nftList(): CommandResult {
    if (!this.nftTable || !this.nftChain) return fail('Error: No such file or directory');
    const spec = this.nftChainSpec ? `\t\t${this.nftChainSpec} policy accept;\n` : '';
    const rules = this.nftChain.map((r) => `\t\t${r}\n`).join('');
    return ok(`table inet ${NFT_TABLE} {\n\tchain ${NFT_CHAIN} {\n${spec}${rules}\t}\n}\n`);
  }

  private nftApply(script: string): CommandResult {
    let table = this.nftTable;
    let chain = this.nftChain ? [...this.nftChain] : undefined;
    let spec = this.nftChainSpec;
    for (const line of script.split('\n').filter((l) => l.trim() !== '')) {
      if (line === `add table inet ${NFT_TABLE}`) table = true;
      else if (!table) return fail(`Error: No such file or directory: ${line}`);
      else if (line.startsWith(`add chain ${NFT_PREFIX}`)) {
        const wanted = /\{ (.*) \}$/.exec(line)?.[1];
        if (chain && wanted !== undefined && wanted !== spec) return fail('Error: Could not process rule: Operation not supported');
        if (!chain) [chain, spec] = [[], wanted ?? ''];
      }
      else if (line === `flush chain ${NFT_PREFIX}` && chain) chain = [];
      else if (line === `delete chain ${NFT_PREFIX}` && chain) chain = undefined;
      else if (line.startsWith(`add rule ${NFT_PREFIX} `) && chain) chain.push(line.slice(`add rule ${NFT_PREFIX} `.length));
      else return fail(`fake nft: cannot apply: ${line}`);
    }
    [this.nftTable, this.nftChain, this.nftChainSpec] = [table, chain, spec];
    return ok();
  }

  private iptSave(s: IptState): string {
    const lines = ['*nat', ':POSTROUTING ACCEPT [0:0]'];
    if (s.chain) lines.push(`:${IPT_CHAIN} - [0:0]`);
    lines.push(...s.postrouting, ...(s.chain ?? []), 'COMMIT');
    return lines.join('\n') + '\n';
  }

  private iptRestore(fam: 'iptables' | 'ip6tables', script: string): CommandResult {
    const s: IptState = { chain: this.ipt[fam].chain && [...this.ipt[fam].chain!], postrouting: [...this.ipt[fam].postrouting] };
    for (const line of script.split('\n').filter((l) => l.trim() !== '' && l !== '*nat' && l !== 'COMMIT')) {
      if (line.startsWith(`:${IPT_CHAIN} `)) s.chain = [];
      else if (line.startsWith(`-A ${IPT_CHAIN} `) && s.chain) s.chain.push(line);
      else if (line.startsWith('-A POSTROUTING ')) s.postrouting.push(line);
      else if (line.startsWith('-D POSTROUTING ')) {
        const i = s.postrouting.indexOf('-A' + line.slice(2));
        if (i < 0) return fail(`${fam}-restore: line failed: ${line}: Bad rule (does a matching rule exist in that chain?)`);
        s.postrouting.splice(i, 1);
      } else if (line === `-X ${IPT_CHAIN}` && s.chain && !s.postrouting.some((r) => r.endsWith(`-j ${IPT_CHAIN}`))) s.chain = undefined;
      else return fail(`${fam}-restore: line failed: ${line}`);
    }
    this.ipt[fam] = s;
    return ok();
  }
}
