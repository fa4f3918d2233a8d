// A release that changes one of the proxy's base chains (another priority, a regular chain that
// becomes a base chain or the reverse) must not fail the next agent's full syncs: nft cannot
// change a chain's hook in place (EOPNOTSUPP, the whole transaction refused), so the backend reads
// the hooks with the names it lists and the full sync deletes and adds those chains again, in the
// same transaction. Emulated here by creating the older layout in a fresh pw- netns first; the
// agent's pod-masquerade chain in the shared table and a foreign table must come through as they were.
import t from 'tap';
import { netnsRunner } from '../../src/exec/runner.js';
import { renderNftMasq } from '../../src/agent/masq/render.js';
import { NftProxyBackend } from '../../src/proxy/nft/backend.js';
import { CHAINS, PRIORITY } from '../../src/proxy/nft/render.js';
import type { ProxyInput } from '../../src/proxy/types.js';
import { endpoints, service } from '../lib/proxy-fixtures.js';
import { servicePortEndpoints } from '../../src/proxy/topology.js';
import { freshNetns, haveCommand, isRoot, run } from '../lib/netns.js';

const skip = !isRoot ? 'needs root for a netns' : !haveCommand('nft') ? 'nft not installed' : false;
const NODE_IP = '192.168.56.10';

function input(): ProxyInput {
  const svc = service('web', { type: 'NodePort', clusterIPs: ['10.96.0.10'], nodePort: 30080 });
  const eps = endpoints(['10.244.1.5@node-a', '10.244.2.5@node-b']).map((e) => ({ ...e, isLocal: e.nodeName === 'node-a' }));
  return { nodeName: 'node-a', nodeIPs: [NODE_IP], clusterCidrs: ['10.244.0.0/16'], ports: [servicePortEndpoints(svc, eps)] };
}

interface Listed { name: string; table: string; type?: string; hook?: string; prio?: number }
function hooksOf(ns: string): Record<string, string> {
  const items = (JSON.parse(run(ns, 'nft', ['-j', 'list', 'chains', 'inet'])) as { nftables: { chain?: Listed }[] }).nftables;
  return Object.fromEntries(items.flatMap((i) => (i.chain && i.chain.table === 'podwire' ? [[i.chain.name, i.chain.hook ? `${i.chain.type} ${i.chain.hook} ${i.chain.prio}` : 'regular']] : [])));
}

t.test('nftables proxy: base chains of an older release with another hook are recreated by the full sync', { skip, timeout: 30_000 }, async (t) => {
  const ns = freshNetns(t, 'nftbase');
  run(ns, 'nft', ['-f', '-'], renderNftMasq({ clusterCidrs: ['10.244.0.0/16'], podCidr: '10.244.1.0/24' }));
  run(ns, 'nft', ['add table ip other; add chain ip other keep { type filter hook forward priority 0; }; add rule ip other keep counter']);
  const masqBefore = run(ns, 'nft', ['list', 'chain', 'inet', 'podwire', 'pod-masquerade']);
  const otherBefore = run(ns, 'nft', ['list', 'table', 'ip', 'other']);
  // The "older release": prerouting DNAT at -110, a filter (not nat) output chain at -100, postrouting a regular
  // chain and svc-services a base chain (nat output -50); each with a rule, as a ruleset has.
  run(ns, 'nft', ['-f', '-'], [
    `add chain inet podwire ${CHAINS.natPrerouting} { type nat hook prerouting priority -110; policy accept; }`,
    `add rule inet podwire ${CHAINS.natPrerouting} counter`,
    `add chain inet podwire ${CHAINS.filterOutput} { type filter hook output priority -100; policy accept; }`,
    `add rule inet podwire ${CHAINS.filterOutput} counter`,
    `add chain inet podwire ${CHAINS.natPostrouting}`,
    `add rule inet podwire ${CHAINS.natPostrouting} counter`,
    `add chain inet podwire ${CHAINS.services} { type nat hook output priority -50; policy accept; }`,
    `add rule inet podwire ${CHAINS.services} counter`,
    '',
  ].join('\n'));
  const before = hooksOf(ns);
  t.equal(before[CHAINS.natPrerouting], 'nat prerouting -110', 'the older layout is in place');
  t.equal(before[CHAINS.services], 'nat output -50');
  const backend = new NftProxyBackend(netnsRunner(ns));
  const report = backend.sync(input(), undefined);
  t.equal(report.scope, 'full');
  const after = hooksOf(ns);
  t.equal(after[CHAINS.natPrerouting], `nat prerouting ${PRIORITY.dstnat}`, 'prerouting DNAT at the rendered priority');
  t.equal(after[CHAINS.natOutput], `nat output ${PRIORITY.dstnat}`);
  t.equal(after[CHAINS.natPostrouting], `nat postrouting ${PRIORITY.srcnat}`, 'the regular chain became the base chain');
  t.equal(after[CHAINS.filterOutput], `nat output ${PRIORITY.filter}`, 'the filter chain of the older release became a nat chain');
  t.equal(after[CHAINS.filterPrerouting], `nat prerouting ${PRIORITY.filter}`);
  t.equal(after[CHAINS.services], 'regular', 'the base chain became a regular chain again');
  t.match(run(ns, 'nft', ['list', 'chain', 'inet', 'podwire', CHAINS.natPrerouting]), /jump svc-services/, 'with its rules');
  for (const c of [CHAINS.natPrerouting, CHAINS.filterOutput, CHAINS.natPostrouting, CHAINS.services]) {
    t.notMatch(run(ns, 'nft', ['list', 'chain', 'inet', 'podwire', c]), /counter/, `${c}: the old rule is gone`);
  }
  t.ok(backend.intact(), 'intact after the sync');
  t.equal(run(ns, 'nft', ['list', 'chain', 'inet', 'podwire', 'pod-masquerade']), masqBefore, 'the agent\'s pod-masquerade chain is untouched');
  t.equal(run(ns, 'nft', ['list', 'table', 'ip', 'other']).replace(/packets \d+ bytes \d+/g, ''), otherBefore.replace(/packets \d+ bytes \d+/g, ''), 'a foreign table is untouched');
  const again = backend.sync(input(), undefined);
  t.equal(again.scope, 'full', 'a second full sync (nothing to recreate) succeeds too');
  t.same(hooksOf(ns), after, 'and changes no hook');
});
