// Kernel helpers of the plugin, idempotent (ensure*) and safe under concurrent ADDs of other pods.
import fs from 'node:fs';
import type { Handle } from '../netlink/handle.js';
import type { Link } from '../netlink/link.js';
import { parseCidr } from '../net/cidr.js';
import { isCurrentNetns, openNetns, type NetnsRef } from '../netns/netns.js';
import { CniError, CNI_ERR } from './errors.js';

const code = (err: unknown) => (err as { code?: string }).code;

/** The bridge, created (up, with the MTU) when missing; another ADD may create it at the same time. */
export function ensureBridge(host: Handle, name: string, mtu: number): Link {
  let br = host.linkFind(name);
  if (!br) {
    let created = false;
    try {
      host.linkAdd({ kind: 'bridge', name, mtu, up: true });
      created = true;
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
    }
    br = host.linkGet(name);
    // Pin the random MAC it was born with (addr_assign_type "set"): otherwise the bridge takes the
    // lowest port MAC and changes it as pods come and go, which breaks neighbours' ARP caches.
    if (created && br.mac) host.linkSet(br.index, { mac: br.mac });
  }
  if (br.kind !== 'bridge') {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `${name} exists but is a ${br.kind ?? 'plain'} link, not a bridge`, 'choose another "bridge" name in the network config');
  }
  if (!br.up) host.linkSet(br.index, { up: true });
  return br;
}

/** The gateway address gw/prefix on the bridge (kept if present; EEXIST from a racing ADD is fine). */
export function ensureGatewayAddress(host: Handle, bridgeIndex: number, gateway: string, prefixLen: number): void {
  const cidr = `${gateway}/${prefixLen}`;
  if (host.addrList({ ifindex: bridgeIndex }).some((a) => a.cidr === cidr)) return;
  try {
    host.addrAdd({ ifindex: bridgeIndex, cidr, ...(gateway.includes(':') ? { flags: 0x02 /* IFA_F_NODAD */ } : {}) });
  } catch (err) {
    if (code(err) !== 'EEXIST') throw err;
  }
}

/** Forwarding on in this (the node's) netns, as the reference bridge plugin does for isGateway. */
export function ensureForwarding(family: 4 | 6): void {
  const file = family === 4 ? '/proc/sys/net/ipv4/ip_forward' : '/proc/sys/net/ipv6/conf/all/forwarding';
  if (fs.readFileSync(file, 'utf8').trim() !== '1') fs.writeFileSync(file, '1\n');
}

/**
 * Open CNI_NETNS: code 3 when it is gone, 4 when the path is not a network namespace or is the
 * plugin's own (the node's: a pod end created there would be a link of the node itself).
 */
export function openPodNetns(netns: string): NetnsRef {
  let ref: NetnsRef;
  try {
    ref = openNetns(netns);
  } catch (err) {
    const missing = code(err) === 'ENOENT';
    throw new CniError(missing ? CNI_ERR.UNKNOWN_CONTAINER : CNI_ERR.INVALID_ENV,
      `CNI_NETNS ${netns}: ${(err as Error).message}`, missing ? 'the container netns does not exist (any more)' : 'CNI_NETNS must name a network namespace');
  }
  if (isCurrentNetns(ref)) {
    ref.close();
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS ${netns} is the plugin's own network namespace (the node's), not a container's`,
      'CNI_NETNS must name the container\'s network namespace; a pod in the node\'s netns (hostNetwork) needs no CNI call');
  }
  return ref;
}

export const prefixOf = (cidr: string): number => parseCidr(cidr).prefixLen;
export const ipOf = (cidr: string): string => cidr.split('/')[0];
export const familyOfIp = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);
