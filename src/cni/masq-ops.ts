// ipMasq as ADD/DEL/CHECK/GC use it: the nftables element per pod IP (src/cni/masq.ts), scoped to
// this network so that GC of one network never removes another network's entries.
import type { Owner } from '../ipam/types.js';
import { networkCidr } from '../net/cidr.js';
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { CniError, CNI_ERR } from './errors.js';
import { ipOf } from './host.js';
import { masqAdd, masqCheck, masqDel, masqGc, networkChain, realNft, type NftRunner } from './masq.js';

const runner: NftRunner = realNft;

const masqError = (err: unknown) => new CniError(CNI_ERR.MASQ, (err as Error).message, 'is nftables (the nft command) installed on this node?');

/** Masquerade `address` (a CIDR) of this attachment; returns its undo step for ADD. */
export function masqAddFor(conf: NetConf, env: CniEnv, address: string): { what: string; run: () => void } {
  const owner = { containerId: env.containerId, ifname: env.ifname };
  try {
    masqAdd(runner, { network: conf.name, subnet: networkCidr(address), podIp: ipOf(address), owner });
  } catch (err) {
    throw masqError(err);
  }
  return { what: `remove the masquerade entry of ${ipOf(address)}`, run: () => void masqDel(runner, owner) };
}

/** Remove this attachment's masquerade entries (found by owner, so IPs are not needed). */
export function masqDelFor(env: CniEnv): void {
  try {
    masqDel(runner, { containerId: env.containerId, ifname: env.ifname });
  } catch (err) {
    throw masqError(err);
  }
}

export function masqCheckFor(conf: NetConf, env: CniEnv, addresses: string[]): void {
  for (const address of addresses) {
    let problem: string | undefined;
    try {
      problem = masqCheck(runner, { network: conf.name, subnet: networkCidr(address), podIp: ipOf(address), owner: { containerId: env.containerId, ifname: env.ifname } });
    } catch (err) {
      throw masqError(err);
    }
    if (problem) throw new CniError(CNI_ERR.CHECK_FAILED, problem, 'DEL and ADD the attachment again');
  }
}

/**
 * GC: entries of this network (the chains derived from its ranges) whose owner is not valid; other
 * networks' entries are out of scope. Runs before IPAM's GC, so that an IP is never handed to a new
 * pod while its old entry may still be removed. With a delegated IPAM plugin the network's subnets
 * are unknown here, so nothing is collected (DEL still removes each attachment's entry).
 */
export function masqGcFor(conf: NetConf, valid: Owner[]): void {
  if (conf.ipam.type !== 'podwire') return;
  try {
    const ours = conf.ipam.ranges.flat().map((r) => networkChain(conf.name, networkCidr(r.subnet)));
    masqGc(runner, valid, { chains: ours });
  } catch (err) {
    throw masqError(err);
  }
}
