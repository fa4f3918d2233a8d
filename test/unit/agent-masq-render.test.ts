// The agent's masquerade (src/agent/masq): golden nft / iptables-restore scripts, validation, and
// the sync/remove/mode-switch flows against the fake runner. UPDATE_GOLDEN=1 rewrites the goldens.
import t from 'tap';
import { matchesGolden } from '../lib/fixtures.js';
import {
  IPT_JUMP_RULE, planFamilies, renderIptablesMasq, renderIptablesMasqRemove, renderNftMasq, renderNftMasqRemove, type MasqInput,
} from '../../src/agent/masq/render.js';
import { Masquerade, parseIptablesSave } from '../../src/agent/masq/masq.js';
import { FakeRunner } from '../../src/agent/masq/fake-runner.js';

const IPV4: MasqInput = { clusterCidrs: ['10.244.0.0/16'], podCidr: '10.244.1.0/24' };
const DUAL: MasqInput = {
  clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'], podCidr: '10.244.1.0/24', podCidrs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
};

const VXLAN: MasqInput = { ...IPV4, vxlanPort: 8472 };

t.test('nftables goldens: IPv4, dual-stack, VXLAN notrack, removal', async (t) => {
  matchesGolden(t, 'agent-masq-ipv4.nft', renderNftMasq(IPV4));
  matchesGolden(t, 'agent-masq-vxlan.nft', renderNftMasq(VXLAN));
  matchesGolden(t, 'agent-masq-dual.nft', renderNftMasq(DUAL));
  matchesGolden(t, 'agent-masq-remove.nft', renderNftMasqRemove());
  const script = renderNftMasq(DUAL);
  t.notMatch(script, /flush table|delete table|delete chain inet podwire pod-masquerade/, 'never flushes or deletes the shared table, nor deletes the masquerade chain');
  t.match(script, /^delete chain inet podwire overlay-notrack-in\n/m, 'no VXLAN port: the notrack chains are removed');
  const vxlan = renderNftMasq(VXLAN);
  t.notMatch(vxlan, /delete chain/, 'with a VXLAN port nothing is deleted');
  for (const [chain, hook] of [['overlay-notrack-in', 'prerouting'], ['overlay-notrack-out', 'output']]) {
    t.match(vxlan, `add chain inet podwire ${chain} { type filter hook ${hook} priority raw; }\nflush chain inet podwire ${chain}\nadd rule inet podwire ${chain} meta l4proto udp th dport 8472 notrack`, `${chain}: raw priority at ${hook}, only UDP to the VXLAN port`);
  }
  t.equal(vxlan.split('\n').filter((l) => l.startsWith('add rule')).length, 6, 'four masquerade rules, two notrack rules');
  t.match(script, /^add table inet podwire\nadd chain inet podwire pod-masquerade \{ type nat hook postrouting priority srcnat \+ 10; \}\nflush chain inet podwire pod-masquerade\n/);
  t.equal(script.split('\n').filter((l) => l.startsWith('add rule')).length, 8, 'four rules per family');
  const body = (x: string) => x.slice('add table inet podwire\n'.length);
  t.equal(renderNftMasq(VXLAN, { recreate: true }), 'add table inet podwire\n' + renderNftMasqRemove() + body(vxlan),
    'recreate: delete our chains first, in the same transaction');
  t.equal(renderNftMasq(IPV4, { recreate: true }), 'add table inet podwire\n' + renderNftMasqRemove() + body(renderNftMasq(IPV4)).replace(/^(add|flush|delete) chain inet podwire overlay-notrack-.*\n/gm, ''),
    'recreate without VXLAN: our chains deleted once, the masquerade chain added back');
});

t.test('iptables goldens: IPv4, dual-stack IPv6 part, removal', async (t) => {
  matchesGolden(t, 'agent-masq-ipv4.iptables', renderIptablesMasq(IPV4, 4, { jumpMissing: true })!);
  matchesGolden(t, 'agent-masq-dual-v6.iptables', renderIptablesMasq(DUAL, 6, { jumpMissing: true })!);
  matchesGolden(t, 'agent-masq-remove.iptables', renderIptablesMasqRemove([IPT_JUMP_RULE]));
  t.equal(renderIptablesMasq(DUAL, 4, { jumpMissing: true }), renderIptablesMasq(IPV4, 4, { jumpMissing: true }), 'IPv4 part of dual-stack = IPv4 only');
  t.equal(renderIptablesMasq(IPV4, 6, { jumpMissing: true }), undefined, 'no IPv6 CIDR: no ip6tables script');
  const withJump = renderIptablesMasq(IPV4, 4, { jumpMissing: true })!;
  t.equal(renderIptablesMasq(IPV4, 4, { jumpMissing: false }), withJump.replace(IPT_JUMP_RULE + '\n', ''), 'jump only when missing');
  t.notMatch(withJump, /^:(PREROUTING|INPUT|OUTPUT|POSTROUTING) /m, 'never declares (so never flushes) a built-in chain');
  t.equal(renderIptablesMasqRemove([]), '*nat\n:PODWIRE-POSTRTG - [0:0]\n-X PODWIRE-POSTRTG\nCOMMIT\n');
  t.throws(() => renderIptablesMasqRemove(['-A FOREIGN -j PODWIRE-POSTRTG']), /not a POSTROUTING rule/);
});

t.test('validation and canonical CIDRs', async (t) => {
  t.same(planFamilies({ clusterCidrs: ['10.244.7.9/16'], podCidr: '10.244.1.5/24' }), [{ family: 4, clusterCidr: '10.244.0.0/16', podCidr: '10.244.1.0/24' }], 'host bits cleared');
  t.same(planFamilies(DUAL).map((f) => f.family), [4, 6]);
  t.same(planFamilies({ ...DUAL, clusterCidrs: [...DUAL.clusterCidrs].reverse() }), planFamilies(DUAL), 'IPv4 first whatever the order');
  const bad: [MasqInput, RegExp][] = [
    [{ clusterCidrs: [], podCidr: '10.244.1.0/24' }, /non-empty array/],
    [{ clusterCidrs: ['10.244.0.0/16', '10.245.0.0/16'], podCidr: '10.244.1.0/24' }, /at most one IPv4 cluster CIDR/],
    [{ clusterCidrs: ['10.244.0.0/16'], podCidr: '10.99.1.0/24' }, /not inside cluster CIDR 10\.244\.0\.0\/16/],
    [{ clusterCidrs: ['10.244.0.0/24'], podCidr: '10.244.0.0/16' }, /not inside/],
    [{ clusterCidrs: ['10.244.0.0/16'], podCidr: 'fd00::/64' }, /has no IPv6 cluster CIDR/],
    [{ clusterCidrs: DUAL.clusterCidrs, podCidr: '10.244.1.0/24' }, /needs an IPv6 pod CIDR/],
    [{ clusterCidrs: ['10.244.0.0'], podCidr: '10.244.1.0/24' }, /cluster CIDR: invalid CIDR/],
    [{ clusterCidrs: ['10.244.0.0/16'], podCidr: '10.244.1.0/24"; flush ruleset' }, /pod CIDR: invalid/],
    [{ ...IPV4, vxlanPort: 0 }, /vxlanPort must be an integer port 1-65535, got 0/],
    [{ ...IPV4, vxlanPort: '8472; flush ruleset' as unknown as number }, /vxlanPort must be an integer port/],
  ];
  for (const [input, message] of bad) t.throws(() => renderNftMasq(input), { code: 'EINVAL', message }, message.source);
});

t.test('parseIptablesSave: our chain, our jumps, nothing else', async (t) => {
  const saved = `# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:POSTROUTING ACCEPT [3:180]
:FOREIGN - [0:0]
:PODWIRE-POSTRTG - [0:0]
-A POSTROUTING -j FOREIGN
-A POSTROUTING -m comment --comment "podwire: pod masquerade" -j PODWIRE-POSTRTG
-A POSTROUTING -j PODWIRE-POSTRTG-X
-A FOREIGN -d 198.51.100.0/24 -j RETURN
-A PODWIRE-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN
COMMIT
`;
  t.same(parseIptablesSave(saved), {
    chain: ['-A PODWIRE-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN'],
    jumps: ['-A POSTROUTING -m comment --comment "podwire: pod masquerade" -j PODWIRE-POSTRTG'],
  });
  t.same(parseIptablesSave('*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n'), { chain: undefined, jumps: [] });
  t.same(parseIptablesSave('*nat\n:PODWIRE-POSTRTG - [0:0]\nCOMMIT\n'), { chain: [], jumps: [] }, 'empty chain exists');
});

t.test('fake, nftables: sync twice → one write; change → write; drift → write; wrong hook → recreate', async (t) => {
  const fake = new FakeRunner();
  const masq = new Masquerade(fake, 'nftables');
  t.equal(masq.sync(IPV4), true);
  t.equal(masq.sync(IPV4), false);
  t.same(fake.writes().map((w) => w.input), [renderNftMasq(IPV4)], 'one transaction, the golden script');
  t.same(fake.calls.filter((c) => c.cmd.endsWith('-restore')), [], 'the other mode had nothing to remove: no iptables write');
  t.equal(masq.sync(DUAL), true, 'new input');
  t.equal(fake.nftChain?.length, 8);
  fake.nftChain = []; // someone flushed our chain
  t.equal(masq.sync(DUAL), true, 'drift repaired');
  t.equal(fake.nftChain?.length, 8);
  t.equal(masq.sync(DUAL), false);
  fake.nftChainSpec = 'type nat hook postrouting priority srcnat + 20;';
  t.equal(masq.sync(DUAL), true);
  t.equal(fake.writes().at(-1)?.input, renderNftMasq(DUAL, { recreate: true }), 'wrong priority: delete + add in one transaction');
  t.equal(fake.nftChainSpec, 'type nat hook postrouting priority srcnat + 10;');
  t.equal(new Masquerade(fake, 'nftables').sync(DUAL), true, 'a new instance (agent restart) writes once');
});

t.test('fake, nftables: VXLAN notrack chains follow the input; drift and a wrong priority are repaired; remove takes all', async (t) => {
  const fake = new FakeRunner();
  const masq = new Masquerade(fake, 'nftables');
  t.equal(masq.sync(VXLAN), true);
  t.same([...fake.nftChains.keys()], ['pod-masquerade', 'overlay-notrack-in', 'overlay-notrack-out']);
  t.same(fake.nftChains.get('overlay-notrack-out'), { rules: ['meta l4proto udp th dport 8472 notrack comment "podwire: VXLAN outer packets, not tracked"'], spec: 'type filter hook output priority raw;' });
  t.equal(masq.sync(VXLAN), false, 'in sync: no write');
  t.same(fake.calls.slice(-3).map((c) => c.args.at(-1)), ['pod-masquerade', 'overlay-notrack-in', 'overlay-notrack-out'], 'a sync lists each of our chains');
  fake.nftChains.get('overlay-notrack-in')!.rules = [];
  t.equal(masq.sync(VXLAN), true, 'a flushed notrack chain is drift');
  t.equal(fake.nftChains.get('overlay-notrack-in')!.rules.length, 1);
  fake.nftChains.get('overlay-notrack-in')!.spec = 'type filter hook prerouting priority raw + 5;';
  t.equal(masq.sync(VXLAN), true);
  t.equal(fake.writes().at(-1)?.input, renderNftMasq(VXLAN, { recreate: true }), 'a notrack chain with another priority: all recreated in one transaction');
  t.equal(fake.nftChains.get('overlay-notrack-in')!.spec, 'type filter hook prerouting priority raw;');
  t.equal(masq.sync(IPV4), true, 'no VXLAN device any more (host-gw)');
  t.same([...fake.nftChains.keys()], ['pod-masquerade'], 'notrack chains removed');
  t.equal(masq.sync(IPV4), false);
  masq.sync(VXLAN);
  t.equal(masq.remove(), true);
  t.same(fake.nftChains.size, 0, 'remove: none of our chains left');
  t.equal(fake.nftTable, true, 'the shared table stays');
  fake.nftChains.set('overlay-notrack-out', { rules: [], spec: 'type filter hook output priority raw;' });
  t.equal(masq.remove(), true, 'a notrack chain alone is still ours to remove');
  t.same(fake.nftChains.size, 0);
});

t.test('fake, iptables: sync twice → one write per family; jump only once; drift repaired', async (t) => {
  const fake = new FakeRunner();
  const masq = new Masquerade(fake, 'iptables');
  t.equal(masq.sync(DUAL), true);
  t.equal(masq.sync(DUAL), false);
  t.same(fake.writes().map((w) => w.cmd), ['iptables-restore', 'ip6tables-restore']);
  t.same(fake.writes().map((w) => w.args), [['--noflush', '-w', '5'], ['--noflush', '-w', '5']]);
  t.equal(fake.writes()[0].input, renderIptablesMasq(DUAL, 4, { jumpMissing: true }));
  t.same(fake.ipt.iptables.postrouting, [IPT_JUMP_RULE]);
  fake.ipt.iptables.postrouting = []; // someone deleted our jump
  t.equal(masq.sync(DUAL), true);
  t.same(fake.ipt.iptables.postrouting, [IPT_JUMP_RULE], 'jump back, once');
  t.equal(fake.writes().at(-1)?.cmd, 'iptables-restore', 'only the drifted family was written');
  t.equal(masq.sync(DUAL), false);
  t.equal(new Masquerade(fake, 'iptables').sync(DUAL), true, 'restart: writes once...');
  t.same(fake.ipt.iptables.postrouting, [IPT_JUMP_RULE], '...without a second jump');
  t.equal(masq.sync(IPV4), true, 'IPv6 dropped from the config');
  t.equal(fake.ipt.ip6tables.chain, undefined, 'IPv6 chain removed');
  t.same(fake.ipt.ip6tables.postrouting, []);
  t.equal(fake.ipt.iptables.chain?.length, 4);
});

t.test('fake: mode switch removes the other mode; remove twice; missing binaries', async (t) => {
  const fake = new FakeRunner();
  new Masquerade(fake, 'nftables').sync(DUAL);
  const ipt = new Masquerade(fake, 'iptables');
  ipt.sync(DUAL);
  t.equal(fake.nftChain, undefined, 'nftables → iptables: no inet podwire pod-masquerade chain');
  t.equal(fake.nftTable, true, 'the shared table stays');
  t.equal(fake.ipt.iptables.chain?.length, 4);
  const nft = new Masquerade(fake, 'nftables');
  nft.sync(DUAL);
  t.same([fake.ipt.iptables, fake.ipt.ip6tables], [{ chain: undefined, postrouting: [] }, { chain: undefined, postrouting: [] }], 'iptables → nftables: no chain, no jump');
  t.equal(fake.nftChain?.length, 8);
  t.equal(nft.remove(), true);
  t.equal(nft.remove(), false, 'second remove: nothing to do');
  t.equal(fake.nftChain, undefined);
  t.equal(ipt.remove(), false, 'iptables remove with nothing installed: no write');

  const bare = new FakeRunner();
  t.equal(new Masquerade(bare, 'nftables').remove(), false);
  t.equal(bare.nftTable, false, 'remove never creates the table');
  bare.missing.add('iptables-save').add('ip6tables-save');
  t.equal(new Masquerade(bare, 'nftables').sync(IPV4), true, 'nftables mode works without iptables installed');
  bare.missing.add('nft');
  bare.missing.delete('iptables-save');
  t.equal(new Masquerade(bare, 'iptables').sync(IPV4), true, 'iptables mode works without nft installed');
  t.throws(() => new Masquerade(bare, 'nftables').sync(IPV4), { code: 'CMD_MISSING' }, 'but nftables mode needs nft');
  t.equal(bare.ipt.iptables.chain?.length, 4, 'the failed switch to nftables left the iptables rules in place');
  t.same(new Masquerade(bare, 'iptables').observe(), {
    mode: 'iptables', nftables: undefined, iptables: { 4: { chain: bare.ipt.iptables.chain, jumps: [IPT_JUMP_RULE] }, 6: undefined },
  });
  t.throws(() => new Masquerade(bare, 'ipvs' as never), /unknown mode "ipvs"/);
});

t.test('fake: a failing write surfaces nft stderr; invalid input runs nothing', async (t) => {
  const fake = new FakeRunner();
  const masq = new Masquerade(fake, 'nftables');
  t.throws(() => masq.sync({ clusterCidrs: ['nope'], podCidr: '10.244.1.0/24' }), { code: 'EINVAL' });
  t.same(fake.calls, [], 'validation first');
  fake.nftTable = true;
  fake.nftChain = [];
  fake.nftChainSpec = 'type filter hook input priority 0;';
  const run = fake.run.bind(fake);
  fake.run = (cmd, args, input) => (args[0] === '-f' ? { code: 1, stdout: '', stderr: 'Error: Could not process rule: Device or resource busy' } : run(cmd, args, input));
  t.throws(() => masq.sync(IPV4), { code: 'CMD_FAILED', message: /nft -f - .*Device or resource busy/ });
});
