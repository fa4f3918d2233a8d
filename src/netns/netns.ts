// Named network namespaces, compatible with `ip netns`: a netns is kept alive by a bind mount of
// its nsfs inode at /run/netns/NAME, and /run/netns itself is a shared mount so the bind mounts
// propagate to other mount namespaces (exactly as iproute2 sets it up).
//
// Entering a netns is per thread. withNetns() switches the calling (main JS) thread, runs a
// *synchronous* function and always switches back, so no other JS code ever observes the switch.
// Sockets, sync file I/O on /proc/sys/net and child processes forked meanwhile belong to the target.
import fs from 'node:fs';
import path from 'node:path';
import * as libc from '../sys/libc.js';

export const NETNS_RUN_DIR = '/run/netns';
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export class NetnsError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'NetnsError';
    this.code = code;
  }
}

export function validateNetnsName(name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name === '.' || name === '..') {
    throw new NetnsError(
      `invalid netns name ${JSON.stringify(name)}: use 1-64 characters from [A-Za-z0-9_.-], not starting with "." or "-"`,
      'EINVAL',
    );
  }
}

/** A netns given by name (under /run/netns) or by an absolute path (e.g. /proc/PID/ns/net). */
export type NetnsSpec = string;

export function netnsPath(spec: NetnsSpec): string {
  if (spec.startsWith('/')) return spec;
  validateNetnsName(spec);
  return path.join(NETNS_RUN_DIR, spec);
}

/** An open file descriptor on a netns; pass `fd` to IFLA_NET_NS_FD or setns(2). */
export class NetnsRef {
  readonly path: string;
  readonly fd: number;
  private closed = false;
  constructor(p: string, fd: number) {
    this.path = p;
    this.fd = fd;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

const NOT_NETNS = 'expected an nsfs bind mount (ip netns add) or /proc/PID/ns/net';

/**
 * Open a netns file. Only a regular file is opened (an nsfs inode is one; a FIFO or a device could
 * block or act on open), and with O_NONBLOCK in case it is swapped for one in between; libuv adds
 * O_CLOEXEC. Then fstat and NS_GET_NSTYPE must say it is a network namespace.
 */
export function openNetns(spec: NetnsSpec): NetnsRef {
  const p = netnsPath(spec);
  const fail = (code: string) => new NetnsError(`cannot open netns ${JSON.stringify(spec)} at ${p}: ${code}; does it exist (ip netns list)?`, code);
  const notNetns = (what?: string) => new NetnsError(`${p} is not a network namespace (${what ? `it is ${what}; ` : ''}${NOT_NETNS})`, 'EINVAL');
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (err) {
    throw fail((err as NodeJS.ErrnoException).code ?? 'EIO');
  }
  if (!st.isFile()) throw notNetns(describeFileType(st));
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    throw fail((err as NodeJS.ErrnoException).code ?? 'EIO');
  }
  const swapped = !fs.fstatSync(fd).isFile();
  if (swapped || !isNetnsFd(fd)) {
    fs.closeSync(fd);
    throw notNetns(swapped ? 'no longer a regular file' : undefined);
  }
  return new NetnsRef(p, fd);
}

function describeFileType(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

function isNetnsFd(fd: number): boolean {
  try {
    return libc.nsType(fd) === libc.CLONE_NEWNET;
  } catch {
    return false; // not a namespace file at all
  }
}

/** Whether the open netns is the one the calling thread is in (same nsfs device and inode). */
export function isCurrentNetns(ref: NetnsRef): boolean {
  const here = fs.statSync('/proc/thread-self/ns/net');
  const there = fs.fstatSync(ref.fd);
  return here.dev === there.dev && here.ino === there.ino;
}

let originalNetnsFd: number | undefined;
function originalFd(): number {
  // The netns this thread started in; kept open for the life of the process so we can always go back.
  originalNetnsFd ??= fs.openSync('/proc/thread-self/ns/net', fs.constants.O_RDONLY);
  return originalNetnsFd;
}

function switchTo(fd: number, what: string): void {
  libc.setns(fd, libc.CLONE_NEWNET, what);
}

function switchBack(fd = originalFd()): void {
  try {
    switchTo(fd, 'back to the previous netns');
  } catch (err) {
    // Continuing in the wrong netns could touch the wrong network: stop the process instead.
    process.stderr.write(`podwire: FATAL: could not return to the original netns: ${(err as Error).message}\n`);
    process.exit(70);
  }
}

const ASYNC_FUNCTIONS = new Set(['AsyncFunction', 'AsyncGeneratorFunction']);

/**
 * Run `fn` synchronously with the calling thread inside the netns, then switch back to the netns
 * the thread was in (also on throw, and correct when nested). `fn` must not be async: an awaited
 * continuation would run after the switch back.
 */
export function withNetns<T>(ns: NetnsSpec | NetnsRef, fn: () => T): T {
  if (ASYNC_FUNCTIONS.has(fn.constructor?.name)) {
    throw new NetnsError('withNetns(fn): fn is async; only synchronous work may run inside a netns', 'EINVAL');
  }
  originalFd();
  const ref = ns instanceof NetnsRef ? ns : openNetns(ns);
  const previous = fs.openSync('/proc/thread-self/ns/net', fs.constants.O_RDONLY);
  try {
    switchTo(ref.fd, `into netns ${ref.path}`);
    try {
      const result = fn();
      if (result instanceof Promise) {
        result.catch(() => {}); // refused below; must not surface as an unhandled rejection
        throw new NetnsError('withNetns(fn): fn returned a Promise; only synchronous work may run inside a netns', 'EINVAL');
      }
      return result;
    } finally {
      switchBack(previous);
    }
  } finally {
    fs.closeSync(previous);
    if (!(ns instanceof NetnsRef)) ref.close();
  }
}

function ensureSharedRunDir(): void {
  fs.mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  try {
    libc.mount('', NETNS_RUN_DIR, 'none', libc.MS_SHARED | libc.MS_REC);
  } catch (err) {
    if ((err as libc.SysError).code !== 'EINVAL') throw err;
    // Not a mount point yet: bind it onto itself first (what iproute2 does).
    libc.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', libc.MS_BIND | libc.MS_REC);
    libc.mount('', NETNS_RUN_DIR, 'none', libc.MS_SHARED | libc.MS_REC);
  }
}

/** Create a named netns, like `ip netns add NAME`. Fails with EEXIST if it exists. */
export function createNetns(name: string): void {
  validateNetnsName(name);
  ensureSharedRunDir();
  const p = netnsPath(name);
  try {
    fs.closeSync(fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o444));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    const hint = code === 'EEXIST' ? '; delete it first (ip netns del) or pick another name' : '';
    throw new NetnsError(`create netns ${name}: ${p}: ${code}${hint}`, code);
  }
  originalFd();
  try {
    libc.unshare(libc.CLONE_NEWNET);
    try {
      libc.mount(`/proc/thread-self/ns/net`, p, 'none', libc.MS_BIND);
    } finally {
      switchBack();
    }
  } catch (err) {
    fs.rmSync(p, { force: true });
    throw new NetnsError(`create netns ${name}: ${(err as Error).message}`, (err as libc.SysError).code ?? 'EIO');
  }
}

/** Delete a named netns, like `ip netns del NAME`. The kernel frees it when nothing else holds it. */
export function deleteNetns(name: string): void {
  const p = netnsPath(name);
  if (!fs.existsSync(p)) {
    throw new NetnsError(`delete netns ${name}: ${p} does not exist`, 'ENOENT');
  }
  try {
    libc.umount2(p, libc.MNT_DETACH);
  } catch (err) {
    if ((err as libc.SysError).code !== 'EINVAL') throw err; // EINVAL: not mounted, just a stale file
  }
  fs.rmSync(p, { force: true });
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(netnsPath(name));
}

export function listNetns(): string[] {
  try {
    return fs.readdirSync(NETNS_RUN_DIR).sort();
  } catch {
    return [];
  }
}
