// `podwire doctor`'s node checks (issue 15): pure, from the facts the agent gathered in its node's
// netns (doctor.ts) to findings, each with what is wrong and how to fix it. The check ids are a
// contract (src/cli/README.md, doctor section); agent-down, controlplane-unreachable and the
// control plane's side of podcidr-mismatch are the CLI's (src/cli/debug/doctor.ts).
import type { NodeDnsStatus } from '../dns/node-dns.js';

export type Severity = 'error' | 'warning';

export interface Finding {
  check: string;
  severity: Severity;
  node: string;
  message: string;
  fix: string;
}

export interface LinkFact {
  name: string;
  mtu: number;
  kind?: string;
}

export interface DoctorFacts {
  node: string;
  /** The agent's podCIDR (undefined before registration). */
  podCidr?: string;
  /** Sysctl values by key; undefined when the key does not exist (e.g. br_netfilter not loaded). */
  sysctls: Record<string, string | undefined>;
  /** What the next sync wants (undefined before registration). */
  desired?: { bridge: string; gatewayCidr: string; podMtu: number; vxlan?: { name: string; mtu: number }; underlay: { ifname: string; mtu: number } };
  /** cni0, podwire.1 and the underlay as the kernel has them (absent ones left out). */
  links: LinkFact[];
  /** The host ends of pod veths: the ports of cni0. */
  bridgePorts: LinkFact[];
  /** cni0's addresses (CIDR form). */
  bridgeAddrs: string[];
  /** The steps a sync would take now (Agent.outOfSync, plan.ts describeStep words). */
  outOfSync?: string[];
  outOfSyncError?: string;
  /** Our nftables objects: undefined when the agent uses no nftables (iptables masquerade). */
  nft?: { tableFamily: string; table: string; tablePresent: boolean; missingChains: string[]; proxyIntact?: boolean; error?: string };
  cni: { confDir: string; files: { name: string; ours: boolean; error?: string }[]; error?: string };
  /** Reservations no live container holds (proven: no netns has the IP on eth0, older than the grace). */
  ipamOrphans: { network: string; ip: string; containerId: string; ifname: string }[];
  /** The node-local cluster DNS (undefined: --dns off, or not started: no cluster DNS address yet). */
  dns?: DnsFacts;
  /** --proxy-mode ipvs only. */
  ipvs?: IpvsFacts;
}

export interface IpvsFacts {
  /** /proc/net/ip_vs exists: the ip_vs module is loaded (IPVS is per netns, the node's). */
  loaded: boolean;
  /** The dummy device holding the service IPs exists. */
  device: boolean;
  /** The service proxy has synced without error. */
  synced: boolean;
  /** The sysctls the mode sets: what it wants and what the node has (undefined: unreadable). */
  sysctls: { key: string; want: string; have?: string }[];
}

function ipvsChecks(v: IpvsFacts, add: (check: string, severity: Severity, message: string, fix: string) => void): void {
  if (!v.loaded) {
    add('ipvs-missing', 'error', 'the agent runs --proxy-mode ipvs but IPVS is not loaded in the node\'s netns (no /proc/net/ip_vs): no service answers', 'modprobe ip_vs (and ip_vs_rr or the --ipvs-scheduler one); if the kernel has no IPVS, use --proxy-mode nftables');
    return;
  }
  if (!v.device && v.synced) add('ipvs-missing', 'error', 'the dummy device podwire-ipvs0 is gone: service IPs are not local, IPVS does not see their traffic', 'the agent\'s next full sync (its resync interval) recreates it; to force it, restart podwire-agent');
  const wrong = v.sysctls.filter((s) => s.have !== s.want);
  const conntrack = wrong.find((s) => s.key === 'net.ipv4.vs.conntrack');
  if (conntrack) add('ipvs-sysctl', 'error', `net.ipv4.vs.conntrack is ${conntrack.have ?? 'unreadable'}, not 1: IPVS traffic has no conntrack entry, so nothing it forwards is masqueraded (hairpin, NodePort, node-to-service replies are lost)`, `sysctl -w net.ipv4.vs.conntrack=1 ${SYSCTL_FIX} (the agent sets it at each full sync)`);
  const rest = wrong.filter((s) => s !== conntrack);
  if (rest.length) add('ipvs-sysctl', 'warning', `IPVS sysctls differ from what the mode sets: ${rest.map((s) => `${s.key}=${s.have ?? 'unreadable'} (want ${s.want})`).join(', ')}`, `sysctl -w ${rest.map((s) => `${s.key}=${s.want}`).join(' ')} ${SYSCTL_FIX}; src/agent/ipvs-kernel.ts (ipvsSysctls) says what each is for`);
}

/** The DNS part's own status (without its fallback list), and whether its nft table is there. */
export interface DnsFacts extends Omit<NodeDnsStatus, 'fallback'> {
  /** table inet podwire-dns present (undefined: nft could not be asked). */
  tablePresent?: boolean;
  tableError?: string;
}

const SYSCTL_FIX = 'in the node\'s netns';

/** Strict reverse-path filtering (1) on any of these links: the kernel uses max(all, link). */
function strictRpLinks(f: DoctorFacts): string[] {
  const all = f.sysctls['net.ipv4.conf.all.rp_filter'];
  const names = [f.desired?.bridge ?? 'cni0', ...(f.desired?.vxlan ? [f.desired.vxlan.name] : []), ...(f.desired ? [f.desired.underlay.ifname] : [])];
  return names.filter((n) => {
    const own = f.sysctls[`net.ipv4.conf.${n}.rp_filter`];
    if (own === undefined) return false;
    return Math.max(Number(all ?? 0), Number(own)) === 1;
  });
}

function mtuProblems(f: DoctorFacts): string[] {
  const d = f.desired;
  if (!d) return [];
  const link = (n: string) => f.links.find((l) => l.name === n);
  const out: string[] = [];
  const under = link(d.underlay.ifname);
  const underMtu = under?.mtu ?? d.underlay.mtu;
  if (d.vxlan) {
    const vx = link(d.vxlan.name);
    if (vx && vx.mtu > underMtu - 50) out.push(`${d.vxlan.name} mtu ${vx.mtu} > underlay ${d.underlay.ifname} mtu ${underMtu} − 50 (VXLAN overhead)`);
    else if (vx && vx.mtu !== d.vxlan.mtu) out.push(`${d.vxlan.name} mtu ${vx.mtu}, want ${d.vxlan.mtu}`);
  }
  const br = link(d.bridge);
  if (br && br.mtu !== d.podMtu) out.push(`${d.bridge} mtu ${br.mtu}, want the pod MTU ${d.podMtu}`);
  const bad = f.bridgePorts.filter((p) => p.mtu > d.podMtu);
  if (bad.length) out.push(`pod veth${bad.length > 1 ? 's' : ''} ${bad.map((p) => `${p.name} mtu ${p.mtu}`).join(', ')} > the pod MTU ${d.podMtu}`);
  return out;
}

const DNS_FIX_LOG = 'see the agent log (journalctl -u podwire-agent, lines with "dns:")';

function dnsChecks(d: DnsFacts, add: (check: string, severity: Severity, message: string, fix: string) => void): void {
  const want = [d.clusterDns, d.gateway];
  const missing = want.filter((h) => !d.listening.some((l) => l === `${h}:53` || l.startsWith(`${h}:`)));
  if (!d.synced) add('dns-not-serving', 'error', `the cluster DNS has not listed Services and Endpoints yet: this node's pods are sent to other nodes' servers${d.error ? ` (${d.error})` : ''}`, `check that the agent reaches the control plane (podwire status); ${DNS_FIX_LOG}`);
  else if (missing.length) add('dns-not-serving', 'error', `the cluster DNS does not listen on ${missing.map((h) => `${h}:53`).join(' and ')}${d.error ? `: ${d.error}` : ''}; ${missing.includes(d.clusterDns) ? 'this node\'s pods are answered by other nodes (or not at all with one node)' : 'other nodes cannot fall back to this one'}`, `find what holds port 53 there (ss -lunp 'sport = :53' in the node's netns) or why the address is missing; the agent retries every 2 s; ${DNS_FIX_LOG}`);
  if (d.tableError) add('dns-rules-missing', 'warning', `could not check table inet podwire-dns: ${d.tableError}`, 'check that nft is installed on the node');
  else if (d.tablePresent === false) add('dns-rules-missing', 'error', `table inet podwire-dns is gone: this node's pods' DNS queries are tracked and DNATed by the service proxy (the conntrack race), and there is no fallback when the agent is down`, 'restart podwire-agent (it writes the table when its DNS starts); find what deletes it (nft monitor)');
  if (d.loops.length) add('dns-upstream-loop', 'warning', `upstream resolvers that lead back to this server are not used: ${d.loops.join('; ')}`, 'give the agent --dns-upstream with the resolvers the node should use (not a stub that forwards to the cluster DNS)');
  if (d.fallbackDown.length) add('dns-fallback-down', 'warning', `other nodes' DNS servers do not answer this node's probes: ${d.fallbackDown.join(', ')}; when this node's server is down its pods fall back only to the others`, 'run podwire status / doctor on those nodes (their agent or its DNS is down, or the overlay to them is broken: podwire explain)');
  if (d.synced && d.upstreams.length === 0) add('dns-no-upstream', 'warning', 'the cluster DNS has no upstream resolver: names outside the cluster zone get SERVFAIL', 'give the agent --dns-upstream IP[,IP], or a nameserver in the node\'s /etc/resolv.conf that is not the cluster DNS');
}

/** Every finding of one node's facts, errors first, in a stable order. */
export function doctorChecks(f: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const add = (check: string, severity: Severity, message: string, fix: string) => out.push({ check, severity, node: f.node, message, fix });

  const fwd = f.sysctls['net.ipv4.ip_forward'];
  if (fwd !== '1') add('ip-forward', 'error', `net.ipv4.ip_forward is ${fwd ?? 'unreadable'}: the node does not forward pod traffic`, `sysctl -w net.ipv4.ip_forward=1 ${SYSCTL_FIX} (the agent sets it at start: restart podwire-agent)`);

  const strict = strictRpLinks(f);
  if (strict.length) add('rp-filter', 'warning', `strict reverse-path filtering (rp_filter=1) on ${strict.join(', ')}: packets whose way back leaves by another link are dropped (asymmetric overlay or pod routes)`, `sysctl -w net.ipv4.conf.all.rp_filter=2 and net.ipv4.conf.<link>.rp_filter=2 (loose) ${SYSCTL_FIX}`);

  // Same-node pod → service → pod replies are bridged on cni0: only br_netfilter shows them to
  // conntrack for the un-DNAT (src/agent/node-sysctls.ts).
  const brnf = ['iptables', ...(f.podCidr?.includes(':') ? ['ip6tables'] : [])].filter((k) => f.sysctls[`net.bridge.bridge-nf-call-${k}`] !== '1');
  if (brnf.length) {
    const state = brnf.map((k) => `bridge-nf-call-${k}=${f.sysctls[`net.bridge.bridge-nf-call-${k}`] ?? 'missing'}`).join(', ');
    add('br-netfilter', 'error', `${state}${f.sysctls[`net.bridge.bridge-nf-call-${brnf[0]}`] === undefined ? ' (br_netfilter not loaded)' : ''}: replies bridged on ${f.desired?.bridge ?? 'cni0'} skip conntrack, so a pod reaching a service whose endpoint is a pod on the same node gets answers from the endpoint's IP, not the service's, and its connections fail`, `modprobe br_netfilter; sysctl -w net.bridge.bridge-nf-call-${brnf[0]}=1 ${SYSCTL_FIX} (the agent does both at start: restart podwire-agent)`);
  }

  const mtu = mtuProblems(f);
  if (mtu.length) add('mtu', 'error', `MTUs inconsistent: ${mtu.join('; ')}; large packets are dropped or fragmented`, 'restart podwire-agent (its sync sets cni0 and podwire.1); pods keep their veth MTU until re-created: delete and re-create them');

  if (f.outOfSyncError) add('route-missing', 'warning', `could not compare the kernel with the plan: ${f.outOfSyncError}`, 'see the agent log (journalctl -u podwire-agent)');
  const steps = f.outOfSync ?? [];
  const group = (re: RegExp) => steps.filter((s) => re.test(s));
  const syncFix = 'the agent resyncs by itself within its resync period; to force it now restart podwire-agent; if it persists see podwire status and the agent log';
  const routes = group(/^route /);
  if (routes.length) add('route-missing', 'error', `routes differ from the plan: ${routes.join('; ')}`, `${syncFix} (or by hand: ip ${routes[0]})`);
  const neighs = group(/^neigh /);
  if (neighs.length) add('neigh-stale', 'error', `neighbour entries differ from the plan: ${neighs.join('; ')}`, `${syncFix} (or by hand: ip ${neighs[0]})`);
  const fdb = group(/^fdb /);
  if (fdb.length) add('fdb-stale', 'error', `FDB entries differ from the plan: ${fdb.join('; ')}`, `${syncFix} (or by hand: bridge ${fdb[0]})`);

  if (f.nft) {
    const n = f.nft;
    const name = `${n.tableFamily} ${n.table}`;
    if (n.error) add('nft-table-missing', 'warning', `could not list the nftables ruleset: ${n.error}`, 'check that nft is installed on the node');
    else if (!n.tablePresent) add('nft-table-missing', 'error', `nftables table ${name} is gone: no masquerade to outside the cluster${n.proxyIntact !== undefined ? ', no service rules' : ''}`, 'restart podwire-agent (it re-creates its table); find what deletes it (nft monitor)');
    else if (n.missingChains.length || n.proxyIntact === false) {
      const what = [...n.missingChains.map((c) => `chain ${c}`), ...(n.proxyIntact === false ? ['service proxy objects'] : [])];
      add('nft-table-missing', 'error', `nftables table ${name} lacks ${what.join(', ')}`, 'restart podwire-agent (or wait for its next full proxy sync); find what deletes them (nft monitor)');
    }
  }

  if (f.podCidr && f.desired) {
    const want = f.desired.gatewayCidr;
    const extra = f.bridgeAddrs.filter((a) => a !== want);
    if (!f.bridgeAddrs.includes(want)) add('podcidr-mismatch', 'error', `${f.desired.bridge} has ${f.bridgeAddrs.join(', ') || 'no address'}, not the gateway ${want} of the node's podCIDR ${f.podCidr}`, `ip addr add ${want} dev ${f.desired.bridge} (the agent's sync does it: restart podwire-agent)`);
    else if (extra.length) add('podcidr-mismatch', 'warning', `${f.desired.bridge} also has ${extra.join(', ')} besides ${want} (podCIDR ${f.podCidr})`, `ip addr del ${extra[0]} dev ${f.desired.bridge}`);
  }

  const c = f.cni;
  if (c.error) add('cni-config-conflict', 'error', `cannot read the CNI conf dir ${c.confDir}: ${c.error}`, 'check --cni-conf-dir of podwire-agent and the runtime');
  else if (!c.files.length) add('cni-config-conflict', 'warning', `no CNI network config in ${c.confDir}: a runtime reading this dir cannot set up pods (fine if it reads its configs elsewhere)`, 'run podwire-agent with --install-cni (it writes 10-podwire.conflist there), or point --cni-conf-dir at the runtime\'s conf dir');
  else {
    const oursAt = c.files.findIndex((x) => x.ours);
    const others = c.files.filter((x) => !x.ours).map((x) => x.name);
    if (oursAt < 0) add('cni-config-conflict', 'warning', `no podwire config in ${c.confDir}, only ${others.join(', ')}: a runtime reading this dir sets pods up with ${c.files[0]!.name}, not podwire (fine if it reads podwire's config elsewhere)`, `run podwire-agent with --install-cni (it writes 10-podwire.conflist), and remove ${c.files.map((x) => `${c.confDir}/${x.name}`).join(' ')} if this node's runtime reads this dir`);
    else if (oursAt > 0) {
      const first = c.files[0]!;
      add('cni-config-conflict', 'error', `the runtime uses ${c.confDir}/${first.name} (first by name)${first.error ? ` (${first.error})` : ''}, not podwire's ${c.files[oursAt]!.name}: new pods get another network`, `remove or rename ${c.files.slice(0, oursAt).map((x) => `${c.confDir}/${x.name}`).join(' ')} (the runtime takes the first file in lexical order)`);
    } else if (others.length) add('cni-config-conflict', 'warning', `other CNI configs in ${c.confDir}: ${others.join(', ')} (podwire's ${c.files[0]!.name} comes first and wins)`, `remove ${others.map((n) => `${c.confDir}/${n}`).join(' ')} to avoid surprises if they are renamed`);
  }

  if (f.dns) dnsChecks(f.dns, add);
  if (f.ipvs) ipvsChecks(f.ipvs, add);

  if (f.ipamOrphans.length) {
    const o = f.ipamOrphans;
    add('ipam-leak', 'warning', `${o.length} IP reservation${o.length > 1 ? 's' : ''} without a live container (no netns holds the address): ${o.map((r) => `${r.ip} (${r.containerId.slice(0, 12)})`).join(', ')}`, `the runtime's CNI DEL releases them (crictl rmp); else remove the files: ${o.map((r) => `${r.network}/${r.ip}`).join(' ')} under the IPAM data dir`);
  }
  return out.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}
