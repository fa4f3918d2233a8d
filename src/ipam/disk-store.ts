// The real IPAM store: <dataDir>/<network>/ holds one file per reserved IP (named by the IP,
// content "<containerId>\n<ifname>\n"), cursor files last_reserved_ip.<rangeSetIndex> and a
// `lock` file. Crash safety (see README.md): every write happens under an flock of `lock`, and a
// write is a temp file made complete first, then published by link(2) (reservation: exclusive,
// EEXIST = taken) or rename(2) (cursor). A process killed at any instant leaves nothing, a complete
// file, or a stray .tmp-* file, which the next lock holder deletes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { flock, LOCK_EX, LOCK_NB, LOCK_UN, SysError } from '../sys/libc.js';
import { IpamError, type Owner } from './types.js';
import {
  decodeOwner, encodeOwner, RECORD_MAX, validateNetworkName,
  type IpamStore, type StoredReservation, type StoreFactory,
} from './store.js';

export const DEFAULT_DATA_DIR = '/var/lib/podwire/networks';
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
export const LOCK_FILE = 'lock';
export const CURSOR_PREFIX = 'last_reserved_ip.';
export const TMP_PREFIX = '.tmp-';

export interface DiskStoreOptions {
  /** How long lock() waits for another holder before IpamError('busy'). Default 10 s. */
  lockTimeoutMs?: number;
  /** fsync records and the directory (default true; false only for benchmarks). */
  fsync?: boolean;
}

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;
const { EWOULDBLOCK, EAGAIN, EINTR } = os.constants.errno;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function ioError(what: string, e: unknown): IpamError {
  if (e instanceof IpamError) return e;
  return new IpamError('io', `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

/** dataDir must be absolute (a CNI plugin's cwd is anyone's guess) and NUL-free. */
export function validateDataDir(dataDir: unknown): string {
  if (typeof dataDir !== 'string' || dataDir === '' || dataDir.includes('\0') || !path.isAbsolute(dataDir)) {
    throw new IpamError('invalid', `ipam dataDir ${JSON.stringify(dataDir)}: must be an absolute path`);
  }
  return path.resolve(dataDir);
}

/** A reservation's file name: an IP's text only (digits, hex, "." and ":"), never a path. */
function checkIpName(name: string): string {
  if (!/^[0-9A-Fa-f.:]{2,45}$/.test(name) || !/[.:]/.test(name)) {
    throw new IpamError('invalid', `reservation name ${JSON.stringify(name)}: not an IP address`);
  }
  return name;
}

export class DiskStore implements IpamStore {
  readonly network: string;
  readonly dir: string;
  private readonly lockTimeoutMs: number;
  private readonly fsync: boolean;
  private lockFd: number | undefined;
  private readonly readBuf = Buffer.allocUnsafe(RECORD_MAX + 1);

  constructor(dataDir: string, network: string, options: DiskStoreOptions = {}) {
    const root = validateDataDir(dataDir);
    this.network = validateNetworkName(network);
    this.dir = path.join(root, this.network);
    // Belt and braces: the validated name is one component, so the result is a direct child.
    if (path.dirname(this.dir) !== root || path.basename(this.dir) !== this.network) {
      throw new IpamError('invalid', `network name ${JSON.stringify(network)}: escapes dataDir ${root}`);
    }
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.fsync = options.fsync ?? true;
  }

  static factory(dataDir: string = DEFAULT_DATA_DIR, options: DiskStoreOptions = {}): StoreFactory {
    const root = validateDataDir(dataDir);
    return (network) => new DiskStore(root, network, options);
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private ensureDir(): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw ioError(`create ${this.dir}`, e);
    }
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.dir);
    } catch (e) {
      throw ioError(`stat ${this.dir}`, e);
    }
    if (!st.isDirectory()) throw new IpamError('io', `${this.dir}: not a directory (a symlink or a file is never followed)`);
  }

  lock(): void {
    if (this.lockFd !== undefined) throw new Error(`DiskStore ${this.dir}: lock() while already locked`);
    this.ensureDir();
    const lockPath = this.file(LOCK_FILE);
    let fd: number;
    try {
      fd = fs.openSync(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW, 0o644);
    } catch (e) {
      throw ioError(`open ${lockPath}`, e);
    }
    try {
      this.waitForLock(fd, lockPath);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    this.lockFd = fd;
    try {
      this.removeStrayTemps();
    } catch (e) {
      this.unlock();
      throw e;
    }
  }

  /** Poll LOCK_EX|LOCK_NB with short, growing, jittered sleeps until the deadline. */
  private waitForLock(fd: number, lockPath: string): void {
    const deadline = Date.now() + this.lockTimeoutMs;
    let delay = 1;
    for (;;) {
      try {
        flock(fd, LOCK_EX | LOCK_NB, lockPath);
        return;
      } catch (e) {
        const errno = e instanceof SysError ? e.errno : undefined;
        if (errno !== EWOULDBLOCK && errno !== EAGAIN && errno !== EINTR) throw ioError(`lock ${lockPath}`, e);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new IpamError('busy', `network ${JSON.stringify(this.network)}: ${lockPath} is held by another process for more than ${this.lockTimeoutMs} ms; try again later`);
      }
      sleepMs(Math.min(left, delay / 2 + Math.random() * (delay / 2)));
      delay = Math.min(delay * 2, 50);
    }
  }

  unlock(): void {
    const fd = this.lockFd;
    if (fd === undefined) return;
    this.lockFd = undefined;
    try {
      flock(fd, LOCK_UN);
    } finally {
      fs.closeSync(fd); // closing alone also drops the lock
    }
  }

  private assertLocked(op: string): void {
    if (this.lockFd === undefined) throw new Error(`DiskStore ${this.dir}: ${op} without the lock`);
  }

  /** Under the lock every writer is gone, so any temp file is a dead writer's leftover. */
  private removeStrayTemps(): void {
    for (const name of this.readdir()) {
      if (name.startsWith(TMP_PREFIX)) this.unlinkQuiet(name);
    }
  }

  private readdir(): string[] {
    try {
      return fs.readdirSync(this.dir);
    } catch (e) {
      throw ioError(`read ${this.dir}`, e);
    }
  }

  private unlinkQuiet(name: string): boolean {
    try {
      fs.unlinkSync(this.file(name));
      return true;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return false;
      throw ioError(`remove ${this.file(name)}`, e);
    }
  }

  /** Read a small regular file without following symlinks; undefined when absent. */
  private readSmall(name: string, max: number): string | undefined {
    let fd: number;
    try {
      fd = fs.openSync(this.file(name), O_RDONLY | O_NOFOLLOW);
    } catch (e) {
      if (errCode(e) === 'ENOENT' || errCode(e) === 'ELOOP') return undefined;
      throw ioError(`open ${this.file(name)}`, e);
    }
    try {
      const buf = max < this.readBuf.length ? this.readBuf : Buffer.allocUnsafe(max + 1);
      let n = 0;
      for (;;) {
        const got = fs.readSync(fd, buf, n, max + 1 - n, null);
        if (got === 0 || (n += got) === max + 1) break;
      }
      return buf.toString('utf8', 0, n);
    } catch (e) {
      throw ioError(`read ${this.file(name)}`, e);
    } finally {
      fs.closeSync(fd);
    }
  }

  list(): StoredReservation[] {
    this.assertLocked('list');
    const out: StoredReservation[] = [];
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.dir, { withFileTypes: true });
    } catch (e) {
      throw ioError(`read ${this.dir}`, e);
    }
    for (const entry of entries) {
      const name = entry.name;
      if (name === LOCK_FILE || name.startsWith(CURSOR_PREFIX) || name.startsWith(TMP_PREFIX)) continue;
      if (!entry.isFile() || !/^[0-9A-Fa-f.:]+$/.test(name)) continue; // not ours: never touched
      const text = this.readSmall(name, RECORD_MAX);
      if (text === undefined) continue;
      out.push({ name, owner: decodeOwner(text) });
    }
    return out;
  }

  /** Write a complete temp file in the directory (fsynced); the caller publishes it. */
  private writeTemp(content: string, durable: boolean): string {
    const name = `${TMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`;
    const p = this.file(name);
    try {
      const fd = fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
      try {
        const buf = Buffer.from(content, 'utf8');
        for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
        if (durable && this.fsync) fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      this.unlinkQuiet(name);
      throw ioError(`write ${p}`, e);
    }
    return name;
  }

  reserve(ip: string, owner: Owner): boolean {
    this.assertLocked('reserve');
    const target = this.file(checkIpName(ip));
    const tmp = this.writeTemp(encodeOwner(owner), true);
    try {
      fs.linkSync(this.file(tmp), target); // atomic exclusive create of a complete file
      return true;
    } catch (e) {
      if (errCode(e) === 'EEXIST') return false;
      throw ioError(`reserve ${target}`, e);
    } finally {
      this.unlinkQuiet(tmp);
    }
  }

  release(name: string): boolean {
    this.assertLocked('release');
    return this.unlinkQuiet(checkIpName(name));
  }

  private cursorName(index: number): string {
    if (!Number.isSafeInteger(index) || index < 0) throw new IpamError('invalid', `range set index ${index}: not a non-negative integer`);
    return `${CURSOR_PREFIX}${index}`;
  }

  readCursor(index: number): string | undefined {
    this.assertLocked('readCursor');
    return this.readSmall(this.cursorName(index), 64)?.trim();
  }

  /** host-local's format (the IP, no newline). Not fsynced: a lost or torn cursor only costs round robin once. */
  writeCursor(index: number, ip: string): void {
    this.assertLocked('writeCursor');
    const target = this.file(this.cursorName(index));
    const tmp = this.writeTemp(checkIpName(ip), false);
    try {
      fs.renameSync(this.file(tmp), target);
    } catch (e) {
      this.unlinkQuiet(tmp);
      throw ioError(`write ${target}`, e);
    }
  }

  sync(): void {
    this.assertLocked('sync');
    if (!this.fsync) return;
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.dir, O_RDONLY | O_DIRECTORY);
      fs.fsyncSync(fd);
    } catch (e) {
      throw ioError(`fsync ${this.dir}`, e);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}
