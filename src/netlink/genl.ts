// Generic netlink: resolve a family name (e.g. "IPVS") to the message type the kernel assigned it
// at registration, through the nlctrl family. IDs are dynamic, so callers resolve once per socket
// and may cache; nothing is cached here because a module reload can change the ID.
import {
  CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_HDRSIZE, CTRL_ATTR_MAXATTR, CTRL_ATTR_MCAST_GROUPS,
  CTRL_ATTR_MCAST_GRP_ID, CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_VERSION, CTRL_CMD_GETFAMILY, GENL_ID_CTRL,
} from './constants.js';
import { Attrs, CodecError, encodePayload, nla } from './codec.js';
import { NetlinkError } from './errors.js';
import type { NetlinkSocket } from './socket.js';

export const GENL_HDRLEN = 4;
/** GENL_NAMSIZ: family names are at most 15 bytes plus the NUL. */
export const GENL_NAMSIZ = 16;
const ENOENT = 2;
// The kernel ignores the genlmsghdr version on nlctrl requests; 0 is what iproute2's `genl` sends,
// which keeps our request byte-identical to it (see test/fixtures/netlink/genl-getfamily-nlctrl.hex).
const CTRL_REQUEST_VERSION = 0;

export interface GenlFamily {
  id: number;
  name: string;
  version: number;
  /** Size of the family's own fixed header after genlmsghdr (0 for most families). */
  hdrSize: number;
  maxAttr: number;
  /** Multicast group name → group ID, for NETLINK_ADD_MEMBERSHIP. */
  mcastGroups: Map<string, number>;
}

// Modules that register a family, for the hint when it is missing.
const FAMILY_MODULES: Record<string, string> = {
  IPVS: 'ip_vs',
  wireguard: 'wireguard',
  team: 'team',
  fou: 'fou',
  gtp: 'gtp',
  l2tp: 'l2tp_netlink',
  MACSEC: 'macsec',
  openvswitch: 'openvswitch',
  ovs_datapath: 'openvswitch',
};

/** The family is not registered: its module is not loaded (or not built for this kernel). */
export class GenlFamilyNotFoundError extends NetlinkError {
  readonly family: string;
  constructor(family: string, extack?: string) {
    super(ENOENT, 'genl getfamily', `family ${JSON.stringify(family)}`, extack);
    this.name = 'GenlFamilyNotFoundError';
    this.family = family;
    const mod = FAMILY_MODULES[family];
    const hint = mod ? ` (e.g. modprobe ${mod})` : '';
    this.message = `generic netlink family ${JSON.stringify(family)} not found (ENOENT): is its kernel module loaded${hint}?`;
  }
}

export function encodeGenlHeader(cmd: number, version: number): Buffer {
  return Buffer.from([cmd & 0xff, version & 0xff, 0, 0]);
}

export function encodeGetFamily(name: string): Buffer {
  validateFamilyName(name);
  return encodePayload(encodeGenlHeader(CTRL_CMD_GETFAMILY, CTRL_REQUEST_VERSION), [
    nla.str(CTRL_ATTR_FAMILY_NAME, name),
  ]);
}

// The kernel would answer EINVAL for an over-long name; say what is wrong instead.
function validateFamilyName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes >= GENL_NAMSIZ || name.includes('\0')) {
    throw new RangeError(
      `invalid generic netlink family name ${JSON.stringify(name)}: 1-${GENL_NAMSIZ - 1} bytes, no NUL`,
    );
  }
}

/** Decode a CTRL_CMD_NEWFAMILY payload (genlmsghdr + CTRL_ATTR_*). */
export function decodeFamily(payload: Buffer): GenlFamily {
  if (payload.length < GENL_HDRLEN) {
    throw new CodecError(`genl family reply too short: ${payload.length} bytes, genlmsghdr needs ${GENL_HDRLEN}`);
  }
  const attrs = new Attrs(payload.subarray(GENL_HDRLEN));
  const id = attrs.u16(CTRL_ATTR_FAMILY_ID);
  const name = attrs.str(CTRL_ATTR_FAMILY_NAME);
  if (id === undefined || name === undefined) {
    throw new CodecError('genl family reply without CTRL_ATTR_FAMILY_ID or CTRL_ATTR_FAMILY_NAME');
  }
  return {
    id,
    name,
    version: attrs.u32(CTRL_ATTR_VERSION) ?? 0,
    hdrSize: attrs.u32(CTRL_ATTR_HDRSIZE) ?? 0,
    maxAttr: attrs.u32(CTRL_ATTR_MAXATTR) ?? 0,
    mcastGroups: decodeMcastGroups(attrs.nested(CTRL_ATTR_MCAST_GROUPS)),
  };
}

// CTRL_ATTR_MCAST_GROUPS is an array: each entry's type is its index, its value a nested group.
function decodeMcastGroups(groups: Attrs | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of groups?.all ?? []) {
    const group = new Attrs(entry.data);
    const name = group.str(CTRL_ATTR_MCAST_GRP_NAME);
    const id = group.u32(CTRL_ATTR_MCAST_GRP_ID);
    if (name !== undefined && id !== undefined) out.set(name, id);
  }
  return out;
}

/** Look up one family; throws GenlFamilyNotFoundError when it is not registered. */
export function genlResolveFamily(sock: NetlinkSocket, name: string): GenlFamily {
  const request = encodeGetFamily(name);
  let replies;
  try {
    replies = sock.exec(GENL_ID_CTRL, 0, request, { op: 'genl getfamily', object: `family ${JSON.stringify(name)}` });
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === ENOENT) throw new GenlFamilyNotFoundError(name, err.extack);
    throw err;
  }
  const reply = replies.find((m) => m.type === GENL_ID_CTRL);
  if (!reply) {
    throw new Error(`genl getfamily ${JSON.stringify(name)}: the kernel acknowledged but sent no family (is this a NETLINK_GENERIC socket?)`);
  }
  return decodeFamily(reply.payload);
}

/** All registered families (a CTRL_CMD_GETFAMILY dump). */
export function genlListFamilies(sock: NetlinkSocket): GenlFamily[] {
  const replies = sock.dump(GENL_ID_CTRL, encodeGenlHeader(CTRL_CMD_GETFAMILY, CTRL_REQUEST_VERSION), {
    op: 'genl getfamily dump',
    object: 'all families',
  });
  return replies.filter((m) => m.type === GENL_ID_CTRL).map((m) => decodeFamily(m.payload));
}
