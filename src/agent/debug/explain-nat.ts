// explain's masquerade hop (pure): whether postrouting rewrites a packet's source on this node, and
// to which address. In the order the nat chains bind (src/proxy/nft/layout.ts, the agent's
// masq/render.ts): the proxy's hairpin rule (a pod reaching itself through a service), the proxy's
// masquerade mark (service.ts decided it), then the agent's pod-masquerade (flannel's rules:
// pod → outside the cluster CIDR, and outside → another node's pod). A masquerade takes the
// address of the outgoing device, as the kernel picks it: the one on the gateway's subnet, else
// the first.
import { textCidrContains } from '../../net/cidr.js';

export interface MasqueradeInput {
  /** The packet's source and (after any DNAT) destination. */
  src: string;
  dst: string;
  clusterCidr: string;
  podCidr: string;
  /** Why the proxy marked it for masquerading (explain-service.ts), if it did. */
  serviceMark?: string;
  /** Whether a service DNATed it on this node. */
  dnated: boolean;
}

const MULTICAST = '224.0.0.0/4';

/** Why the packet is masqueraded here, or undefined when it keeps its source. */
export function masqueradeReason(p: MasqueradeInput): string | undefined {
  if (p.dnated && p.src === p.dst) return 'hairpin: a pod reaching itself through a service sees the reply come from the node';
  if (p.serviceMark) return p.serviceMark;
  const srcIn = textCidrContains(p.clusterCidr, p.src);
  const dstIn = textCidrContains(p.clusterCidr, p.dst);
  if (srcIn) return dstIn || textCidrContains(MULTICAST, p.dst) ? undefined : `pod traffic leaving the cluster CIDR ${p.clusterCidr} (the agent's pod-masquerade)`;
  if (textCidrContains(p.podCidr, p.dst)) return undefined;
  return dstIn ? `traffic from outside the pod network to another node's pod (the agent's pod-masquerade), so the replies come back through this node` : undefined;
}

/** The address a masquerade on a device with these addresses (CIDR form, IPv4) picks for a next hop. */
export function masqueradeAddress(addrs: readonly string[], nextHop: string): string | undefined {
  const onSubnet = addrs.find((a) => textCidrContains(a, nextHop));
  return (onSubnet ?? addrs[0])?.split('/')[0];
}
