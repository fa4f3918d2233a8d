// Finding a pod's network namespace on this node, for probes run from inside it (ping, connect,
// explain) and doctor's IPAM check. The Pod's `podwire.io/netns` annotation (the CNI_NETNS the
// plugin was given) is tried first; otherwise every named netns (/run/netns, where ip netns,
// containerd and podman put theirs) is looked at. A netns is only taken when it is this node's
// pod: the IP is in this node's podCIDR, its eth0 holds the IP, and eth0's veth peer is a link of
// this node's netns (the kernel's netns id, not the ifindex, says the peer is here). On one
// machine every netns is visible to every agent (a lab; several labs at once, which hand out the
// same pod IPs): without the last check an agent would probe from another node's or another
// lab's pod that happens to have the same address.
import fs from 'node:fs';
import path from 'node:path';
import { Handle } from '../../netlink/handle.js';
import type { Link } from '../../netlink/link.js';
import { networkCidr, textCidrContains } from '../../net/cidr.js';
import { NETNS_RUN_DIR, openNetns } from '../../netns/netns.js';
import { BRIDGE_NAME } from '../network/types.js';

export const POD_IFNAME = 'eth0';

/** What a netns shows of the pod interface: eth0's ifindex, its peer's (IFLA_LINK) and whether it holds the IP. */
export interface PodSide {
  index: number;
  peerIndex?: number;
  holdsIp: boolean;
}

/**
 * Whether the pod side's peer is a veth of the node's netns pointing back at it: `nodeLinks` the
 * node's links, `nsid` the id the node's netns gives the pod's (undefined: none, so no link of the
 * node's netns has its peer there). Pure.
 */
export function isNodesPod(pod: PodSide, nodeLinks: readonly Pick<Link, 'index' | 'kind' | 'linkIndex' | 'linkNetnsId'>[], nsid: number | undefined): boolean {
  if (!pod.holdsIp || pod.peerIndex === undefined || nsid === undefined) return false;
  return nodeLinks.some((l) => l.index === pod.peerIndex && l.kind === 'veth' && l.linkNetnsId === nsid && l.linkIndex === pod.index);
}

/** Whether `ip` may be a pod of this node at all: inside its podCIDR. Pure. */
export const inPodCidr = (ip: string, podCidr: string): boolean => textCidrContains(podCidr, ip);

/** The pod subnet on the node's bridge (cni0's first IPv4 address, as a network); undefined without one. */
export function bridgePodCidr(node: Handle): string | undefined {
  const bridge = node.linkFind(BRIDGE_NAME);
  const addr = bridge && node.addrList({ ifindex: bridge.index, family: 4 })[0];
  return addr ? networkCidr(addr.cidr) : undefined;
}

/** Whether the netns at `netnsPath` is the node's pod with `ip` on its eth0 (false when it cannot be opened). */
export function netnsHoldsPod(netnsPath: string, ip: string, node: Handle): boolean {
  let ref;
  let h: Handle | undefined;
  try {
    ref = openNetns(netnsPath);
    h = Handle.open({ netns: ref });
    const eth = h.linkList().find((l) => l.name === POD_IFNAME);
    if (!eth) return false;
    const side: PodSide = { index: eth.index, holdsIp: h.addrList({ ifindex: eth.index }).some((a) => a.local === ip), ...(eth.linkIndex !== undefined ? { peerIndex: eth.linkIndex } : {}) };
    if (!side.holdsIp) return false;
    // Links first: dumping a veth whose peer is in that netns is what makes the kernel assign the id.
    const links = node.linkList();
    return isNodesPod(side, links, node.netnsId(ref.fd));
  } catch {
    return false;
  } finally {
    h?.close();
    ref?.close();
  }
}

export interface PodNetnsQuery {
  ip: string;
  /**
   * This node's podCIDR (the control plane's, NetworkInput.podCidr); without it the subnet on
   * cni0. An IP outside it is never one of this node's pods, whatever netns holds it.
   */
  podCidr?: string;
  /** A handle on this node's netns (the agent's). */
  node: Handle;
  /** The Pod's annotation, tried first. */
  hint?: string;
  runDir?: string;
  /** Whether the netns at a path is the node's pod with the IP (default netnsHoldsPod; tests pass their own). */
  holds?: (netnsPath: string, ip: string) => boolean;
}

/** Why no netns of this node is the pod with `ip`, for a 404 (the podCIDR first: that needs no scan). */
export function noPodMessage(node: string, ip: string, podCidr: string | undefined, hint?: string): string {
  if (podCidr !== undefined && !inPodCidr(ip, podCidr)) return `no pod with IP ${ip} on node ${node}: ${ip} is not in its podCIDR ${podCidr}; is the pod on another node?`;
  return `no pod with IP ${ip} on node ${node} (no netns here has it on eth0${hint ? `, not even ${hint}` : ''}); is the pod on this node and running?`;
}

/**
 * The path of this node's pod netns whose eth0 holds `ip`: the hint when it checks out, else the
 * first named netns that does; undefined when none does.
 */
export function findPodNetns(q: PodNetnsQuery): string | undefined {
  const podCidr = q.podCidr ?? bridgePodCidr(q.node);
  if (podCidr === undefined || !inPodCidr(q.ip, podCidr)) return undefined;
  const holds = q.holds ?? ((p: string, ip: string) => netnsHoldsPod(p, ip, q.node));
  if (q.hint && path.isAbsolute(q.hint) && holds(q.hint, q.ip)) return q.hint;
  const runDir = q.runDir ?? NETNS_RUN_DIR;
  let names: string[];
  try {
    names = fs.readdirSync(runDir);
  } catch {
    return undefined;
  }
  for (const name of names.sort()) {
    const p = path.join(runDir, name);
    if (p !== q.hint && holds(p, q.ip)) return p;
  }
  return undefined;
}
