// Typed netlink errors: errno (number and name), the operation, the object it was about, the
// kernel's extended-ack message when it gave one, and a hint on what to do.
import { errnoName, strerror } from '../sys/libc.js';

const HINTS: Record<string, string> = {
  EEXIST: 'it already exists: use the replace operation or delete it first',
  ENODEV: 'no such device: check the interface name or index (ip link) and the netns',
  ENOENT: 'no such object: it may already be gone',
  ESRCH: 'no such object: it may already be gone',
  EPERM: 'operation not permitted: run as root (CAP_NET_ADMIN) in the right netns',
  EACCES: 'permission denied: run as root (CAP_NET_ADMIN)',
  EOPNOTSUPP: 'not supported by this kernel: is the module (bridge, veth, vxlan, …) available?',
  EINVAL: 'the kernel rejected an argument: check the values (the kernel message above says which, when given)',
  ENETUNREACH: 'gateway not reachable: add an address on its subnet first, or use onlink',
  EADDRNOTAVAIL: 'address not available on this interface',
  EBUSY: 'device or resource busy: retry, or check what holds it',
  ERANGE: 'value out of range (e.g. MTU above the device maximum)',
};

export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly operation: string;
  readonly object: string;
  readonly extack?: string;

  constructor(errno: number, operation: string, object: string, extack?: string) {
    const code = errnoName(errno);
    const kernel = extack ? `: kernel says "${extack}"` : '';
    const hint = HINTS[code] ? ` (${HINTS[code]})` : '';
    super(`netlink ${operation} ${object}: ${code} ${strerror(errno)}${kernel}${hint}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
    this.operation = operation;
    this.object = object;
    if (extack !== undefined) this.extack = extack;
  }
}

/** The generic hint NetlinkError gives for an errno name, for errors that word their own message. */
export function netlinkHint(code: string): string | undefined {
  return HINTS[code];
}
