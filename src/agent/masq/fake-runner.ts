// A fake CommandRunner for the masquerade's unit tests: it simulates our chain in nft and in
// iptables/ip6tables (nat table) for the command forms masq.ts uses. The real runners are
// src/exec/runner.ts's.
import { CommandError, type CommandResult, type CommandRunner } from '../../exec/runner.js';
import { IPT_CHAIN, NFT_CHAIN, NFT_CHAIN_SPECS, NFT_TABLE } from './render.js';

interface IptState {
  chain: string[] | undefined;
  postrouting: string[];
}

const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
const fail = (stderr: string): CommandResult => ({ code: 1, stdout: '', stderr });
/** The chains the fake knows: the masquerade chain and the notrack chains. */
const NFT_NAMES = NFT_CHAIN_SPECS.map(([name]) => name);

interface NftChainState {
  rules: string[];
  /** `type … hook … priority …;` ('' for a regular chain). */
  spec: string;
}

/**
 * Simulates our chain in nft and in iptables/ip6tables (nat table), for the command forms this
 * module uses. Transactions are all or nothing, like the real tools.
 */
export class FakeRunner implements CommandRunner {
  readonly calls: { cmd: string; args: string[]; input?: string }[] = [];
  /** Commands to report as not installed. */
  readonly missing = new Set<string>();
  nftTable = false;
  /** Our chains in the table, by name (absent: no such chain). */
  nftChains = new Map<string, NftChainState>();
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
    const listed = NFT_NAMES.find((c) => joined === `list chain inet ${NFT_TABLE} ${c}`);
    if (cmd === 'nft' && listed) return this.nftList(listed);
    const fam = cmd.replace(/-(save|restore)$/, '');
    if (fam !== 'iptables' && fam !== 'ip6tables') return fail(`fake: unsupported command ${cmd}`);
    if (cmd.endsWith('-save') && joined === '-t nat') return ok(this.iptSave(this.ipt[fam]));
    if (cmd.endsWith('-restore') && args.includes('--noflush')) return this.iptRestore(fam, input ?? '');
    return fail(`fake: unsupported arguments ${cmd} ${joined}`);
  }

  /** The masquerade chain's rules (undefined: no chain); setting it keeps the spec (or makes a regular chain). */
  get nftChain(): string[] | undefined {
    return this.nftChains.get(NFT_CHAIN)?.rules;
  }
  set nftChain(rules: string[] | undefined) {
    if (rules === undefined) this.nftChains.delete(NFT_CHAIN);
    else this.nftChains.set(NFT_CHAIN, { rules, spec: this.nftChains.get(NFT_CHAIN)?.spec ?? '' });
  }
  /** The masquerade chain's `type … hook … priority …;`. */
  get nftChainSpec(): string {
    return this.nftChains.get(NFT_CHAIN)?.spec ?? '';
  }
  set nftChainSpec(spec: string) {
    const c = this.nftChains.get(NFT_CHAIN);
    if (c) c.spec = spec;
  }

  private nftList(name: string): CommandResult {
    const c = this.nftChains.get(name);
    if (!this.nftTable || !c) return fail('Error: No such file or directory');
    const spec = c.spec ? `\t\t${c.spec} policy accept;\n` : '';
    const rules = c.rules.map((r) => `\t\t${r}\n`).join('');
    return ok(`table inet ${NFT_TABLE} {\n\tchain ${name} {\n${spec}${rules}\t}\n}\n`);
  }

  private nftApply(script: string): CommandResult {
    let table = this.nftTable;
    const chains = new Map([...this.nftChains].map(([k, v]) => [k, { rules: [...v.rules], spec: v.spec }]));
    for (const line of script.split('\n').filter((l) => l.trim() !== '')) {
      const m = /^(add chain|flush chain|delete chain|add rule) inet (\S+) (\S+)(?: (.*))?$/.exec(line);
      if (line === `add table inet ${NFT_TABLE}`) table = true;
      else if (!table) return fail(`Error: No such file or directory: ${line}`);
      else if (!m || m[2] !== NFT_TABLE || !NFT_NAMES.includes(m[3]!)) return fail(`fake nft: cannot apply: ${line}`);
      else {
        const [, verb, , name, rest] = m;
        const chain = chains.get(name!);
        if (verb === 'add chain') {
          const wanted = rest === undefined ? undefined : /^\{ (.*) \}$/.exec(rest)?.[1];
          if (chain && wanted !== undefined && wanted !== chain.spec) return fail('Error: Could not process rule: Operation not supported');
          if (!chain) chains.set(name!, { rules: [], spec: wanted ?? '' });
        } else if (!chain) return fail(`Error: No such file or directory: ${line}`);
        else if (verb === 'flush chain') chain.rules = [];
        else if (verb === 'delete chain') chains.delete(name!);
        else chain.rules.push(rest!);
      }
    }
    [this.nftTable, this.nftChains] = [table, chains];
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
