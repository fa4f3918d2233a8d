// The agent's masquerade (src/agent/masq) against real nft / iptables and real traffic. Every
// nft/iptables command runs inside pw- netns made here (freshNetns deletes them at teardown, pass
// or fail); the root netns is never touched.
//
//   pod (10.244.1.5/24) ── node (10.244.1.1 | 192.0.2.11 | 10.244.2.1) ── outside (192.0.2.200/24,
//                                    │                                     route 10.244.0.0/16 via node)
//                                  peer (10.244.2.7/24: another cluster address, not this node's pods)
//
// Outside can route back to pods, so without masquerade a pod's connection arrives unNATed.
import t, { type Test } from 'tap';
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Masquerade, type MasqMode } from '../../src/agent/masq/masq.js';
import { netnsRunner } from '../../src/exec/runner.js';
import { IPT_CHAIN, NFT_CHAIN, NFT_TABLE, type MasqInput } from '../../src/agent/masq/render.js';
import { spawnInNetns, sysctlSet } from '../../src/netns/index.js';
import { freshNetns, isRoot, run } from '../lib/netns.js';

const installed = (cmd: string): boolean =>
  (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => existsSync(`${dir}/${cmd}`));
const missing = ['nft', 'iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore', 'socat', 'conntrack'].filter((c) => !installed(c));
const skip = !isRoot ? 'needs root (CAP_NET_ADMIN) and network namespaces: run the tests as root' : missing.length ? `not installed: ${missing.join(', ')}` : false;

const INPUT: MasqInput = { clusterCidrs: ['10.244.0.0/16'], podCidr: '10.244.1.0/24' };
const POD = '10.244.1.5';
const PEER = '10.244.2.7';
const OUTSIDE = '192.0.2.200';

interface Topology {
  pod: string;
  node: string;
  outside: string;
  peer: string;
}

function veth(node: string, hostIf: string, hostCidr: string, other: string, otherCidr: string): void {
  run(node, 'ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', other]);
  run(node, 'ip', ['addr', 'add', hostCidr, 'dev', hostIf]);
  run(node, 'ip', ['link', 'set', hostIf, 'up']);
  run(other, 'ip', ['addr', 'add', otherCidr, 'dev', 'eth0']);
  run(other, 'ip', ['link', 'set', 'eth0', 'up']);
}

function buildTopology(t: Test): Topology {
  const topo = { pod: freshNetns(t, 'pod'), node: freshNetns(t, 'node'), outside: freshNetns(t, 'out'), peer: freshNetns(t, 'peer') };
  const { pod, node, outside, peer } = topo;
  veth(node, 'vpod', '10.244.1.1/24', pod, `${POD}/24`);
  veth(node, 'vout', '192.0.2.11/24', outside, `${OUTSIDE}/24`);
  veth(node, 'vpeer', '10.244.2.1/24', peer, `${PEER}/24`);
  run(pod, 'ip', ['route', 'add', 'default', 'via', '10.244.1.1']);
  run(peer, 'ip', ['route', 'add', 'default', 'via', '10.244.2.1']);
  run(outside, 'ip', ['route', 'add', '10.244.0.0/16', 'via', '192.0.2.11']);
  sysctlSet(node, 'net.ipv4.ip_forward', 1);
  return topo;
}

/** Someone else's nftables table and iptables chain, which must survive everything we do. */
function seedForeign(node: string): void {
  run(node, 'nft', ['add table ip other; add chain ip other x { type filter hook forward priority 0; policy accept; }; add rule ip other x ip daddr 198.51.100.0/24 counter drop']);
  run(node, 'iptables', ['-t', 'nat', '-N', 'FOREIGN']);
  run(node, 'iptables', ['-t', 'nat', '-A', 'FOREIGN', '-d', '198.51.100.0/24', '-j', 'RETURN']);
  run(node, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-j', 'FOREIGN']);
}

type Json = Record<string, any>;

const isOurs = (item: Json): boolean => {
  const [kind, body] = Object.entries(item)[0] ?? [];
  if (kind === 'table') return body.family === 'inet' && body.name === NFT_TABLE; // shared: we create it, it stays
  if (kind !== 'chain' && kind !== 'rule') return kind === 'metainfo';
  const chain = kind === 'chain' ? body.name : body.chain;
  if (body.family === 'inet' && body.table === NFT_TABLE) return chain === NFT_CHAIN;
  if (body.table !== 'nat') return false;
  return chain === IPT_CHAIN || (chain === 'POSTROUTING' && JSON.stringify(body.expr ?? []).includes(`"target":"${IPT_CHAIN}"`));
};

/** Counters count the test's own traffic (iptables-nft gives every rule one): not a change. */
function withoutCounterValues(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutCounterValues);
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'counter' ? {} : withoutCounterValues(x)]));
}

/** The whole node ruleset minus our objects (nft and iptables-save views): must never change. */
function foreignRuleset(node: string): { nft: unknown; iptables: string[] } {
  const nft = JSON.parse(run(node, 'nft', ['-j', 'list', 'ruleset'])).nftables.filter((i: Json) => !isOurs(i));
  const saved = (run(node, 'iptables-save', ['-t', 'nat']) + run(node, 'ip6tables-save', ['-t', 'nat'])).split('\n');
  return { nft: withoutCounterValues(nft), iptables: saved.filter((l) => !l.startsWith('#') && !l.includes(IPT_CHAIN)).map((l) => l.replace(/ \[\d+:\d+\]$/, '')) };
}

function ours(node: string): { nft: boolean; iptChain: boolean; jump: boolean } {
  const ruleset = run(node, 'nft', ['list', 'ruleset']);
  const saved = run(node, 'iptables-save', ['-t', 'nat']) + run(node, 'ip6tables-save', ['-t', 'nat']);
  return {
    nft: new RegExp(`chain ${NFT_CHAIN} \\{`).test(ruleset),
    iptChain: saved.includes(`:${IPT_CHAIN} `),
    jump: new RegExp(`^-A POSTROUTING .*-j ${IPT_CHAIN}$`, 'm').test(saved),
  };
}

/** A TCP listener on addr:8080 in `ns` that answers every connection with the peer address it sees. */
function peerEchoServer(t: Test, ns: string, addr: string): ChildProcess {
  const child = spawnInNetns(ns, 'socat', [`TCP-LISTEN:8080,bind=${addr},reuseaddr,fork`, 'SYSTEM:echo $SOCAT_PEERADDR'], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return child;
}

async function waitListening(ns: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (run(ns, 'ss', ['-Htln', 'sport = :8080']).trim()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`socat listener in ${ns} did not come up in 2 s`);
}

/** Connect from `ns` to addr:8080; resolves with the source address the listener saw. */
function seenSource(ns: string, addr: string, timeoutS = 2): Promise<string | undefined> {
  const args = ['netns', 'exec', ns, 'socat', '-T', String(timeoutS), '-u', `TCP:${addr}:8080,connect-timeout=${timeoutS}`, '-'];
  return new Promise((resolve) => {
    execFile('ip', args, { timeout: (timeoutS + 2) * 1000, encoding: 'utf8' }, (err, stdout) => resolve(err ? undefined : stdout.trim()));
  });
}

/** The source address each of the four flows arrives with. */
async function flows(topo: Topology): Promise<Record<string, string | undefined>> {
  return {
    'pod → outside': await seenSource(topo.pod, OUTSIDE),
    'pod → peer pod': await seenSource(topo.pod, PEER),
    'outside → local pod': await seenSource(topo.outside, POD),
    'outside → remote pod': await seenSource(topo.outside, PEER),
  };
}

const UNNATED = { 'pod → outside': POD, 'pod → peer pod': POD, 'outside → local pod': OUTSIDE, 'outside → remote pod': OUTSIDE };
const MASQUERADED = { 'pod → outside': '192.0.2.11', 'pod → peer pod': POD, 'outside → local pod': OUTSIDE, 'outside → remote pod': '10.244.2.1' };
const OTHER: Record<MasqMode, MasqMode> = { nftables: 'iptables', iptables: 'nftables' };

async function setup(t: Test): Promise<{ topo: Topology; baseline: ReturnType<typeof foreignRuleset> }> {
  const topo = buildTopology(t);
  seedForeign(topo.node);
  for (const [ns, addr] of [[topo.outside, OUTSIDE], [topo.peer, PEER], [topo.pod, POD]]) peerEchoServer(t, ns, addr);
  for (const ns of [topo.outside, topo.peer, topo.pod]) await waitListening(ns);
  t.same(await flows(topo), UNNATED, 'before sync: nothing is NATed (outside routes back to pods)');
  const baseline = foreignRuleset(topo.node);
  t.match(JSON.stringify(baseline.nft), /"table":"other".*"chain":"FOREIGN"|"chain":"FOREIGN".*"table":"other"/, 'baseline holds the foreign objects');
  t.ok(baseline.iptables.includes('-A POSTROUTING -j FOREIGN'), 'iptables-save baseline holds the foreign jump');
  return { topo, baseline };
}

for (const mode of ['nftables', 'iptables'] as const) {
  t.test(`${mode}: masquerade like flannel; resync no-op; switch to ${OTHER[mode]}; remove`, { skip, timeout: 60_000 }, async (t) => {
    const { topo, baseline } = await setup(t);
    const runner = netnsRunner(topo.node);
    const masq = new Masquerade(runner, mode);
    t.equal(masq.sync(INPUT), true, 'first sync writes');
    t.same(ours(topo.node), { nft: mode === 'nftables', iptChain: mode === 'iptables', jump: mode === 'iptables' });
    t.same(await flows(topo), MASQUERADED, 'pod → outside from 192.0.2.11; cluster ↔ cluster and outside → local pod unNATed');
    t.same(foreignRuleset(topo.node), baseline, 'only our chain changed: foreign table and chain intact after sync');

    const observed = masq.observe();
    t.equal(masq.sync(INPUT), false, 'resync: nothing changed, nothing written');
    t.same(masq.observe(), observed, 'resync left our chain as it was');
    t.same(foreignRuleset(topo.node), baseline, 'foreign intact after resync');

    const other = new Masquerade(runner, OTHER[mode]);
    t.equal(other.sync(INPUT), true);
    const expectOther = { nft: mode === 'iptables', iptChain: mode === 'nftables', jump: mode === 'nftables' };
    t.same(ours(topo.node), expectOther, `switch to ${OTHER[mode]}: the ${mode} rules are gone`);
    t.same(await flows(topo), MASQUERADED, `${OTHER[mode]} masquerades the same way`);
    t.same(foreignRuleset(topo.node), baseline, 'foreign intact after the mode switch');

    t.equal(other.remove(), true);
    t.equal(other.remove(), false, 'second remove: nothing left');
    t.same(ours(topo.node), { nft: false, iptChain: false, jump: false }, 'remove: no chain, no jump');
    t.match(run(topo.node, 'nft', ['list', 'tables']), /table inet podwire/, 'the shared table stays');
    t.same(foreignRuleset(topo.node), baseline, 'foreign intact after remove');
    t.same(await flows(topo), UNNATED, 'after remove: nothing is NATed');
  });
}

t.test('nftables: our chain with another priority is recreated, drift is repaired', { skip, timeout: 20_000 }, async (t) => {
  const node = freshNetns(t, 'node');
  const list = () => run(node, 'nft', ['list', 'chain', 'inet', NFT_TABLE, NFT_CHAIN]);
  run(node, 'nft', [`add table inet ${NFT_TABLE}; add chain inet ${NFT_TABLE} ${NFT_CHAIN} { type nat hook postrouting priority srcnat + 20; }`]);
  const masq = new Masquerade(netnsRunner(node), 'nftables');
  t.equal(masq.sync(INPUT), true);
  t.match(list(), /priority srcnat \+ 10;/);
  t.equal(list().match(/comment "podwire: /g)?.length, 4, 'four commented rules');
  run(node, 'nft', ['flush', 'chain', 'inet', NFT_TABLE, NFT_CHAIN]);
  t.equal(masq.sync(INPUT), true, 'flushed by someone: rewritten');
  t.equal(list().match(/comment "podwire: /g)?.length, 4);
  t.equal(masq.sync(INPUT), false);
});

t.test('nftables, VXLAN port: its outer packets are not tracked (sent and received), other UDP is; dropped with the port', { skip, timeout: 30_000 }, async (t) => {
  const { node, outside } = buildTopology(t);
  const masq = new Masquerade(netnsRunner(node), 'nftables');
  t.equal(masq.sync({ ...INPUT, vxlanPort: 8472 }), true);
  t.equal(masq.sync({ ...INPUT, vxlanPort: 8472 }), false, 'resync: no write');
  const tracked = (port: number) => run(node, 'conntrack', ['-L', '-p', 'udp', '--dport', String(port)]).split('\n').filter((l) => l.startsWith('udp')).length;
  const send = (ns: string, to: string, port: number) => run(ns, 'socat', ['-u', '-', `UDP:${to}:${port}`], 'x\n');
  const traffic = () => {
    for (const port of [8472, 9999]) {
      send(outside, '192.0.2.11', port); // received by the node
      send(node, OUTSIDE, port); // sent by the node
    }
  };
  traffic();
  t.equal(tracked(8472), 0, 'UDP to 8472, both directions: no conntrack entry');
  t.equal(tracked(9999), 2, 'UDP to 9999: tracked as usual (one entry per direction)');
  t.match(run(node, 'nft', ['list', 'chain', 'inet', NFT_TABLE, 'overlay-notrack-in']), /type filter hook prerouting priority raw; policy accept;\n\s+udp dport 8472 notrack/);
  t.equal(masq.sync(INPUT), true, 'no VXLAN port any more');
  run(node, 'conntrack', ['-F']);
  traffic();
  t.equal(tracked(8472), 2, 'notrack chains gone: 8472 is tracked again');
  t.notMatch(run(node, 'nft', ['list', 'table', 'inet', NFT_TABLE]), /notrack/);
});

t.test('iptables: dual-stack writes both families; dropping IPv6 removes the ip6tables chain', { skip, timeout: 20_000 }, async (t) => {
  const node = freshNetns(t, 'node');
  const masq = new Masquerade(netnsRunner(node), 'iptables');
  const dual = { clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'], podCidr: '10.244.1.0/24', podCidrs: ['fd00:10:244:1::/64'] };
  t.equal(masq.sync(dual), true);
  t.equal(masq.sync(dual), false);
  const v6 = () => run(node, 'ip6tables-save', ['-t', 'nat']);
  t.match(v6(), /-A PODWIRE-POSTRTG ! -s fd00:10:244::\/56 -d fd00:10:244:1::\/64 -m comment --comment "podwire: outside to local pods, no NAT" -j RETURN/);
  t.equal(v6().match(/-j PODWIRE-POSTRTG$/gm)?.length, 1, 'one jump');
  t.equal(masq.sync(INPUT), true);
  t.notMatch(v6(), /PODWIRE-POSTRTG/, 'IPv6 chain and jump removed');
  t.equal(masq.observe().iptables[4]?.chain?.length, 4);
});
