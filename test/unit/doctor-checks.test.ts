// `podwire doctor`'s node checks, pure (src/agent/debug/doctor-checks.ts): a healthy node's facts
// give no finding; each case breaks one fact and must give exactly its check id, with a fix.
import t from 'tap';
import { doctorChecks, type DoctorFacts, type IpvsFacts } from '../../src/agent/debug/doctor-checks.js';

function healthy(): DoctorFacts {
  return {
    node: 'node1',
    podCidr: '10.244.1.0/24',
    sysctls: {
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.rp_filter': '0',
      'net.ipv4.conf.cni0.rp_filter': '2',
      'net.ipv4.conf.podwire.1.rp_filter': '0',
      'net.ipv4.conf.eth0.rp_filter': '0',
      'net.bridge.bridge-nf-call-iptables': '1',
      'net.bridge.bridge-nf-call-ip6tables': '1',
    },
    desired: { bridge: 'cni0', gatewayCidr: '10.244.1.1/24', podMtu: 1450, vxlan: { name: 'podwire.1', mtu: 1450 }, underlay: { ifname: 'eth0', mtu: 1500 } },
    links: [{ name: 'cni0', mtu: 1450, kind: 'bridge' }, { name: 'podwire.1', mtu: 1450, kind: 'vxlan' }, { name: 'eth0', mtu: 1500, kind: 'veth' }],
    bridgePorts: [{ name: 'veth1234', mtu: 1450, kind: 'veth' }],
    bridgeAddrs: ['10.244.1.1/24'],
    outOfSync: [],
    nft: { tableFamily: 'inet', table: 'podwire', tablePresent: true, missingChains: [] },
    cni: { confDir: '/etc/cni/net.d', files: [{ name: '10-podwire.conflist', ours: true }] },
    ipamOrphans: [],
    dns: { clusterDns: '10.96.0.10', gateway: '10.244.1.1', synced: true, listening: ['10.96.0.10:53', '10.244.1.1:53'], upstreams: ['192.0.2.53:53'], loops: [], fallbackDown: [], tablePresent: true },
  };
}

const IPVS_OK: IpvsFacts = {
  loaded: true, device: true, synced: true,
  sysctls: [['net.ipv4.vs.conntrack', '1'], ['net.ipv4.vs.expire_nodest_conn', '1'], ['net.ipv4.vs.expire_quiescent_template', '1'], ['net.ipv4.conf.all.arp_ignore', '1'], ['net.ipv4.conf.all.arp_announce', '2']].map(([key, v]) => ({ key: key!, want: v!, have: v! })),
};
const ipvsWith = (f: DoctorFacts, change: (i: IpvsFacts) => void) => {
  const i = structuredClone(IPVS_OK);
  change(i);
  f.ipvs = i;
};

t.same(doctorChecks(healthy()), [], 'a healthy node: no finding');
t.same(doctorChecks({ ...healthy(), ipvs: structuredClone(IPVS_OK) }), [], 'a healthy node in ipvs mode: no finding');
t.same(doctorChecks({ ...healthy(), dns: undefined }), [], '--dns off: no DNS finding');
t.same(doctorChecks({ ...healthy(), cni: { confDir: '/x', files: [] }, nft: undefined }).map((f) => f.severity), ['warning'], 'no CNI config (a runtime reading elsewhere) is only a warning; no nft facts (iptables masquerade) no finding');

type Case = { name: string; check: string; severity: 'error' | 'warning'; change: (f: DoctorFacts) => void; message: RegExp; fix: RegExp };
const cases: Case[] = [
  { name: 'forwarding off', check: 'ip-forward', severity: 'error', change: (f) => { f.sysctls['net.ipv4.ip_forward'] = '0'; }, message: /ip_forward is 0/, fix: /sysctl -w net\.ipv4\.ip_forward=1/ },
  { name: 'forwarding unreadable', check: 'ip-forward', severity: 'error', change: (f) => { delete f.sysctls['net.ipv4.ip_forward']; }, message: /unreadable/, fix: /restart podwire-agent/ },
  { name: 'strict rp_filter on all', check: 'rp-filter', severity: 'warning', change: (f) => { f.sysctls['net.ipv4.conf.all.rp_filter'] = '1'; }, message: /rp_filter=1\) on podwire\.1, eth0:/, fix: /rp_filter=2/ },
  { name: 'strict rp_filter on the bridge only', check: 'rp-filter', severity: 'warning', change: (f) => { f.sysctls['net.ipv4.conf.cni0.rp_filter'] = '1'; }, message: /on cni0:/, fix: /loose/ },
  { name: 'bridge-nf-call-iptables off', check: 'br-netfilter', severity: 'error', change: (f) => { f.sysctls['net.bridge.bridge-nf-call-iptables'] = '0'; }, message: /bridge-nf-call-iptables=0: replies bridged on cni0 skip conntrack/, fix: /sysctl -w net\.bridge\.bridge-nf-call-iptables=1/ },
  { name: 'br_netfilter not loaded', check: 'br-netfilter', severity: 'error', change: (f) => { delete f.sysctls['net.bridge.bridge-nf-call-iptables']; delete f.sysctls['net.bridge.bridge-nf-call-ip6tables']; }, message: /bridge-nf-call-iptables=missing \(br_netfilter not loaded\)/, fix: /modprobe br_netfilter/ },
  { name: 'bridge MTU', check: 'mtu', severity: 'error', change: (f) => { f.links[0]!.mtu = 1500; }, message: /cni0 mtu 1500, want the pod MTU 1450/, fix: /restart podwire-agent/ },
  { name: 'VXLAN bigger than underlay allows', check: 'mtu', severity: 'error', change: (f) => { f.links[2]!.mtu = 1400; }, message: /podwire\.1 mtu 1450 > underlay eth0 mtu 1400/, fix: /restart/ },
  { name: 'pod veth bigger than the pod MTU', check: 'mtu', severity: 'error', change: (f) => { f.bridgePorts[0]!.mtu = 9000; }, message: /veth1234 mtu 9000 > the pod MTU 1450/, fix: /re-create/ },
  { name: 'a peer route missing', check: 'route-missing', severity: 'error', change: (f) => { f.outOfSync = ['route replace 10.244.2.0/24 via 10.244.2.0 dev podwire.1 onlink']; }, message: /10\.244\.2\.0\/24/, fix: /ip route replace 10\.244\.2\.0\/24/ },
  { name: 'the plan could not be compared', check: 'route-missing', severity: 'warning', change: (f) => { delete f.outOfSync; f.outOfSyncError = 'netlink: EPERM'; }, message: /EPERM/, fix: /agent log/ },
  { name: 'a stale neighbour', check: 'neigh-stale', severity: 'error', change: (f) => { f.outOfSync = ['neigh replace 10.244.2.0 lladdr 02:00:00:00:00:02 dev podwire.1 nud permanent']; }, message: /neighbour/, fix: /ip neigh replace/ },
  { name: 'a stale FDB entry', check: 'fdb-stale', severity: 'error', change: (f) => { f.outOfSync = ['fdb del 02:00:00:00:00:09 dev podwire.1 dst 192.0.2.99']; }, message: /FDB/, fix: /bridge fdb del/ },
  { name: 'our table gone', check: 'nft-table-missing', severity: 'error', change: (f) => { f.nft = { ...f.nft!, tablePresent: false, missingChains: ['pod-masquerade'] }; }, message: /table inet podwire is gone/, fix: /restart podwire-agent/ },
  { name: 'a chain of ours gone', check: 'nft-table-missing', severity: 'error', change: (f) => { f.nft = { ...f.nft!, missingChains: ['svc-services'] }; }, message: /lacks chain svc-services/, fix: /nft monitor/ },
  { name: 'nft not runnable', check: 'nft-table-missing', severity: 'warning', change: (f) => { f.nft = { ...f.nft!, tablePresent: false, error: 'nft is not installed' }; }, message: /not installed/, fix: /nft/ },
  { name: 'bridge without the gateway', check: 'podcidr-mismatch', severity: 'error', change: (f) => { f.bridgeAddrs = ['10.244.7.1/24']; }, message: /cni0 has 10\.244\.7\.1\/24, not the gateway 10\.244\.1\.1\/24/, fix: /ip addr add 10\.244\.1\.1\/24 dev cni0/ },
  { name: 'bridge with an extra address', check: 'podcidr-mismatch', severity: 'warning', change: (f) => { f.bridgeAddrs.push('10.244.7.1/24'); }, message: /also has 10\.244\.7\.1\/24/, fix: /ip addr del 10\.244\.7\.1\/24 dev cni0/ },
  { name: 'a foreign config first', check: 'cni-config-conflict', severity: 'error', change: (f) => { f.cni.files.unshift({ name: '05-bridge.conflist', ours: false }); }, message: /uses \/etc\/cni\/net\.d\/05-bridge\.conflist \(first by name\), not podwire's 10-podwire\.conflist/, fix: /remove or rename \/etc\/cni\/net\.d\/05-bridge\.conflist/ },
  { name: 'a foreign config after ours', check: 'cni-config-conflict', severity: 'warning', change: (f) => { f.cni.files.push({ name: '99-other.conf', ours: false }); }, message: /other CNI configs.*99-other\.conf/, fix: /remove \/etc\/cni\/net\.d\/99-other\.conf/ },
  { name: 'only foreign configs', check: 'cni-config-conflict', severity: 'warning', change: (f) => { f.cni.files = [{ name: '87-podman-bridge.conflist', ours: false }]; }, message: /no podwire config in \/etc\/cni\/net\.d, only 87-podman-bridge\.conflist/, fix: /--install-cni/ },
  { name: 'an unreadable conf dir', check: 'cni-config-conflict', severity: 'error', change: (f) => { f.cni.error = 'EACCES'; }, message: /EACCES/, fix: /--cni-conf-dir/ },
  { name: 'a leaked reservation', check: 'ipam-leak', severity: 'warning', change: (f) => { f.ipamOrphans = [{ network: 'podwire', ip: '10.244.1.9', containerId: 'abcdef0123456789', ifname: 'eth0' }]; }, message: /1 IP reservation without a live container.*10\.244\.1\.9 \(abcdef012345\)/, fix: /podwire\/10\.244\.1\.9/ },
  { name: 'DNS not listed yet', check: 'dns-not-serving', severity: 'error', change: (f) => { f.dns = { ...f.dns!, synced: false, listening: [] }; }, message: /has not listed Services and Endpoints yet/, fix: /podwire status/ },
  { name: 'DNS port 53 taken', check: 'dns-not-serving', severity: 'error', change: (f) => { f.dns = { ...f.dns!, listening: ['10.244.1.1:53'], error: 'listen EADDRINUSE: address already in use 10.96.0.10:53' }; }, message: /does not listen on 10\.96\.0\.10:53: listen EADDRINUSE.*answered by other nodes/, fix: /ss -lunp/ },
  { name: 'DNS gateway listener missing', check: 'dns-not-serving', severity: 'error', change: (f) => { f.dns = { ...f.dns!, listening: ['10.96.0.10:53'] }; }, message: /10\.244\.1\.1:53.*other nodes cannot fall back/, fix: /retries every 2 s/ },
  { name: 'DNS table gone', check: 'dns-rules-missing', severity: 'error', change: (f) => { f.dns = { ...f.dns!, tablePresent: false }; }, message: /table inet podwire-dns is gone/, fix: /restart podwire-agent/ },
  { name: 'DNS table not checkable', check: 'dns-rules-missing', severity: 'warning', change: (f) => { f.dns = { ...f.dns!, tablePresent: undefined, tableError: 'nft: not found' }; }, message: /nft: not found/, fix: /nft/ },
  { name: 'DNS upstream loop', check: 'dns-upstream-loop', severity: 'warning', change: (f) => { f.dns = { ...f.dns!, loops: ['upstream 127.0.0.53:53 sent our loop probe x.loop-probe.podwire.invalid back to this server'] }; }, message: /127\.0\.0\.53:53/, fix: /--dns-upstream/ },
  { name: 'DNS fallback server down', check: 'dns-fallback-down', severity: 'warning', change: (f) => { f.dns = { ...f.dns!, fallbackDown: ['10.244.2.1'] }; }, message: /10\.244\.2\.1; when this node's server is down/, fix: /podwire explain/ },
  { name: 'IPVS not loaded', check: 'ipvs-missing', severity: 'error', change: (f) => ipvsWith(f, (i) => { i.loaded = false; }), message: /IPVS is not loaded.*no \/proc\/net\/ip_vs/, fix: /modprobe ip_vs.*--proxy-mode nftables/ },
  { name: 'IPVS dummy device gone', check: 'ipvs-missing', severity: 'error', change: (f) => ipvsWith(f, (i) => { i.device = false; }), message: /podwire-ipvs0 is gone/, fix: /restart podwire-agent/ },
  { name: 'IPVS conntrack off', check: 'ipvs-sysctl', severity: 'error', change: (f) => ipvsWith(f, (i) => { i.sysctls[0]!.have = '0'; }), message: /net\.ipv4\.vs\.conntrack is 0, not 1: .*masqueraded/, fix: /sysctl -w net\.ipv4\.vs\.conntrack=1/ },
  { name: 'IPVS other sysctls', check: 'ipvs-sysctl', severity: 'warning', change: (f) => ipvsWith(f, (i) => { i.sysctls[1]!.have = '0'; i.sysctls[3]!.have = undefined; }), message: /expire_nodest_conn=0 \(want 1\), net\.ipv4\.conf\.all\.arp_ignore=unreadable \(want 1\)/, fix: /sysctl -w net\.ipv4\.vs\.expire_nodest_conn=1 net\.ipv4\.conf\.all\.arp_ignore=1/ },
  { name: 'DNS without upstream', check: 'dns-no-upstream', severity: 'warning', change: (f) => { f.dns = { ...f.dns!, upstreams: [] }; }, message: /SERVFAIL/, fix: /--dns-upstream/ },
];

for (const c of cases) {
  const f = healthy();
  c.change(f);
  const got = doctorChecks(f);
  t.equal(got.length, 1, `${c.name}: one finding (${got.map((g) => g.check).join(', ')})`);
  t.equal(got[0]?.check, c.check, `${c.name}: check id`);
  t.equal(got[0]?.severity, c.severity, `${c.name}: severity`);
  t.equal(got[0]?.node, 'node1', `${c.name}: node`);
  t.match(got[0]?.message ?? '', c.message, `${c.name}: message`);
  t.match(got[0]?.fix ?? '', c.fix, `${c.name}: fix`);
}

t.test('several findings: errors first', async (t) => {
  const f = healthy();
  f.sysctls['net.ipv4.conf.all.rp_filter'] = '1';
  f.sysctls['net.ipv4.ip_forward'] = '0';
  f.outOfSync = ['route replace 10.244.2.0/24 via 10.244.2.0 dev podwire.1 onlink', 'fdb append 02:00:00:00:00:02 dev podwire.1 dst 192.0.2.12'];
  t.same(doctorChecks(f).map((x) => `${x.severity} ${x.check}`), ['error ip-forward', 'error route-missing', 'error fdb-stale', 'warning rp-filter']);
});

t.test('before registration: only what needs no plan', async (t) => {
  const f = healthy();
  delete f.desired;
  delete f.podCidr;
  delete f.outOfSync;
  t.same(doctorChecks(f), []);
});
