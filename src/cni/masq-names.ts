// ipMasq's names and canonical forms: the attachment comment, the network chain's name, and the
// pod IP and subnet as nft prints them back (so CHECK compares exactly). Pure.
import { createHash } from 'node:crypto';
import { bitsOf, formatIp, parseIp, type Family } from '../net/ip.js';
import { networkOf, parseCidr } from '../net/cidr.js';
import { CONTAINER_ID_RULE, IFNAME_RULE, containerIdProblem, ifnameProblem } from '../netlink/names.js';
import { CommandError } from '../exec/runner.js';

// nft 1.0.6 refuses element comments longer than 128 characters ("comment too long").
const COMMENT_MAX = 128;
export const NET_CHAIN_RE = /^net-[0-9a-f]{8}$/;

export interface MasqOwner {
  containerId: string;
  ifname: string;
}

export interface MasqSpec {
  /** CNI network name (only hashed into the chain name, never written into the ruleset). */
  network: string;
  /** The pod's subnet as a CIDR; host bits are ignored (10.244.1.2/24 means 10.244.1.0/24). */
  subnet: string;
  podIp: string;
  owner: MasqOwner;
}

// The comment is written inside "..." and nft strings have no escapes: the attachment rules of
// src/netlink/names.ts keep quotes, backslash and whitespace out of both names, '~' out of
// container IDs (see ownerComment) and '/' (our separator) out of interface names.
export function validateOwner(owner: MasqOwner): void {
  const { containerId, ifname } = owner ?? ({} as MasqOwner);
  const idProblem = containerIdProblem(containerId);
  if (idProblem) throw new CommandError(`ipMasq: invalid container ID ${JSON.stringify(containerId)}: ${idProblem} (${CONTAINER_ID_RULE})`);
  const ifProblem = ifnameProblem(ifname);
  if (ifProblem) throw new CommandError(`ipMasq: invalid interface name ${JSON.stringify(ifname)}: ${ifProblem} (${IFNAME_RULE})`);
}

/**
 * The element comment that identifies an attachment. Container IDs may be up to 255 characters but
 * nft caps comments at 128, so long IDs are shortened to a prefix + '~' + hash ('~' cannot occur
 * in a container ID, so a shortened comment never equals a plain one).
 */
export function ownerComment(owner: MasqOwner): string {
  validateOwner(owner);
  const plain = `${owner.containerId}/${owner.ifname}`;
  if (plain.length <= COMMENT_MAX) return plain;
  const digest = createHash('sha256').update(owner.containerId).digest('hex').slice(0, 16);
  const keep = COMMENT_MAX - owner.ifname.length - digest.length - 2;
  return `${owner.containerId.slice(0, keep)}~${digest}/${owner.ifname}`;
}

/** A spec validated and in nft's own spelling. */
export interface Resolved {
  family: Family;
  podIp: string;
  subnet: string; // canonical, as nft prints it back
  chain: string;
  comment: string;
}

function canonicalSubnet(text: string): { family: Family; text: string } {
  let cidr;
  try {
    cidr = parseCidr(text);
  } catch (err) {
    throw new CommandError(`ipMasq: subnet: ${(err as Error).message}`);
  }
  const addr = formatIp(networkOf(cidr).addr.bytes);
  // nft prints a full-length prefix as a plain address; matching that keeps masqCheck exact.
  return { family: cidr.addr.family, text: cidr.prefixLen === bitsOf(cidr.addr.family) ? addr : `${addr}/${cidr.prefixLen}` };
}

export function canonicalIp(text: string): { family: Family; text: string } {
  try {
    const ip = parseIp(text);
    return { family: ip.family, text: formatIp(ip.bytes) };
  } catch (err) {
    throw new CommandError(`ipMasq: pod IP: ${(err as Error).message}`);
  }
}

/** Chain for one (network, subnet): the JSON pair is hashed so "a"+"b/24" cannot equal "ab"+"/24". */
export function networkChain(network: string, subnet: string): string {
  if (typeof network !== 'string' || network === '') throw new CommandError('ipMasq: network name must be a non-empty string');
  const canonical = canonicalSubnet(subnet).text;
  return 'net-' + createHash('sha256').update(JSON.stringify([network, canonical])).digest('hex').slice(0, 8);
}

export function resolve(spec: MasqSpec): Resolved {
  const comment = ownerComment(spec.owner);
  const subnet = canonicalSubnet(spec.subnet);
  const ip = canonicalIp(spec.podIp);
  if (ip.family !== subnet.family) {
    throw new CommandError(`ipMasq: pod IP ${spec.podIp} is IPv${ip.family} but subnet ${spec.subnet} is IPv${subnet.family}`);
  }
  return { family: ip.family, podIp: ip.text, subnet: subnet.text, chain: networkChain(spec.network, spec.subnet), comment };
}

export const mapFor = (family: Family): string => (family === 4 ? 'masq4' : 'masq6');
