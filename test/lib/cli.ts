// The built `podwire` CLI run as a user runs it (its own process, NO_COLOR set), for the tests of
// the debugging commands: its exit code, stdout and stderr.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src', 'cli', 'main.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A runner of `podwire ARGS…` that kills a run taking longer than timeoutMs (code null then). */
export function cliRunner(timeoutMs: number): (args: string[]) => CliRun {
  return (args) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}
