// A scripted netlink Transport for socket unit tests: records what is sent and answers from a
// queue of datagrams or from a responder that sees each request (so replies can carry its seq).
// Builders below produce replies shaped like the kernel's (nlmsgerr echo, ext-ack TLVs, DONE).
import {
  NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSGERR_ATTR_MSG,
} from '../../src/netlink/constants.js';
import { decodeMsgs, encodeAttrs, encodeMsg, nla, type NlMsg } from '../../src/netlink/codec.js';
import type { Transport } from '../../src/netlink/transport.js';
import { SysError } from '../../src/sys/libc.js';

const EAGAIN = 11;

/** Given one decoded request, the datagrams to deliver in answer (in order). */
export type Responder = (request: NlMsg, sentIndex: number) => Buffer[];

export class FakeTransport implements Transport {
  readonly portId: number;
  /** Every datagram sent, raw. */
  readonly sent: Buffer[] = [];
  /** Every message sent, decoded. */
  readonly requests: NlMsg[] = [];
  recvCalls = 0;
  closed = false;
  private readonly inbox: Buffer[] = [];
  private responder: Responder | undefined;

  constructor(opts: { portId?: number; responder?: Responder } = {}) {
    this.portId = opts.portId ?? 4242;
    this.responder = opts.responder;
  }

  /** Datagrams delivered regardless of what is sent (e.g. stale replies already in the socket). */
  queue(...datagrams: Buffer[]): this {
    this.inbox.push(...datagrams);
    return this;
  }

  respond(responder: Responder): this {
    this.responder = responder;
    return this;
  }

  send(datagram: Buffer): void {
    if (this.closed) throw new Error('FakeTransport: send after close');
    this.sent.push(Buffer.from(datagram));
    for (const msg of decodeMsgs(datagram)) {
      this.requests.push(msg);
      if (this.responder) this.inbox.push(...this.responder(msg, this.requests.length - 1));
    }
  }

  /** Like the kernel socket with SO_RCVTIMEO: an empty queue is a timeout, never a hang. */
  recv(): Buffer {
    this.recvCalls++;
    const next = this.inbox.shift();
    if (!next) throw new SysError('recv', EAGAIN, '(FakeTransport: no reply scripted)');
    return next;
  }

  close(): void {
    this.closed = true;
  }
}

/** Concatenate messages into one datagram (each is already padded by encodeMsg). */
export function datagram(...msgs: NlMsg[]): Buffer {
  return Buffer.concat(msgs.map(encodeMsg));
}

export function replyMsg(request: NlMsg, type: number, payload: Buffer, flags = 0): NlMsg {
  return { type, flags, seq: request.seq, pid: 4242, payload };
}

/** A dump part: NLM_F_MULTI set, as the kernel does for every message of a dump. */
export function multiMsg(request: NlMsg, type: number, payload: Buffer, extraFlags = 0): NlMsg {
  return replyMsg(request, type, payload, NLM_F_MULTI | extraFlags);
}

export function doneMsg(request: NlMsg, errno = 0, extraFlags = 0): NlMsg {
  const payload = Buffer.alloc(4);
  payload.writeInt32LE(-errno);
  return replyMsg(request, NLMSG_DONE, payload, NLM_F_MULTI | extraFlags);
}

export interface ErrorOpts {
  /** The kernel's extended-ack message (sets NLM_F_ACK_TLVS). */
  extack?: string;
  /** Echo only the request's header (NETLINK_CAP_ACK / ext-ack on error), as the kernel does. */
  capped?: boolean;
}

/** struct nlmsgerr: -errno, the echoed request (header, or header + payload), then ext-ack TLVs. */
export function errorMsg(request: NlMsg, errno: number, opts: ErrorOpts = {}): NlMsg {
  const code = Buffer.alloc(4);
  code.writeInt32LE(-errno);
  const fullEcho = encodeMsg(request);
  // The echoed header keeps the request's full nlmsg_len even when its payload is cut off.
  const echo = opts.capped ? fullEcho.subarray(0, NLMSG_HDRLEN) : fullEcho;
  let flags = opts.capped ? NLM_F_CAPPED : 0;
  const parts = [code, echo];
  if (opts.extack !== undefined) {
    flags |= NLM_F_ACK_TLVS;
    parts.push(encodeAttrs([nla.str(NLMSGERR_ATTR_MSG, opts.extack)]));
  }
  return replyMsg(request, NLMSG_ERROR, Buffer.concat(parts), flags);
}

export function ackMsg(request: NlMsg): NlMsg {
  return errorMsg(request, 0, { capped: true });
}
