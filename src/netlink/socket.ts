// Request/response over a netlink transport: sequence numbers, ACK and error decoding (with the
// kernel's extended ack message), multi-part dumps until NLMSG_DONE, retry of interrupted dumps.
import {
  NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
  NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, NLMSGERR_ATTR_MSG,
} from './constants.js';
import { Attrs, decodeMsgs, encodeMsg, type NlMsg } from './codec.js';
import { NetlinkError } from './errors.js';
import { KernelTransport, type SocketOptions, type Transport } from './transport.js';

/** What a request is about, for error messages: e.g. { op: 'link add', object: 'veth "pw1"' }. */
export interface RequestContext {
  op: string;
  object: string;
}

export interface BatchRequest {
  type: number;
  /** Beyond NLM_F_REQUEST (and NLM_F_ACK, which execBatch sets itself), e.g. NLM_F_CREATE. */
  flags: number;
  payload: Buffer;
  ctx: RequestContext;
}

/** execBatch's datagram size: well under the socket's send buffer (212,992 bytes by default). */
export const BATCH_CHUNK_BYTES = 32 * 1024;

const EINTR = 4;
const MAX_DUMP_ATTEMPTS = 5;

/** Decode an NLMSG_ERROR payload: errno (0 = ACK) and the extended-ack message, if any. */
export function decodeError(msg: NlMsg): { errno: number; extack?: string } {
  if (msg.payload.length < 4) return { errno: 5 /* EIO */, extack: 'truncated NLMSG_ERROR' };
  const errno = -msg.payload.readInt32LE(0);
  if (!(msg.flags & NLM_F_ACK_TLVS) || msg.payload.length < 4 + NLMSG_HDRLEN) return { errno };
  // The echoed request follows: its header only when capped, else header + payload.
  const echoedLen = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : msg.payload.readUInt32LE(4);
  const tlvOffset = 4 + ((echoedLen + 3) & ~3);
  if (tlvOffset >= msg.payload.length) return { errno };
  const extack = new Attrs(msg.payload.subarray(tlvOffset)).str(NLMSGERR_ATTR_MSG);
  return extack ? { errno, extack } : { errno };
}

export class NetlinkSocket {
  private seq: number;
  private readonly transport: Transport;

  constructor(transport: Transport) {
    this.transport = transport;
    this.seq = Math.floor(Date.now() / 1000) & 0x7fffffff;
  }

  static open(protocol: number, opts: SocketOptions = {}): NetlinkSocket {
    return new NetlinkSocket(KernelTransport.open(protocol, opts));
  }

  get portId(): number {
    return this.transport.portId;
  }

  /** A request that changes something: waits for the ACK, throws NetlinkError on failure. */
  exec(type: number, flags: number, payload: Buffer, ctx: RequestContext): NlMsg[] {
    return this.roundTrip(type, NLM_F_REQUEST | NLM_F_ACK | flags, payload, ctx);
  }

  /**
   * exec, with the kernel's handling of the request off this thread (Transport.sendAsync): for a
   * request that waits in the kernel. The reply is read as exec reads it once the send returned (the
   * kernel has queued it by then). The socket must not be used for anything else meanwhile.
   */
  async execAsync(type: number, flags: number, payload: Buffer, ctx: RequestContext): Promise<NlMsg[]> {
    const seq = (this.seq = (this.seq + 1) & 0x7fffffff);
    const datagram = encodeMsg({ type, flags: NLM_F_REQUEST | NLM_F_ACK | flags, seq, pid: 0, payload });
    if (this.transport.sendAsync) await this.transport.sendAsync(datagram);
    else this.transport.send(datagram);
    return this.collect(seq, ctx);
  }

  /** A dump: all parts until NLMSG_DONE; an interrupted dump (table changed meanwhile) is redone. */
  dump(type: number, payload: Buffer, ctx: RequestContext): NlMsg[] {
    for (let attempt = 1; ; attempt++) {
      try {
        return this.roundTrip(type, NLM_F_REQUEST | NLM_F_DUMP, payload, ctx);
      } catch (err) {
        if (!(err instanceof NetlinkError) || err.errno !== EINTR || attempt >= MAX_DUMP_ATTEMPTS) throw err;
      }
    }
  }

  /**
   * Change requests in order, in few sendmsg calls: the requests are packed into chunks of about
   * chunkBytes (one datagram each; the kernel handles its messages one after the other), and
   * only a chunk's last request asks for an ACK. The kernel acknowledges every failure anyway,
   * so a chunk whose requests all succeed costs one send and one receive instead of one of each
   * per request. Returns, per request, undefined or its NetlinkError; nothing is skipped after a
   * failure (the kernel has the whole chunk already).
   */
  execBatch(reqs: readonly BatchRequest[], chunkBytes = BATCH_CHUNK_BYTES): (NetlinkError | undefined)[] {
    const results: (NetlinkError | undefined)[] = new Array(reqs.length).fill(undefined);
    for (let start = 0; start < reqs.length; ) {
      const parts: Buffer[] = [];
      const bySeq = new Map<number, number>();
      let bytes = 0;
      let end = start;
      while (end < reqs.length && (end === start || bytes + reqs[end]!.payload.length + 16 <= chunkBytes)) {
        bytes += reqs[end]!.payload.length + 16;
        end++;
      }
      let lastSeq = 0;
      for (let i = start; i < end; i++) {
        const r = reqs[i]!;
        const seq = (this.seq = (this.seq + 1) & 0x7fffffff);
        bySeq.set(seq, i);
        lastSeq = seq;
        const ack = i === end - 1 ? NLM_F_ACK : 0;
        parts.push(encodeMsg({ type: r.type, flags: NLM_F_REQUEST | ack | r.flags, seq, pid: 0, payload: r.payload }));
      }
      this.transport.send(Buffer.concat(parts));
      for (let done = false; !done; ) {
        for (const msg of decodeMsgs(this.transport.recv())) {
          const i = bySeq.get(msg.seq);
          if (i === undefined || msg.type !== NLMSG_ERROR) continue; // a late reply to an earlier request
          const { errno, extack } = decodeError(msg);
          if (errno !== 0) results[i] = new NetlinkError(errno, reqs[i]!.ctx.op, reqs[i]!.ctx.object, extack);
          if (msg.seq === lastSeq) done = true;
        }
      }
      start = end;
    }
    return results;
  }

  close(): void {
    this.transport.close();
  }

  // Collects replies until the ACK (requests always ask for one) or NLMSG_DONE (dumps).
  private roundTrip(type: number, flags: number, payload: Buffer, ctx: RequestContext): NlMsg[] {
    const seq = (this.seq = (this.seq + 1) & 0x7fffffff);
    this.transport.send(encodeMsg({ type, flags, seq, pid: 0, payload }));
    return this.collect(seq, ctx);
  }

  private collect(seq: number, ctx: RequestContext): NlMsg[] {
    const replies: NlMsg[] = [];
    let interrupted = false;
    for (;;) {
      for (const msg of decodeMsgs(this.transport.recv())) {
        if (msg.seq !== seq) continue; // a late reply to an earlier, abandoned request
        if (msg.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (msg.type === NLMSG_NOOP) continue;
        if (msg.type === NLMSG_ERROR) {
          const { errno, extack } = decodeError(msg);
          if (errno !== 0) throw new NetlinkError(errno, ctx.op, ctx.object, extack);
          return replies; // ACK
        }
        if (msg.type === NLMSG_DONE) {
          const errno = msg.payload.length >= 4 ? -msg.payload.readInt32LE(0) : 0;
          if (errno > 0) throw new NetlinkError(errno, ctx.op, ctx.object);
          if (interrupted) throw new NetlinkError(EINTR, ctx.op, ctx.object, 'dump interrupted');
          return replies;
        }
        if (msg.type === NLMSG_OVERRUN) throw new NetlinkError(105 /* ENOBUFS */, ctx.op, ctx.object, 'overrun');
        replies.push(msg);
      }
    }
  }
}
