// Start processes inside a netns. The child is forked while this thread is inside the target, so
// it inherits the netns without `ip netns exec` (which also remounts /sys).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { withNetns, type NetnsRef, type NetnsSpec } from './netns.js';

export function spawnInNetns(ns: NetnsSpec | NetnsRef, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  return withNetns(ns, () => spawn(cmd, args, opts));
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a command in a netns to completion, with a time limit; never rejects for a non-zero exit. */
export function execInNetns(
  ns: NetnsSpec | NetnsRef,
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const stdin = opts.input === undefined ? 'ignore' : 'pipe';
    const child = spawnInNetns(ns, cmd, args, { stdio: [stdin, 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // the child may exit before reading its input
      child.stdin.end(opts.input);
    }
  });
}
