// Test helpers: per-test network namespaces with a unique pw- prefix, torn down even on failure,
// and the independent oracles (`ip -j`, `bridge -j`) that integration tests check the kernel with.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createNetns, deleteNetns, netnsExists } from '../../src/netns/netns.js';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** `CMD --version` runs and exits 0 (the tool is installed). */
export function haveCommand(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const SKIP_NOT_ROOT = isRoot ? false : 'needs root (CAP_NET_ADMIN) and network namespaces: run the tests as root';

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/** A fresh netns named pw-t<hex>-<label>, deleted when the test ends (pass or fail). */
export function freshNetns(t: Teardown, label = 'ns'): string {
  const name = `pw-t${randomBytes(3).toString('hex')}-${label}`;
  createNetns(name);
  t.teardown(() => {
    if (netnsExists(name)) deleteNetns(name);
  });
  run(name, 'ip', ['link', 'set', 'lo', 'up']);
  return name;
}

/**
 * Run a command inside a netns via `ip netns exec` (independent of our own netns code), with
 * `input` on its stdin and killed after timeoutMs when given.
 */
export function run(ns: string, cmd: string, args: string[], input?: string, timeoutMs?: number): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
    encoding: 'utf8', stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}), ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
  });
}

/** `ip -j -d ARGS` inside the netns, parsed. */
export function ipJson<T = any>(ns: string, args: string[]): T {
  const out = run(ns, 'ip', ['-j', '-d', ...args]);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** `bridge -j ARGS` inside the netns, parsed. */
export function bridgeJson<T = any>(ns: string, args: string[]): T {
  const out = run(ns, 'bridge', ['-j', ...args]);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** Assert that fn throws an error with this `code` whose message matches `message`. */
export function throwsCode(
  t: { ok: (...args: any[]) => unknown; fail: (...args: any[]) => unknown },
  fn: () => unknown,
  code: string,
  message?: RegExp,
): void {
  try {
    fn();
  } catch (err) {
    const e = err as { code?: string; message: string };
    t.ok(e.code === code && (!message || message.test(e.message)), `throws ${code}${message ? ` ${message}` : ''}: got ${e.code}: ${e.message}`);
    return;
  }
  t.fail(`expected a throw with code ${code}`);
}
