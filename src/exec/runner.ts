// The side-effect boundary of everything that drives a packet-filter tool (nft, iptables-save,
// iptables-restore, conntrack): one CommandRunner for the agent's masquerade, its service proxy and
// the CNI plugin's ipMasq. The real runner execs in the current netns (the agent runs in the
// node's, the runtime runs the CNI plugin there); netnsRunner wraps the command in
// `ip netns exec` (tests, lab). Fakes implement the same interface.
import { spawnSync } from 'node:child_process';

/** What went wrong running or using a command, with a code callers can branch on. */
export class CommandError extends Error {
  /** CMD_MISSING (not installed), CMD_FAILED (it failed), ENOENT (the listed object does not exist), EINVAL (bad input), ... */
  readonly code: string;
  constructor(message: string, code = 'EINVAL') {
    super(message);
    this.name = 'CommandError';
    this.code = code;
  }
}

export interface CommandResult {
  /** Exit status; -1 when killed by a signal or the time limit. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  /** Runs to completion; throws CommandError code CMD_MISSING when `cmd` is not installed. */
  run(cmd: string, args: readonly string[], input?: string): CommandResult;
}

const TIMEOUT_MS = 15_000;
// Listings of large rulesets (nft -j list table, iptables-save with thousands of services) run to
// tens of MB; Node's default 1 MiB cap made them fail with ENOBUFS.
const MAX_OUTPUT = 512 * 1024 * 1024;

function spawnChecked(cmd: string, argv: string[], input: string | undefined, shown: string): CommandResult {
  const r = spawnSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: MAX_OUTPUT, stdio: ['pipe', 'pipe', 'pipe'] });
  const err = r.error as NodeJS.ErrnoException | undefined;
  if (err?.code === 'ENOENT') throw new CommandError(`${shown}: ${cmd} is not installed (not in PATH)`, 'CMD_MISSING');
  if (err) throw new CommandError(`${shown}: ${err.message}`, 'CMD_FAILED');
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Execs in the current netns. */
export const execRunner: CommandRunner = {
  run(cmd, args, input) {
    return spawnChecked(cmd, [cmd, ...args], input, cmd);
  },
};

/** Execs inside the named netns with `ip netns exec` (which reports a missing command itself). */
export function netnsRunner(netns: string): CommandRunner {
  return {
    run(cmd, args, input) {
      const r = spawnChecked('ip', ['ip', 'netns', 'exec', netns, cmd, ...args], input, `ip netns exec ${netns} ${cmd}`);
      if (r.code !== 0 && r.stderr.includes(`exec of "${cmd}" failed: No such file or directory`)) {
        throw new CommandError(`${cmd} is not installed (not in PATH)`, 'CMD_MISSING');
      }
      return r;
    },
  };
}
