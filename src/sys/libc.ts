// Thin, typed bindings to the few libc calls Node does not expose: sockets for netlink,
// setns/unshare for network namespaces, mount/umount2 for `ip netns`-style bind mounts.
// Every wrapper throws a SysError carrying errno, its name and the operation on failure.
import koffi from 'koffi';
import os from 'node:os';

const libc = koffi.load('libc.so.6');

const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
  getsockname: libc.func('int getsockname(int fd, _Out_ void *addr, _Inout_ uint32_t *addrlen)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
  sendto: libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
  recv: libc.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)'),
  close: libc.func('int close(int fd)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  unshare: libc.func('int unshare(int flags)'),
  mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)'),
  umount2: libc.func('int umount2(const char *target, int flags)'),
  strerror: libc.func('const char *strerror(int errnum)'),
  gettid: libc.func('int gettid(void)'),
  ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
  flock: libc.func('int flock(int fd, int op)'),
};

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}
// Linux aliases ENOTSUP to EOPNOTSUPP; the kernel and iproute2 say EOPNOTSUPP.
errnoNames.set(os.constants.errno.EOPNOTSUPP, 'EOPNOTSUPP');

/** errno number → symbolic name ("EEXIST"), or "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** errno number → libc's description ("File exists"). */
export function strerror(errno: number): string {
  return String(c.strerror(errno));
}

export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  constructor(syscall: string, errno: number, what?: string) {
    const target = what ? ` ${what}` : '';
    super(`${syscall}${target}: ${errnoName(errno)} (${strerror(errno)})`);
    this.name = 'SysError';
    this.errno = errno;
    this.code = errnoName(errno);
    this.syscall = syscall;
  }
}

function check(ret: number | bigint, syscall: string, what?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(syscall, koffi.errno(), what);
  return n;
}

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_RCVTIMEO = 20;
export const SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
export const MSG_PEEK = 2;
export const MSG_TRUNC = 0x20;
export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;

export function socket(domain: number, type: number, protocol: number): number {
  return check(c.socket(domain, type | SOCK_CLOEXEC, protocol), 'socket');
}

export function bind(fd: number, addr: Buffer): void {
  check(c.bind(fd, addr, addr.length), 'bind');
}

export function getsockname(fd: number, size: number): Buffer {
  const addr = Buffer.alloc(size);
  const len = [size];
  check(c.getsockname(fd, addr, len), 'getsockname');
  return addr.subarray(0, len[0]);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value);
  check(c.setsockopt(fd, level, name, buf, 4), 'setsockopt');
}

export function setsockoptTimeval(fd: number, level: number, name: number, ms: number): void {
  const buf = Buffer.alloc(16);
  buf.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  buf.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  check(c.setsockopt(fd, level, name, buf, 16), 'setsockopt');
}

export function sendto(fd: number, buf: Buffer, addr: Buffer): number {
  return check(c.sendto(fd, buf, buf.length, 0, addr, addr.length), 'sendto');
}

/**
 * sendto(2) on a thread of libuv's pool (koffi's asynchronous call): for a netlink request the
 * kernel does all its work inside sendto, so one that waits (deleting links waits for an RCU grace
 * period) does not stop this thread. errno is that thread's, not readable here: a failure says so.
 */
export function sendtoAsync(fd: number, buf: Buffer, addr: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    c.sendto.async(fd, buf, buf.length, 0, addr, addr.length, (err: unknown, ret: number | bigint) => {
      if (err) return reject(err as Error);
      const n = Number(ret);
      if (n < 0) return reject(new Error(`sendto on fd ${fd} failed (on a worker thread: its errno is not known here)`));
      resolve(n);
    });
  });
}

/** recv(2); returns the byte count (with MSG_TRUNC: the real datagram size, which may exceed buf). */
export function recv(fd: number, buf: Buffer, flags = 0): number {
  for (;;) {
    const n = Number(c.recv(fd, buf, buf.length, flags));
    if (n >= 0) return n;
    const errno = koffi.errno();
    if (errno !== os.constants.errno.EINTR) throw new SysError('recv', errno);
  }
}

export function close(fd: number): void {
  check(c.close(fd), 'close');
}

export function setns(fd: number, nstype: number, what?: string): void {
  check(c.setns(fd, nstype), 'setns', what);
}

export function unshare(flags: number): void {
  check(c.unshare(flags), 'unshare');
}

export function mount(source: string, target: string, fstype: string | null, flags: number): void {
  check(c.mount(source, target, fstype, flags, null), 'mount', target);
}

export function umount2(target: string, flags: number): void {
  check(c.umount2(target, flags), 'umount2', target);
}

const NS_GET_NSTYPE = 0xb703;

/** The namespace type (CLONE_NEW*) of an open namespace fd. */
export function nsType(fd: number): number {
  return check(c.ioctl(fd, NS_GET_NSTYPE), 'ioctl(NS_GET_NSTYPE)');
}

export function gettid(): number {
  return Number(c.gettid());
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** flock(2) on an open fd: LOCK_SH | LOCK_EX | LOCK_UN, optionally | LOCK_NB (then EWOULDBLOCK when held). */
export function flock(fd: number, op: number, what?: string): void {
  check(c.flock(fd, op), 'flock', what);
}
