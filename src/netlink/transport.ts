// The side-effect boundary of netlink: a datagram transport. The real one is an AF_NETLINK socket
// through libc (koffi); tests use a scripted fake.
import * as libc from '../sys/libc.js';
import { withNetns, type NetnsRef, type NetnsSpec } from '../netns/netns.js';

export interface Transport {
  readonly portId: number;
  send(datagram: Buffer): void;
  /** send, without blocking this thread while the kernel handles the request (optional: else send). */
  sendAsync?(datagram: Buffer): Promise<void>;
  /** Block until one datagram arrives (or the receive timeout elapses: then ETIMEDOUT/EAGAIN). */
  recv(): Buffer;
  close(): void;
}

export interface SocketOptions {
  /** Open the socket inside this netns (the socket stays bound to it for its whole life). */
  netns?: NetnsSpec | NetnsRef;
  /** Receive timeout so a lost reply can never hang the caller. */
  timeoutMs?: number;
  /** Kernel receive buffer, for big dumps and bursts. */
  rcvbufBytes?: number;
}

const RECV_BUF_BYTES = 1 << 20;

export class KernelTransport implements Transport {
  readonly portId: number;
  private readonly fd: number;
  private readonly buf = Buffer.alloc(RECV_BUF_BYTES);
  private closed = false;

  private constructor(fd: number, portId: number) {
    this.fd = fd;
    this.portId = portId;
  }

  static open(protocol: number, opts: SocketOptions = {}): KernelTransport {
    const create = () => libc.socket(libc.AF_NETLINK, libc.SOCK_RAW, protocol);
    const fd = opts.netns !== undefined ? withNetns(opts.netns, create) : create();
    try {
      configure(fd, opts);
      const local = Buffer.alloc(12);
      local.writeUInt16LE(libc.AF_NETLINK, 0);
      libc.bind(fd, local);
      const bound = libc.getsockname(fd, 12);
      return new KernelTransport(fd, bound.readUInt32LE(4));
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }

  send(datagram: Buffer): void {
    const kernel = Buffer.alloc(12);
    kernel.writeUInt16LE(libc.AF_NETLINK, 0);
    libc.sendto(this.fd, datagram, kernel);
  }

  async sendAsync(datagram: Buffer): Promise<void> {
    const kernel = Buffer.alloc(12);
    kernel.writeUInt16LE(libc.AF_NETLINK, 0);
    await libc.sendtoAsync(this.fd, datagram, kernel);
  }

  recv(): Buffer {
    const n = libc.recv(this.fd, this.buf, libc.MSG_TRUNC);
    if (n > this.buf.length) {
      throw new Error(`netlink datagram of ${n} bytes exceeds the ${this.buf.length}-byte receive buffer`);
    }
    return Buffer.from(this.buf.subarray(0, n));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }
}

function configure(fd: number, opts: SocketOptions): void {
  const rcvbuf = opts.rcvbufBytes ?? 1 << 20;
  try {
    libc.setsockoptInt(fd, libc.SOL_SOCKET, libc.SO_RCVBUFFORCE, rcvbuf);
  } catch {
    libc.setsockoptInt(fd, libc.SOL_SOCKET, libc.SO_RCVBUF, rcvbuf); // without CAP_NET_ADMIN
  }
  libc.setsockoptTimeval(fd, libc.SOL_SOCKET, libc.SO_RCVTIMEO, opts.timeoutMs ?? 10_000);
  try {
    libc.setsockoptInt(fd, libc.SOL_NETLINK, libc.NETLINK_EXT_ACK, 1);
  } catch {
    // Older kernels: errors simply come without the kernel's message.
  }
}
