// Network namespace ids (RTM_GETNSID, net_namespace.h): the number a netns gives another one, the
// IFLA_LINK_NETNSID a link whose peer lives there carries. With it, "is this veth's peer in that
// netns?" is answered by the kernel, not by ifindexes (which repeat from one netns to the next).
import { Attrs, encodeAttrs } from './codec.js';
import { AF_UNSPEC } from './constants.js';
import type { NetlinkSocket } from './socket.js';

export const RTM_NEWNSID = 88;
export const RTM_GETNSID = 90;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;
/** struct rtgenmsg, padded to 4 bytes (NLMSG_ALIGN). */
const RTGENMSG_LEN = 4;

/**
 * The id the socket's netns gives the netns open at `fd`; undefined when it has none (the kernel
 * assigns one when a link with its peer there is dumped, so list links first).
 */
export function netnsIdOf(sock: NetlinkSocket, fd: number): number | undefined {
  const head = Buffer.alloc(RTGENMSG_LEN);
  head.writeUInt8(AF_UNSPEC, 0);
  const value = Buffer.alloc(4);
  value.writeUInt32LE(fd >>> 0, 0);
  const replies = sock.exec(RTM_GETNSID, 0, Buffer.concat([head, encodeAttrs([{ type: NETNSA_FD, value }])]), { op: 'netns id get', object: `netns fd ${fd}` });
  const msg = replies.find((m) => m.type === RTM_NEWNSID && m.payload.length >= RTGENMSG_LEN);
  const id = msg ? new Attrs(msg.payload.subarray(RTGENMSG_LEN)).i32(NETNSA_NSID) : undefined;
  return id === undefined || id < 0 ? undefined : id;
}
