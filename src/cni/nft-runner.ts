// The side-effect boundary of ipMasq: nft transactions (src/exec/nft Transactions, rendered here
// once) and JSON listings, over src/exec's CommandRunner (execRunner: the runtime executes the CNI
// plugin inside the node's netns). The fake records transactions for tests.
import { CommandError, execRunner, type CommandRunner } from '../exec/runner.js';
import { CNI_MASQ_TABLE } from '../exec/names.js';
import type { Transaction } from '../exec/nft/transaction.js';

export interface NftRunner {
  /** Apply one transaction with `nft -f -` (all or nothing). */
  run(tx: Transaction): void;
  /** `nft -j ARGS`, parsed; throws CommandError code ENOENT when the listed object does not exist. */
  listJson(args: string[]): unknown;
}

function nftFailure(what: string, code: number, stderr: string): CommandError {
  const text = stderr.trim();
  return new CommandError(`${what} failed (exit ${code}): ${text || 'no message'}`, /No such file or directory/.test(text) ? 'ENOENT' : 'CMD_FAILED');
}

/** nft through a CommandRunner (default: in the current netns). */
export function nftOver(runner: CommandRunner = execRunner): NftRunner {
  return {
    run(tx: Transaction): void {
      const r = runner.run('nft', ['-f', '-'], tx.text());
      if (r.code !== 0) throw nftFailure(`nft -f - (transaction on table inet ${CNI_MASQ_TABLE})`, r.code, r.stderr);
    },
    listJson(args: string[]): unknown {
      const r = runner.run('nft', ['-j', ...args]);
      if (r.code !== 0) throw nftFailure(`nft -j ${args.join(' ')}`, r.code, r.stderr);
      try {
        return JSON.parse(r.stdout);
      } catch {
        throw new CommandError(`nft -j ${args.join(' ')}: output is not JSON: ${r.stdout.slice(0, 200)}`, 'NFT_BAD_JSON');
      }
    },
  };
}

export const realNft: NftRunner = nftOver();

/** Records transactions (as their text); `listing` is what listJson returns (undefined: the table does not exist). */
export class FakeNft implements NftRunner {
  readonly scripts: string[] = [];
  readonly lists: string[][] = [];
  listing: unknown = undefined;
  /** Errors thrown by the next run() calls, in order (the script is still recorded). */
  readonly runFailures: Error[] = [];

  run(tx: Transaction): void {
    this.scripts.push(tx.text());
    const failure = this.runFailures.shift();
    if (failure) throw failure;
  }

  listJson(args: string[]): unknown {
    this.lists.push(args);
    if (this.listing === undefined) throw new CommandError(`nft -j ${args.join(' ')} failed (exit 1): Error: No such file or directory`, 'ENOENT');
    return this.listing;
  }
}
