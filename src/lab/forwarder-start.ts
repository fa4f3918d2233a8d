// Starting the lab's forwarder (forwarder.ts) as a tracked process of the lab, in one of its
// namespaces or in the caller's own (the root netns: only loopback or unix listeners, see
// forward-spec.ts), and waiting for its ready line.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Lab } from './lab.js';
import { parseReadyLine, type ReadyLine } from './forward-spec.js';

export const FORWARDER_BIN = path.join(path.dirname(new URL(import.meta.url).pathname), 'forwarder.js');
const READY_TIMEOUT_MS = 10_000;

/** Resolves with the forwarder's ready line; rejects (naming its log) if it exits or stays silent. */
export function waitReady(child: ChildProcess, what: string, log: string): Promise<ReadyLine> {
  const tail = () => {
    try {
      return fs.readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return '';
    }
  };
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => finish(new Error(`${what}: no ready line within ${READY_TIMEOUT_MS} ms (log ${log}: ${tail()})`)), READY_TIMEOUT_MS);
    const finish = (err?: Error, line?: ReadyLine) => {
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      child.stdout!.destroy();
      if (err) {
        child.kill('SIGKILL');
        reject(err);
      } else resolve(line!);
    };
    const onExit = (code: number | null) => finish(new Error(`${what} exited (${code}) before it was ready (log ${log}: ${tail()})`));
    child.once('exit', onExit);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(undefined, parseReadyLine(buf.slice(0, nl)));
      } catch (e) {
        finish(e as Error);
      }
    });
  });
}

/**
 * A forwarder with these arguments, in `netns` (one of the lab's) or, without it, in the caller's
 * netns; its stderr goes to `log`; it exits by itself once the lab's state file is gone.
 */
export async function startForwarder(lab: Lab, netns: string | undefined, args: string[], log: string, what: string): Promise<ReadyLine> {
  fs.mkdirSync(path.dirname(log), { recursive: true, mode: 0o700 });
  const out = fs.openSync(log, 'a', 0o600);
  const argv = [FORWARDER_BIN, ...args, '--watch', lab.statePath()];
  const opts = { stdio: ['ignore', 'pipe', out] as ['ignore', 'pipe', number] };
  const child = netns === undefined ? lab.spawnInCallerNetns(process.execPath, argv, opts) : lab.spawn(netns, process.execPath, argv, opts);
  fs.closeSync(out);
  const ready = await waitReady(child, what, log);
  child.unref();
  return ready;
}
