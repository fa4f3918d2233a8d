// ipMasq in nftables (src/cni/masq.ts): golden renderer output, the parser on real `nft -j` output
// (test/fixtures/nft/masq-table.json, see its README), flows against the fake runner, validation.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  FakeNft, masqAdd, masqCheck, masqDel, masqGc, networkChain, ownerComment, parseMasqTable, planMasqGc,
  renderMasqAdd, renderMasqDel, renderMasqGc, type MasqSpec, type MasqState,
} from '../../src/cni/masq.js';
import { CommandError } from '../../src/exec/runner.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/nft/', import.meta.url));
const captured = (): unknown => JSON.parse(readFileSync(FIXTURES + 'masq-table.json', 'utf8'));

const pod2: MasqSpec = { network: 'podwire', subnet: '10.244.1.0/24', podIp: '10.244.1.2', owner: { containerId: 'c0ffee01', ifname: 'eth0' } };
const pod6: MasqSpec = { network: 'podwire', subnet: 'fd00:10:244:1::/64', podIp: 'fd00:10:244:1::2', owner: { containerId: 'c0ffee01', ifname: 'eth0' } };

const SKELETON = `add table inet podwire-cni
add map inet podwire-cni masq4 { type ipv4_addr : verdict; }
add map inet podwire-cni masq6 { type ipv6_addr : verdict; }
add chain inet podwire-cni postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain inet podwire-cni postrouting
add rule inet podwire-cni postrouting ip saddr vmap @masq4
add rule inet podwire-cni postrouting ip6 saddr vmap @masq6
`;

t.test('renderMasqAdd: skeleton, network chain flushed and refilled, element add-delete-add', async (t) => {
  t.equal(networkChain('podwire', '10.244.1.0/24'), 'net-2e9f3456', 'same hash as in the captured table');
  t.equal(
    renderMasqAdd(pod2),
    SKELETON +
      `add chain inet podwire-cni net-2e9f3456
flush chain inet podwire-cni net-2e9f3456
add rule inet podwire-cni net-2e9f3456 ip daddr 10.244.1.0/24 return
add rule inet podwire-cni net-2e9f3456 ip daddr 224.0.0.0/4 return
add rule inet podwire-cni net-2e9f3456 masquerade
add element inet podwire-cni masq4 { 10.244.1.2 : jump net-2e9f3456 }
delete element inet podwire-cni masq4 { 10.244.1.2 }
add element inet podwire-cni masq4 { 10.244.1.2 comment "c0ffee01/eth0" : jump net-2e9f3456 }
`,
  );
  t.equal(
    renderMasqAdd(pod6),
    SKELETON +
      `add chain inet podwire-cni net-e1c568c9
flush chain inet podwire-cni net-e1c568c9
add rule inet podwire-cni net-e1c568c9 ip6 daddr fd00:10:244:1::/64 return
add rule inet podwire-cni net-e1c568c9 ip6 daddr ff00::/8 return
add rule inet podwire-cni net-e1c568c9 masquerade
add element inet podwire-cni masq6 { fd00:10:244:1::2 : jump net-e1c568c9 }
delete element inet podwire-cni masq6 { fd00:10:244:1::2 }
add element inet podwire-cni masq6 { fd00:10:244:1::2 comment "c0ffee01/eth0" : jump net-e1c568c9 }
`,
  );
});

t.test('renderMasqAdd: canonical forms, as nft prints them back', async (t) => {
  const script = renderMasqAdd({ ...pod6, subnet: 'FD00:10:244:1:0:0:0:77/64', podIp: 'fd00:0010:0244:0001::0002' });
  t.match(script, /ip6 daddr fd00:10:244:1::\/64 return/, 'host bits cleared, RFC 5952 text');
  t.match(script, /masq6 \{ fd00:10:244:1::2 comment/);
  t.equal(networkChain('podwire', '10.244.1.77/24'), networkChain('podwire', '10.244.1.0/24'), 'host bits do not change the chain');
  t.not(networkChain('podwire', '10.244.1.0/24'), networkChain('podwire2', '10.244.1.0/24'), 'network name is part of the hash');
  t.not(networkChain('net1', '10.0.0.0/8'), networkChain('net11', '0.0.0.0/8'), 'name and subnet cannot run into each other');
  t.match(renderMasqAdd({ ...pod2, subnet: '10.244.1.2/32' }), /ip daddr 10\.244\.1\.2 return/, 'a /32 is a plain address');
});

t.test('renderMasqAdd: replacing an element of another chain deletes it by its own verdict', async (t) => {
  const old = { ip: '10.244.1.2', family: 4 as const, owner: 'old/eth0', chain: 'net-00000000', verdict: 'jump net-00000000' };
  const lines = renderMasqAdd(pod2, old).trimEnd().split('\n').slice(-3);
  t.same(lines, [
    'add element inet podwire-cni masq4 { 10.244.1.2 : jump net-00000000 }',
    'delete element inet podwire-cni masq4 { 10.244.1.2 }',
    'add element inet podwire-cni masq4 { 10.244.1.2 comment "c0ffee01/eth0" : jump net-2e9f3456 }',
  ]);
});

t.test('parseMasqTable: the captured nft -j listing', async (t) => {
  const state = parseMasqTable(captured());
  t.same(state.elements, [
    { ip: '10.99.0.5', family: 4, owner: 'beef/net1', verdict: 'jump net-b5cff25a', chain: 'net-b5cff25a' },
    { ip: '10.244.1.2', family: 4, owner: 'c0ffee01/eth0', verdict: 'jump net-2e9f3456', chain: 'net-2e9f3456' },
    { ip: '10.244.1.3', family: 4, owner: 'c0ffee02/eth0', verdict: 'jump net-2e9f3456', chain: 'net-2e9f3456' },
    { ip: '10.244.1.50', family: 4, owner: undefined, verdict: 'jump net-2e9f3456', chain: 'net-2e9f3456' },
    { ip: 'fd00:10:244:1::2', family: 6, owner: 'c0ffee01/eth0', verdict: 'jump net-e1c568c9', chain: 'net-e1c568c9' },
  ]);
  t.same(state.chains, ['postrouting', 'net-2e9f3456', 'net-e1c568c9', 'net-b5cff25a']);
  t.same(state.rules.postrouting, ['ip saddr vmap @masq4', 'ip6 saddr vmap @masq6']);
  t.same(state.rules['net-e1c568c9'], ['ip6 daddr fd00:10:244:1::/64 return', 'ip6 daddr ff00::/8 return', 'masquerade']);
  t.same(state.rules['net-b5cff25a'], ['ip daddr 10.99.0.0/16 return', 'ip daddr 224.0.0.0/4 return', 'masquerade']);
});

t.test('parseMasqTable: ignores other tables and maps, keeps unknown rule forms verbatim, refuses non-listings', async (t) => {
  const state = parseMasqTable({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { map: { table: 'other', name: 'masq4', elem: [['1.2.3.4', { accept: null }]] } },
      { map: { table: 'podwire-cni', name: 'ports', elem: [['1.2.3.4', { accept: null }]] } },
      { map: { table: 'podwire-cni', name: 'masq4', elem: [['10.0.0.1', { drop: null }]] } },
      { chain: { table: 'podwire-cni', name: 'net-aaaaaaaa' } },
      { rule: { table: 'podwire-cni', chain: 'net-aaaaaaaa', expr: [{ counter: { packets: 0, bytes: 0 } }, { accept: null }] } },
      { rule: { table: 'other', chain: 'c', expr: [{ accept: null }] } },
    ],
  });
  t.same(state.elements, [{ ip: '10.0.0.1', family: 4, owner: undefined, verdict: 'drop', chain: undefined }]);
  t.same(state.rules, { 'net-aaaaaaaa': ['{"counter":{"packets":0,"bytes":0}} accept'] });
  t.throws(() => parseMasqTable({}), /no "nftables" array/);
});

t.test('GC plan and script: stale owners (and no owner) go, chains follow their last element', async (t) => {
  const state = parseMasqTable(captured());
  const valid = [{ containerId: 'c0ffee01', ifname: 'eth0' }, 'beef/net1'];
  const plan = planMasqGc(valid, state);
  t.same(plan.elements.map((e) => e.ip), ['10.244.1.3', '10.244.1.50']);
  t.same(plan.chains, [], 'every network chain still has an element');
  const onlyV6 = planMasqGc(['c0ffee01/eth0'], { ...state, elements: state.elements.filter((e) => e.family === 6) });
  t.same(onlyV6.chains, ['net-2e9f3456', 'net-b5cff25a'], 'postrouting is never a candidate');
  t.equal(
    renderMasqGc([], { elements: state.elements.slice(0, 1), chains: ['postrouting', 'net-b5cff25a'], rules: {} }),
    `add element inet podwire-cni masq4 { 10.99.0.5 : jump net-b5cff25a }
delete element inet podwire-cni masq4 { 10.99.0.5 }
flush chain inet podwire-cni net-b5cff25a
delete chain inet podwire-cni net-b5cff25a
`,
  );
  t.equal(renderMasqGc(['x/eth0'], { elements: [], chains: ['postrouting'], rules: {} }), '', 'nothing to do: empty script');
  t.equal(renderMasqDel([]), '');
});

t.test('GC scope: only one network\'s elements and chains are candidates', async (t) => {
  const state = parseMasqTable(captured());
  const scoped = planMasqGc([], state, { chains: ['net-b5cff25a'] });
  t.same(scoped.elements.map((e) => e.ip), ['10.99.0.5']);
  t.same(scoped.chains, ['net-b5cff25a']);
  const unrelated = planMasqGc([], { ...state, elements: [] }, { chains: ['net-2e9f3456'] });
  t.same(unrelated.chains, ['net-2e9f3456'], 'unused chains of other networks stay');
  const malformed = planMasqGc([{ containerId: 'bad id', ifname: 'eth0' }, 'c0ffee02/eth0'], state, { chains: ['net-2e9f3456'] });
  t.same(malformed.elements.map((e) => e.ip), ['10.244.1.2', '10.244.1.50'], 'a malformed valid owner matches nothing and throws nothing');
});

t.test('flow: add runs one transaction and no listing', async (t) => {
  const nft = new FakeNft();
  t.equal(masqAdd(nft, pod2), 'net-2e9f3456');
  t.same(nft.scripts, [renderMasqAdd(pod2)]);
  t.same(nft.lists, []);
});

t.test('flow: add over an element of another chain retries with the old verdict', async (t) => {
  const nft = new FakeNft();
  nft.listing = captured();
  nft.runFailures.push(new CommandError('nft -f - failed (exit 1): Error: Could not process rule: File exists', 'CMD_FAILED'));
  const moved: MasqSpec = { ...pod2, podIp: '10.99.0.5' }; // mapped to net-b5cff25a in the capture
  t.equal(masqAdd(nft, moved), 'net-2e9f3456');
  t.equal(nft.scripts.length, 2);
  t.match(nft.scripts[1], /add element inet podwire-cni masq4 \{ 10\.99\.0\.5 : jump net-b5cff25a \}\ndelete element/);
});

t.test('flow: add failures that a retry cannot fix say what failed', async (t) => {
  const nft = new FakeNft();
  nft.listing = captured();
  nft.runFailures.push(new CommandError('nft -f - failed (exit 1): Error: Operation not permitted', 'CMD_FAILED'));
  t.throws(() => masqAdd(nft, pod2), /ipMasq ADD 10\.244\.1\.2 for c0ffee01\/eth0: .*Operation not permitted/, 'element already has our verdict');
  const empty = new FakeNft();
  empty.runFailures.push(new CommandError('nft -f - failed (exit 1): boom', 'CMD_FAILED'));
  t.throws(() => masqAdd(empty, pod2), /ipMasq ADD .*boom/, 'table absent');
  t.equal(empty.scripts.length, 1, 'no blind retry');
});

t.test('flow: del removes only the owner\'s elements, by their listed verdicts', async (t) => {
  const nft = new FakeNft();
  nft.listing = captured();
  const removed = masqDel(nft, { containerId: 'c0ffee01', ifname: 'eth0' });
  t.same(removed.map((e) => e.ip), ['10.244.1.2', 'fd00:10:244:1::2'], 'both families, no IP needed');
  t.equal(
    nft.scripts[0],
    `add element inet podwire-cni masq4 { 10.244.1.2 : jump net-2e9f3456 }
delete element inet podwire-cni masq4 { 10.244.1.2 }
add element inet podwire-cni masq6 { fd00:10:244:1::2 : jump net-e1c568c9 }
delete element inet podwire-cni masq6 { fd00:10:244:1::2 }
`,
  );
});

t.test('flow: del is a no-op without table or element; retries once on a failed transaction', async (t) => {
  const absent = new FakeNft();
  t.same(masqDel(absent, pod2.owner), []);
  t.same(absent.scripts, [], 'no table: nothing run, nothing created');
  const other = new FakeNft();
  other.listing = captured();
  t.same(masqDel(other, { containerId: 'gone', ifname: 'eth0' }), []);
  t.same(other.scripts, []);
  const flaky = new FakeNft();
  flaky.listing = captured();
  flaky.runFailures.push(new Error('raced'));
  t.equal(masqDel(flaky, pod2.owner).length, 2);
  t.equal(flaky.scripts.length, 2, 'listed and ran again');
  t.equal(flaky.lists.length, 2);
  const broken = new FakeNft();
  broken.listing = captured();
  broken.runFailures.push(new Error('one'), new Error('two'));
  t.throws(() => masqDel(broken, pod2.owner), /ipMasq DEL for c0ffee01\/eth0: two/);
});

t.test('flow: gc applies the plan once', async (t) => {
  const nft = new FakeNft();
  nft.listing = captured();
  const plan = masqGc(nft, ['beef/net1']);
  t.same(plan.elements.map((e) => e.ip), ['10.244.1.2', '10.244.1.3', '10.244.1.50', 'fd00:10:244:1::2']);
  t.same(plan.chains, ['net-2e9f3456', 'net-e1c568c9']);
  t.same(nft.scripts, [renderMasqGc(['beef/net1'], parseMasqTable(captured()))]);
  t.same(masqGc(new FakeNft(), []), { elements: [], chains: [] }, 'no table: nothing to collect');
});

t.test('check: undefined when right, else a precise problem', async (t) => {
  const nft = new FakeNft();
  t.match(masqCheck(nft, pod2), /table inet podwire-cni does not exist/);
  nft.listing = captured();
  t.equal(masqCheck(nft, pod2), undefined);
  t.equal(masqCheck(nft, pod6), undefined);
  t.match(masqCheck(nft, { ...pod2, podIp: '10.244.1.9' }), /10\.244\.1\.9 has no element in map masq4/);
  t.match(masqCheck(nft, { ...pod2, owner: { containerId: 'c0ffee02', ifname: 'eth0' } }), /owned by "c0ffee01\/eth0", expected "c0ffee02\/eth0"/);
  t.match(masqCheck(nft, { ...pod2, podIp: '10.99.0.5', owner: { containerId: 'beef', ifname: 'net1' } }), /points to "jump net-b5cff25a", expected "jump net-2e9f3456"/);
  const state = parseMasqTable(captured());
  nft.listing = patched(captured(), (items) => items.filter((i) => i.chain?.name !== 'net-2e9f3456' && i.rule?.chain !== 'net-2e9f3456'));
  t.match(masqCheck(nft, pod2), /chain net-2e9f3456 for network "podwire" 10\.244\.1\.0\/24 is missing/);
  nft.listing = patched(captured(), (items) => items.filter((i) => !(i.rule?.chain === 'net-2e9f3456' && i.rule.expr[0].masquerade === null)));
  t.match(masqCheck(nft, pod2), /chain net-2e9f3456 has rules .* expected .*"masquerade"/);
  nft.listing = patched(captured(), (items) => items.filter((i) => i.rule?.chain !== 'postrouting'));
  t.match(masqCheck(nft, pod2), /chain postrouting has no rule "ip saddr vmap @masq4"/);
  t.ok(state.elements.length > 0);
});

function patched(listing: unknown, fn: (items: any[]) => any[]): unknown {
  return { nftables: fn((listing as { nftables: any[] }).nftables) };
}

t.test('validation: clear errors before anything runs', async (t) => {
  const nft = new FakeNft();
  const bad: Array<[Partial<MasqSpec> & { owner?: any }, RegExp]> = [
    [{ podIp: 'fd00::2' }, /pod IP fd00::2 is IPv6 but subnet 10\.244\.1\.0\/24 is IPv4/],
    [{ podIp: '10.244.1.300' }, /pod IP: invalid IP address/],
    [{ subnet: '10.244.1.0' }, /subnet: invalid CIDR/],
    [{ subnet: '10.244.1.0/33' }, /subnet: invalid CIDR.*prefix length/],
    [{ network: '' }, /network name must be a non-empty string/],
    [{ owner: { containerId: '-abc', ifname: 'eth0' } }, /invalid container ID "-abc"/],
    [{ owner: { containerId: 'a"b', ifname: 'eth0' } }, /invalid container ID/],
    [{ owner: { containerId: 'a b', ifname: 'eth0' } }, /invalid container ID/],
    [{ owner: { containerId: 'a'.repeat(256), ifname: 'eth0' } }, /invalid container ID/],
    [{ owner: { containerId: 'abc', ifname: 'eth0123456789abc' } }, /invalid interface name/],
    [{ owner: { containerId: 'abc', ifname: 'et"h0' } }, /invalid interface name/],
    [{ owner: { containerId: 'abc', ifname: 'eth 0' } }, /invalid interface name/],
    [{ owner: { containerId: 'abc', ifname: 'a/b' } }, /invalid interface name/],
    [{ owner: { containerId: 'abc', ifname: '' } }, /invalid interface name/],
    [{ owner: { containerId: 'abc', ifname: 'eth\u00e9' } }, /invalid interface name/],
    [{ owner: undefined }, /invalid container ID undefined/],
  ];
  for (const [patch, message] of bad) {
    const spec = { ...pod2, ...patch } as MasqSpec;
    t.throws(() => renderMasqAdd(spec), message, JSON.stringify(patch));
    t.throws(() => masqAdd(nft, spec), message);
    t.throws(() => masqCheck(nft, spec), message);
  }
  t.throws(() => masqDel(nft, { containerId: 'x y', ifname: 'eth0' }), CommandError);
  t.same(nft.scripts, [], 'nothing ran');
  t.same(nft.lists, [], 'nothing listed');
});

t.test('owner comments: plain when short, shortened with a hash to fit nft\'s 128 characters', async (t) => {
  t.equal(ownerComment({ containerId: 'c0ffee01', ifname: 'eth0' }), 'c0ffee01/eth0');
  const id64 = 'f'.repeat(64);
  t.equal(ownerComment({ containerId: id64, ifname: 'eth0' }), `${id64}/eth0`, 'containerd IDs fit');
  const long = 'a'.repeat(255);
  const c = ownerComment({ containerId: long, ifname: 'eth0123456789ab' });
  t.equal(c.length, 128);
  t.match(c, /^a+~[0-9a-f]{16}\/eth0123456789ab$/);
  t.not(ownerComment({ containerId: long.slice(0, 254) + 'b', ifname: 'eth0' }), ownerComment({ containerId: long, ifname: 'eth0' }), 'hash tells long IDs apart');
  const state: MasqState = { elements: [{ ip: '10.0.0.1', family: 4, owner: c, chain: 'net-aaaaaaaa', verdict: 'jump net-aaaaaaaa' }], chains: [], rules: {} };
  t.same(planMasqGc([{ containerId: long, ifname: 'eth0123456789ab' }], state).elements, [], 'GC matches shortened comments');
});
