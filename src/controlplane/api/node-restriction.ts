// What a node token may write, object by object: podwire's version of Kubernetes' NodeRestriction
// admission plugin. authorize() (auth.ts) has already allowed the verb on the resource; these run
// inside the write's store txn, with the stored object and the writer's own Node.
//
// - Pods: bound to the writer (spec.nodeName, before and after), and every pod IP inside the
//   writer's podCIDR(s): the endpoints controller turns pod IPs into Service endpoints, so a pod
//   IP from elsewhere would let one node steer any Service's traffic to any address.
// - Its Node: podCIDR is the control plane's to allocate (a node may not pick or change one);
//   the underlay addresses peers tunnel to (status.addresses InternalIP/ExternalIP, annotation
//   podwire.io/public-ip) must be unicast host addresses outside the cluster and service CIDRs;
//   the VTEP MAC (podwire.io/vtep-mac) must not be another Node's, or peers would send that
//   node's pod traffic here; its DNS endpoint (podwire.io/dns-endpoint) must be in its own
//   podCIDR (its pod gateway), or it could send other nodes' pods' DNS fallback anywhere.
import { textCidrContains } from '../../net/cidr.js';
import { formatIp, isLinkLocalUnicast, isLoopback, isMulticast, isUnspecified, tryParseIp, unmap4 } from '../../net/ip.js';
import { NODE_ANNOTATIONS, type KubeObject, type Node, type Pod } from '../../api/objects.js';
import { readClusterConfig } from './allocations.js';
import type { WriteCheckContext } from './registry.js';
import { ApiError } from './status.js';

/** A refusal as the API reports it: 403 naming the node and the reason. */
export function forbidden(nodeName: string, verb: string, resource: string, why: string): ApiError {
  return new ApiError('Forbidden', `${resource} is forbidden: User "system:node:${nodeName}" cannot ${verb} resource "${resource}": ${why}`, { kind: resource });
}


const podIpsOf = (pod: Pod): string[] => {
  const ips = [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p?.ip)];
  return [...new Set(ips.filter((ip): ip is string => typeof ip === 'string' && ip !== ''))];
};

const podCidrsOf = (node: Node | undefined): string[] => {
  const cidrs = [node?.spec?.podCIDR, ...(node?.spec?.podCIDRs ?? [])];
  return [...new Set(cidrs.filter((c): c is string => typeof c === 'string' && c !== ''))];
};

/** Pods: bound to the writer before and after, and with pod IPs from the writer's own podCIDR(s). */
export async function checkNodePodWrite(self: string, verb: string, next: Pod | undefined, old: Pod | undefined, ctx: WriteCheckContext): Promise<void> {
  for (const o of [next, old]) {
    if (o && o.spec?.nodeName !== self) {
      throw forbidden(self, verb, 'pods', `node ${JSON.stringify(self)} may only write Pods with spec.nodeName ${JSON.stringify(self)}; ${describe(o)} has ${JSON.stringify(o.spec?.nodeName ?? '')}`);
    }
  }
  const ips = next ? podIpsOf(next) : [];
  if (ips.length === 0) return;
  const own = await ctx.get<Node>(`/nodes/${self}`);
  const cidrs = podCidrsOf(own?.value);
  const where = cidrs.length > 0 ? `podCIDR ${cidrs.join(', ')}` : 'no podCIDR (register the Node first)';
  for (const ip of ips) {
    if (!cidrs.some((c) => textCidrContains(c, ip))) {
      throw forbidden(self, verb, 'pods', `pod IP ${ip} of ${describe(next!)} is outside node ${JSON.stringify(self)}'s ${where}: a node may only report pod IPs from its own podCIDR`);
    }
  }
}

/** Why `ip` cannot be an underlay address peers send tunnelled traffic to, or undefined if it can. */
export function underlayAddressProblem(ip: string, clusterCidr: string, serviceCidr: string): string | undefined {
  const parsed = tryParseIp(ip);
  if (parsed === undefined) return 'is not an IP address';
  // An IPv4-mapped IPv6 address reaches the IPv4 host: the IPv4 rules apply.
  const a = unmap4(parsed);
  if (a !== parsed) {
    const mapped = underlayAddressProblem(formatIp(a.bytes), clusterCidr, serviceCidr);
    return mapped && `(IPv4-mapped) ${mapped}`;
  }
  const v4 = a.family === 4;
  if (isUnspecified(a)) return 'is unspecified';
  if (isLoopback(a)) return 'is a loopback address';
  if (isLinkLocalUnicast(a)) return 'is link-local';
  if (isMulticast(a)) return 'is a multicast address';
  if (v4 && a.bytes[0]! >= 240) return 'is reserved or broadcast';
  if (v4 && a.bytes[0] === 0) return 'is in 0.0.0.0/8 ("this network")';
  if (textCidrContains(clusterCidr, ip)) return `is inside the cluster CIDR ${clusterCidr} (pod addresses cannot carry the overlay)`;
  if (textCidrContains(serviceCidr, ip)) return `is inside the service CIDR ${serviceCidr}`;
  return undefined;
}

/** Its Node: no podCIDR of its choosing, usable underlay addresses, a VTEP MAC no other Node has. */
export async function checkNodeNodeWrite(self: string, verb: string, next: Node | undefined, old: Node | undefined, ctx: WriteCheckContext): Promise<void> {
  const name = (next ?? old)!.metadata.name;
  if (name !== self) throw forbidden(self, verb, 'nodes', `node ${JSON.stringify(self)} may only write its own Node object, not ${JSON.stringify(name)}`);
  if (!next) return;
  const stored = podCidrsOf(old);
  for (const cidr of podCidrsOf(next)) {
    if (!stored.includes(cidr)) {
      throw forbidden(self, verb, 'nodes', `spec.podCIDR ${cidr}: a node may not choose or change its podCIDR${stored.length > 0 ? ` (it is ${stored.join(', ')})` : ''}; leave it empty and the control plane allocates one`);
    }
  }
  const config = await readClusterConfig(ctx);
  const annotations = next.metadata.annotations ?? {};
  const dns = annotations[NODE_ANNOTATIONS.dnsEndpoint];
  if (dns !== undefined && dns !== old?.metadata.annotations?.[NODE_ANNOTATIONS.dnsEndpoint] && !stored.some((c) => textCidrContains(c, dns))) {
    const where = stored.length > 0 ? `podCIDR ${stored.join(', ')}` : 'no podCIDR yet (register the Node first)';
    throw forbidden(self, verb, 'nodes', `annotation ${NODE_ANNOTATIONS.dnsEndpoint} ${dns} is outside node ${JSON.stringify(self)}'s ${where}: a node's DNS server listens on its own pod gateway`);
  }
  const underlay = [
    ...(next.status?.addresses ?? []).filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => ({ field: `status.addresses (${a.type})`, ip: a.address })),
    ...(annotations[NODE_ANNOTATIONS.publicIp] !== undefined ? [{ field: `annotation ${NODE_ANNOTATIONS.publicIp}`, ip: annotations[NODE_ANNOTATIONS.publicIp]! }] : []),
  ];
  for (const { field, ip } of underlay) {
    const problem = underlayAddressProblem(ip, config.clusterCIDR, config.serviceCIDR);
    if (problem) throw forbidden(self, verb, 'nodes', `${field} ${ip} ${problem}: a node's addresses must be unicast host addresses its peers can reach`);
  }
  const mac = annotations[NODE_ANNOTATIONS.vtepMac]?.toLowerCase();
  if (mac === undefined || mac === old?.metadata.annotations?.[NODE_ANNOTATIONS.vtepMac]?.toLowerCase()) return;
  const nodes = await ctx.list('/nodes');
  const holder = nodes.items.find((n) => n.value.metadata.name !== self && n.value.metadata.annotations?.[NODE_ANNOTATIONS.vtepMac]?.toLowerCase() === mac);
  if (holder) throw forbidden(self, verb, 'nodes', `annotation ${NODE_ANNOTATIONS.vtepMac} ${mac} is node ${JSON.stringify(holder.value.metadata.name)}'s VTEP MAC`);
}

const describe = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
