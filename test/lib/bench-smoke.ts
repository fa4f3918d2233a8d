// What the `bench` smoke tests share: where bench/main.js is, running it with a marker in its
// environment (every process it starts inherits it), and finding processes that still carry it.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const BENCH_MAIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'bench', 'main.js');

/** PIDs of processes whose environment holds exactly `entry` (e.g. TMPDIR=/tmp/x). */
export function processesWithEnv(entry: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(entry)) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** `node bench/main.js ARGS` with NAME=<random hex> added to its environment; marker is that NAME=VALUE entry. */
export function runMarked(args: string[], name: string, timeoutMs = 300_000): { r: SpawnSyncReturns<string>; marker: string } {
  const value = randomBytes(6).toString('hex');
  const r = spawnSync('node', [BENCH_MAIN, ...args], { encoding: 'utf8', env: { ...process.env, [name]: value }, timeout: timeoutMs });
  return { r, marker: `${name}=${value}` };
}
