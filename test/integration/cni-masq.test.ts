// ipMasq (src/cni/masq.ts) against real nft and real traffic. Every nft command runs inside a pw-
// netns made here (freshNetns deletes it at teardown); the root netns is never touched.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { Transaction } from '../../src/exec/nft/transaction.js';
import { masqAdd, masqCheck, masqDel, masqGc, networkChain, readMasqState, realNft, type MasqSpec } from '../../src/cni/masq.js';
import { spawnInNetns, withNetns } from '../../src/netns/index.js';
import { freshNetns, isRoot, run } from '../lib/netns.js';

/** Whether nft is on PATH (looked up, never run, outside our netns). */
function nftInstalled(): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => existsSync(`${dir}/nft`));
}

const skip = !isRoot ? 'needs root (CAP_NET_ADMIN) and network namespaces: run the tests as root' : !nftInstalled() ? 'nft (nftables) is not installed' : false;

const spec = (ip: string, containerId: string, network = 'podwire', subnet = '10.244.1.0/24'): MasqSpec => ({
  network, subnet, podIp: ip, owner: { containerId, ifname: 'eth0' },
});

const nftText = (ns: string, args: string[]): string => run(ns, 'nft', args);
const nftJson = (ns: string, args: string[]): any => JSON.parse(nftText(ns, ['-j', ...args]));

/** The listing without handles: flush + re-add renumbers rules, but the content must not change. */
function withoutHandles(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutHandles);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'handle').map(([k, x]) => [k, withoutHandles(x)]));
  }
  return v;
}

const countOf = (listing: any, kind: string): number => listing.nftables.filter((i: any) => i[kind]).length;

/** A netns with an unrelated table of someone else's that we must never touch. */
function netnsWithOtherTable(t: Parameters<typeof freshNetns>[0], label: string): { ns: string; other: () => unknown } {
  const ns = freshNetns(t, label);
  run(ns, 'nft', ['add table inet other; add chain inet other c { type filter hook input priority 0; policy accept; }; add rule inet other c tcp dport 22 counter accept; add set inet other s { type ipv4_addr; elements = { 10.244.1.2 } }']);
  return { ns, other: () => nftJson(ns, ['list', 'table', 'inet', 'other']) };
}

t.test('add twice: one element, same ruleset; check passes; the other table is untouched', { skip }, async (t) => {
  const { ns, other } = netnsWithOtherTable(t, 'add');
  const before = other();
  const s = spec('10.244.1.2', 'c0ffee01');
  t.equal(withNetns(ns, () => masqAdd(realNft, s)), networkChain('podwire', '10.244.1.0/24'));
  const first = nftJson(ns, ['list', 'table', 'inet', 'podwire-cni']);
  withNetns(ns, () => masqAdd(realNft, s));
  const second = nftJson(ns, ['list', 'table', 'inet', 'podwire-cni']);
  t.same(withoutHandles(second), withoutHandles(first), 'second ADD changed nothing');
  t.equal(countOf(second, 'rule'), 5, '2 base rules + 3 network-chain rules');
  const state = withNetns(ns, () => readMasqState(realNft));
  t.same(state?.elements.map((e) => [e.ip, e.owner]), [['10.244.1.2', 'c0ffee01/eth0']], 'one element, comment survives nft -j');
  t.equal(withNetns(ns, () => masqCheck(realNft, s)), undefined);
  t.same(other(), before, 'table inet other identical, handles included');
});

t.test('add takes over an IP still mapped to another network; re-add refreshes the owner', { skip }, async (t) => {
  const ns = freshNetns(t, 'move');
  withNetns(ns, () => masqAdd(realNft, spec('10.244.1.2', 'old', 'othernet', '10.244.0.0/16')));
  withNetns(ns, () => masqAdd(realNft, spec('10.244.1.2', 'new')));
  t.equal(withNetns(ns, () => masqCheck(realNft, spec('10.244.1.2', 'new'))), undefined, 'nft refuses a plain add here (EEXIST); the retry replaces it');
  withNetns(ns, () => masqAdd(realNft, spec('10.244.1.2', 'newer')));
  const state = withNetns(ns, () => readMasqState(realNft));
  t.same(state?.elements.map((e) => e.owner), ['newer/eth0'], 'same verdict, new comment');
});

t.test('del: twice OK, table absent OK, only the owner\'s elements, other table untouched', { skip }, async (t) => {
  const { ns, other } = netnsWithOtherTable(t, 'del');
  const before = other();
  t.same(withNetns(ns, () => masqDel(realNft, { containerId: 'c0ffee01', ifname: 'eth0' })), [], 'no table yet');
  t.throws(() => nftText(ns, ['list', 'table', 'inet', 'podwire-cni']), 'DEL did not create the table');
  withNetns(ns, () => {
    masqAdd(realNft, spec('10.244.1.2', 'c0ffee01'));
    masqAdd(realNft, { ...spec('fd00:10:244:1::2', 'c0ffee01'), subnet: 'fd00:10:244:1::/64' });
    masqAdd(realNft, spec('10.244.1.3', 'c0ffee02'));
  });
  const removed = withNetns(ns, () => masqDel(realNft, { containerId: 'c0ffee01', ifname: 'eth0' }));
  t.same(removed.map((e) => e.ip).sort(), ['10.244.1.2', 'fd00:10:244:1::2']);
  t.same(withNetns(ns, () => masqDel(realNft, { containerId: 'c0ffee01', ifname: 'eth0' })), [], 'second DEL: nothing left, no error');
  t.match(withNetns(ns, () => masqCheck(realNft, spec('10.244.1.2', 'c0ffee01'))), /10\.244\.1\.2 has no element in map masq4/);
  t.equal(withNetns(ns, () => masqCheck(realNft, spec('10.244.1.3', 'c0ffee02'))), undefined, 'the other pod keeps its element');
  t.same(other(), before);
});

t.test('gc: removes invalid owners and their orphaned chains only; other table untouched', { skip }, async (t) => {
  const { ns, other } = netnsWithOtherTable(t, 'gc');
  const before = other();
  t.same(withNetns(ns, () => masqGc(realNft, [])), { elements: [], chains: [] }, 'no table: nothing to do');
  withNetns(ns, () => {
    masqAdd(realNft, spec('10.244.1.2', 'keep'));
    masqAdd(realNft, spec('10.244.1.3', 'stale'));
    masqAdd(realNft, spec('10.99.0.5', 'stale2', 'othernet', '10.99.0.0/16'));
  });
  const plan = withNetns(ns, () => masqGc(realNft, [{ containerId: 'keep', ifname: 'eth0' }]));
  t.same(plan.elements.map((e) => e.ip).sort(), ['10.244.1.3', '10.99.0.5']);
  t.same(plan.chains, [networkChain('othernet', '10.99.0.0/16')], 'element deletions and chain deletion in one transaction');
  const state = withNetns(ns, () => readMasqState(realNft));
  t.same(state?.elements.map((e) => e.owner), ['keep/eth0']);
  t.same(state?.chains.sort(), [networkChain('podwire', '10.244.1.0/24'), 'postrouting'].sort());
  t.equal(withNetns(ns, () => masqCheck(realNft, spec('10.244.1.2', 'keep'))), undefined);
  t.same(withNetns(ns, () => masqGc(realNft, ['keep/eth0'])), { elements: [], chains: [] }, 'second GC: nothing to do');
  t.same(other(), before);
});

t.test('real nft errors say what failed and carry nft\'s stderr', { skip }, async (t) => {
  const ns = freshNetns(t, 'err');
  t.throws(() => withNetns(ns, () => realNft.run(new Transaction('podwire-cni').addRule('nochain', { matches: [], action: { kind: 'masquerade' } }))), {
    message: /nft -f - \(transaction on table inet podwire-cni\) failed \(exit 1\): .*No such file or directory/s,
  });
  t.throws(() => withNetns(ns, () => realNft.listJson(['list', 'table', 'inet', 'podwire-cni'])), { code: 'ENOENT' });
});

// ---------------------------------------------------------------------------------------------
// Real traffic: pod → node (forwards, masquerades) → outside, which has no route back to pods.

interface Topology {
  pod: string;
  node: string;
  outside: string;
}

function buildTopology(t: Parameters<typeof freshNetns>[0]): Topology {
  const topo = { pod: freshNetns(t, 'pod'), node: freshNetns(t, 'node'), outside: freshNetns(t, 'out') };
  const { pod, node, outside } = topo;
  run(node, 'ip', ['link', 'add', 'vpod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
  run(node, 'ip', ['link', 'add', 'vout', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
  run(pod, 'ip', ['addr', 'add', '10.244.1.2/24', 'dev', 'eth0']);
  run(pod, 'ip', ['link', 'set', 'eth0', 'up']);
  run(pod, 'ip', ['route', 'add', 'default', 'via', '10.244.1.1']);
  run(node, 'ip', ['addr', 'add', '10.244.1.1/24', 'dev', 'vpod']);
  run(node, 'ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'vout']);
  run(node, 'ip', ['link', 'set', 'vpod', 'up']);
  run(node, 'ip', ['link', 'set', 'vout', 'up']);
  run(node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  run(outside, 'ip', ['addr', 'add', '192.0.2.2/24', 'dev', 'eth0']);
  run(outside, 'ip', ['link', 'set', 'eth0', 'up']);
  return topo;
}

/** A TCP listener in `ns` that answers every connection with the peer address it sees. */
function peerEchoServer(t: { teardown(fn: () => void): void }, ns: string): ChildProcess {
  const child = spawnInNetns(ns, 'socat', ['TCP-LISTEN:8080,bind=192.0.2.2,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR'], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return child;
}

/** Connect from the pod; resolves with what the listener answered, or undefined on failure. */
function connectFromPod(pod: string, timeoutS = 1): Promise<string | undefined> {
  const args = ['netns', 'exec', pod, 'socat', '-T', String(timeoutS), '-u', `TCP:192.0.2.2:8080,connect-timeout=${timeoutS}`, '-'];
  return new Promise((resolve) => {
    execFile('ip', args, { timeout: (timeoutS + 2) * 1000, encoding: 'utf8' }, (err, stdout) => resolve(err ? undefined : stdout.trim()));
  });
}

async function waitListening(ns: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (run(ns, 'ss', ['-Htln', 'sport = :8080']).trim()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('socat listener did not come up in 1 s');
}

t.test('traffic: masqAdd makes pod → outside work with source 192.0.2.1; masqDel stops it', { skip, timeout: 10_000 }, async (t) => {
  const { pod, node, outside } = buildTopology(t);
  peerEchoServer(t, outside);
  await waitListening(outside);
  t.equal(await connectFromPod(pod), undefined, 'before ADD: outside cannot answer 10.244.1.2 (no route back)');
  withNetns(node, () => masqAdd(realNft, spec('10.244.1.2', 'c0ffee01')));
  t.equal(await connectFromPod(pod, 2), '192.0.2.1', 'after ADD: connects, listener sees the node address');
  withNetns(node, () => masqDel(realNft, { containerId: 'c0ffee01', ifname: 'eth0' }));
  t.equal(await connectFromPod(pod), undefined, 'after DEL: fails again');
});
