// The side-effect boundary of ipMasq: running nft. The real runner execs `nft` in the current netns
// (the runtime executes the CNI plugin inside the node's); the fake records transactions for tests.
import { execFileSync } from 'node:child_process';

export class MasqError extends Error {
  readonly code: string;
  constructor(message: string, code = 'EINVAL') {
    super(message);
    this.name = 'MasqError';
    this.code = code;
  }
}

export interface NftRunner {
  /** Apply one `nft -f -` transaction (all or nothing). */
  run(script: string): void;
  /** `nft -j ARGS`, parsed; throws MasqError code ENOENT when the listed object does not exist. */
  listJson(args: string[]): unknown;
}

function nftFailure(what: string, err: unknown): MasqError {
  const e = err as NodeJS.ErrnoException & { status?: number | null; stderr?: string | Buffer };
  if (e.code === 'ENOENT' && e.status == null) {
    return new MasqError(`${what}: the nft command was not found in PATH (install the nftables package)`, 'NFT_MISSING');
  }
  const stderr = String(e.stderr ?? '').trim();
  const code = /No such file or directory/.test(stderr) ? 'ENOENT' : 'NFT_FAILED';
  const how = e.status == null ? e.message : `exit ${e.status}`;
  return new MasqError(`${what} failed (${how}): ${stderr || e.message}`, code);
}

/** nft in the current netns: the runtime already executes the CNI plugin inside the right one. */
export const realNft: NftRunner = {
  run(script: string): void {
    try {
      execFileSync('nft', ['-f', '-'], { input: script, stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    } catch (err) {
      throw nftFailure('nft -f - (transaction on table inet podwire-cni)', err);
    }
  },
  listJson(args: string[]): unknown {
    let out: string;
    try {
      out = execFileSync('nft', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    } catch (err) {
      throw nftFailure(`nft -j ${args.join(' ')}`, err);
    }
    try {
      return JSON.parse(out);
    } catch {
      throw new MasqError(`nft -j ${args.join(' ')}: output is not JSON: ${out.slice(0, 200)}`, 'NFT_BAD_JSON');
    }
  },
};

/** Records transactions; `listing` is what listJson returns (undefined: the table does not exist). */
export class FakeNft implements NftRunner {
  readonly scripts: string[] = [];
  readonly lists: string[][] = [];
  listing: unknown = undefined;
  /** Errors thrown by the next run() calls, in order (the script is still recorded). */
  readonly runFailures: Error[] = [];

  run(script: string): void {
    this.scripts.push(script);
    const failure = this.runFailures.shift();
    if (failure) throw failure;
  }

  listJson(args: string[]): unknown {
    this.lists.push(args);
    if (this.listing === undefined) throw new MasqError(`nft -j ${args.join(' ')} failed (exit 1): Error: No such file or directory`, 'ENOENT');
    return this.listing;
  }
}

// ---------------------------------------------------------------------------------------------
// Operations

