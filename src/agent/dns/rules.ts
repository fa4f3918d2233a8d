// The node-local cluster DNS in nftables (pure): table inet podwire-dns, owned by the agent's DNS
// part and replaced whole in one transaction.
//
// Pods send their queries to the kube-dns ClusterIP (10.96.0.10), which the agent also binds on
// the node (on lo) with its own server:
// - raw prerouting: a query to CLUSTER_DNS:53 is NOTRACKed when a socket is bound there
//   (`socket transparent 0` matches only if the kernel finds one). Untracked, it skips every NAT
//   hook: no DNAT, no conntrack entry, so no insertion race between parallel A/AAAA queries
//   (kubernetes#56903) and no traffic to other nodes; routing delivers it to the local address.
// - raw output: the answers from CLUSTER_DNS:53 are not tracked either.
// - dstnat - 1 (before the service proxy's dstnat chains, whichever mode): when no socket is
//   bound (the agent is down, even after kill -9), the query is tracked and DNATed to one of the
//   OTHER nodes' DNS servers at random; the local node's own address is never a fallback. With
//   no other node the proxy's kube-dns rules (if any) decide.
import { isIp } from '../../net/index.js';

export const DNS_TABLE = 'podwire-dns';
/** `nft list table inet podwire-dns` existing means it is ours: nobody else names a table so. */
export const DNS_TABLE_SPEC = `inet ${DNS_TABLE}`;
export const DNS_PORT = 53;

export interface DnsRulesInput {
  /** The kube-dns ClusterIP the pods' resolv.conf names. */
  clusterDns: string;
  /** Other nodes' DNS server addresses (same family as clusterDns), for the fallback. */
  fallback: readonly string[];
}

/** The nft -f script: creates or replaces the table atomically. */
export function renderDnsRules(input: DnsRulesInput): string {
  if (!isIp(input.clusterDns)) throw new Error(`cluster DNS address ${JSON.stringify(input.clusterDns)} is not an IP address`);
  const v4 = isIp(input.clusterDns, 4);
  const ip = v4 ? 'ip' : 'ip6';
  const fallback = [...new Set(input.fallback.filter((a) => isIp(a, v4 ? 4 : 6) && a !== input.clusterDns))].sort();
  const lines = [
    `table ${DNS_TABLE_SPEC} {}`,
    `delete table ${DNS_TABLE_SPEC}`,
    `table ${DNS_TABLE_SPEC} {`,
    '\tchain prerouting-raw {',
    '\t\ttype filter hook prerouting priority raw; policy accept;',
    `\t\t${ip} daddr ${input.clusterDns} meta l4proto { udp, tcp } th dport ${DNS_PORT} socket transparent 0 notrack comment "node-local DNS: answered here, untracked"`,
    '\t}',
    '\tchain output-raw {',
    '\t\ttype filter hook output priority raw; policy accept;',
    `\t\t${ip} saddr ${input.clusterDns} meta l4proto { udp, tcp } th sport ${DNS_PORT} notrack comment "node-local DNS answers"`,
    '\t}',
  ];
  if (fallback.length > 0) {
    const map = fallback.map((a, i) => `${i} : ${a}`).join(', ');
    lines.push(
      '\tchain prerouting-fallback {',
      '\t\ttype nat hook prerouting priority dstnat - 1; policy accept;',
      `\t\t${ip} daddr ${input.clusterDns} meta l4proto { udp, tcp } th dport ${DNS_PORT} dnat ${ip} to numgen random mod ${fallback.length} map { ${map} } comment "local DNS down: another node's"`,
      '\t}',
    );
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function renderDnsRulesRemove(): string {
  return `table ${DNS_TABLE_SPEC} {}\ndelete table ${DNS_TABLE_SPEC}\n`;
}
