// The service proxy's nftables renderer (src/proxy/nft): golden full/partial scripts, the packet
// tracer's verdicts for the usual service paths, O(1) per-packet cost at 10,000 services, and the
// sync transactions applied to the fake nftables (src/exec/nft/fake.ts): partial syncs converge to
// what a full sync installs, a base chain with another priority is recreated. The real nft runs
// the same in test/integration/proxy-nft-kernel.test.ts (the fake's oracle is exec-nft-fake).
// UPDATE_GOLDEN=1 rewrites the goldens.
import t from 'tap';
import { matchesGolden } from '../lib/fixtures.js';
import { endpoints, service } from '../lib/proxy-fixtures.js';
import type { ProxyInput } from '../../src/proxy/types.js';
import { serialize } from '../../src/exec/nft/listing.js';
import { FakeNftables } from '../../src/exec/nft/fake.js';
import { Transaction } from '../../src/exec/nft/transaction.js';
import { CHAINS, MAPS, NUMGEN_VMAP_MIN_ENDPOINTS, SHARED_PICK_MAX, renderProxyIR, type NftIR } from '../../src/proxy/nft/render.js';
import { ELEMENT_BATCH, renderScript, renderTransaction } from '../../src/proxy/nft/diff.js';
import { tracePacket, type TracePacket } from '../../src/proxy/nft/trace.js';
import { NameRegistry, hashHex } from '../../src/proxy/nft/names.js';
import { NftRenderState } from '../../src/proxy/nft/incremental.js';
import { nftMasqTransaction } from '../../src/agent/masq/render.js';
import {
  ALL, CLUSTER_CIDR, GOLDEN_FULL, NODE_IP, OUTSIDE, POD_A, SERVICES, STEPS, THREE, big, chainOf, changedKeys, goldenFull, inB, inC, inD, inE,
  input, irA, irB, irC, move, portEndpoints, scriptF, scriptG, sortedLines, unbatch,
} from '../lib/proxy-nft-inputs.js';

t.test('goldens: full syncs (a)-(e), partial syncs (f) endpoint change, (g) service removal', async (t) => {
  for (const g of GOLDEN_FULL) matchesGolden(t, `proxy-nft-${g[0]}.nft`, goldenFull(g));
  matchesGolden(t, 'proxy-nft-partial-endpoint.nft', renderScript(irA, irB));
  matchesGolden(t, 'proxy-nft-partial-remove.nft', renderScript(irB, irC));
  matchesGolden(t, 'proxy-nft-listing.nft', serialize(irA));
});

t.test('ruleset shape', async (t) => {
  const full = unbatch(renderScript(undefined, irA));
  t.notMatch(full, /pod-masquerade|flush table|delete table|flush ruleset/, 'never touches the agent chain or the shared table');
  t.match(full, /^add table inet podwire\n/);
  t.notMatch(full, /fd00|127\.0\.0\.1/, 'IPv6 addresses and loopback skipped');
  t.match(full, /add rule inet podwire svc-services ip daddr \. meta l4proto \. th dport vmap @svc-ips\n/);
  t.match(full, /add rule inet podwire svc-services ip daddr @svc-nodeport-ips meta l4proto \. th dport vmap @svc-nodeports\n/);
  t.match(full, /add chain inet podwire svc-nat-postrouting \{ type nat hook postrouting priority 100; policy accept; \}/);
  // the shared path: web (3 endpoints, no affinity) is elements only
  t.notOk(irA.chains.some((c) => c.comment?.startsWith('default/web:')), 'web has no chain of its own');
  t.match(full, /add element inet podwire svc-ips \{ 10\.96\.0\.10 \. tcp \. 80 comment "default\/web:http\/TCP" : goto svc-pick-3 \}\n/);
  t.match(full, /add element inet podwire svc-eps-tcp-3 \{ 10\.96\.0\.10 \. 80 \. 0 : 10\.244\.1\.5 \. 8080 \}\nadd element inet podwire svc-eps-tcp-3 \{ 10\.96\.0\.10 \. 80 \. 1 : 10\.244\.2\.5 \. 8080 \}\nadd element inet podwire svc-eps-tcp-3 \{ 10\.96\.0\.10 \. 80 \. 2 : 10\.244\.3\.5 \. 8080 \}\n/);
  t.match(full, /add rule inet podwire svc-pick-3 ip saddr != 10\.244\.0\.0\/16 meta mark set meta mark \| 0x4000\nadd rule inet podwire svc-pick-3 meta l4proto tcp dnat ip to ip daddr \. tcp dport \. numgen random mod 3 map @svc-eps-tcp-3\n/);
  t.match(full, /add element inet podwire svc-eps-tcp-3 \{ 192\.168\.56\.10 \. 30080 \. 0 : 10\.244\.1\.5 \. 8080 \}/, 'a NodePort: one destination per node IP');
  t.equal(irA.chains.filter((c) => !c.base && !c.name.startsWith('svc-pick-') && c.name !== CHAINS.services && c.name !== CHAINS.reject).length, 5, 'own chains only for sticky (svc + 2 ep) and local (-ext, -all)');
  // a service's own chain (shared picks off): the forms of its random pick
  const own = renderProxyIR(input(ALL), { sharedPickMax: 0 });
  const ownFull = renderScript(undefined, own);
  const web = chainOf(own, 'default/web:http/TCP');
  t.match(web, /^svc-[0-9a-f]{8}$/, 'svc-<8 hex>');
  t.match(ownFull, new RegExp(`add rule inet podwire ${web} meta l4proto tcp numgen random mod 3 == 0 counter dnat ip to 10\\.244\\.1\\.5:8080\n.* ${web} meta l4proto tcp numgen random mod 2 == 0 counter dnat ip to 10\\.244\\.2\\.5:8080\n.* ${web} meta l4proto tcp counter dnat ip to 10\\.244\\.3\\.5:8080\n`),
    'fewer than NUMGEN_VMAP_MIN_ENDPOINTS endpoints: a cascade of DNATs, no map');
  t.same(own.chains.filter((c) => c.name.startsWith('ep-')).map((c) => c.comment?.split(' ')[0]), ['default/sticky:/TCP', 'default/sticky:/TCP'], 'endpoint chains only for the affinity service');
  const asMap = renderScript(undefined, renderProxyIR(input(['web']), { numgenVmapMinEndpoints: 3, sharedPickMax: 0 }));
  t.match(asMap, new RegExp(`add rule inet podwire ${web} meta l4proto tcp counter dnat ip to numgen random mod 3 map \\{ 0 : 10\\.244\\.1\\.5 \\. 8080, 1 : 10\\.244\\.2\\.5 \\. 8080, 2 : 10\\.244\\.3\\.5 \\. 8080 \\}`), 'from the threshold on: a numgen data map');
  const many = endpoints(Array.from({ length: NUMGEN_VMAP_MIN_ENDPOINTS }, (_, i) => `10.244.9.${i + 1}@node-b`));
  t.match(renderScript(undefined, renderProxyIR({ ...input([]), ports: [portEndpoints(SERVICES.web()[0], many, 'node-a')] }, { sharedPickMax: 0 })), `dnat ip to numgen random mod ${NUMGEN_VMAP_MIN_ENDPOINTS} map`);
  const huge = endpoints(Array.from({ length: SHARED_PICK_MAX + 1 }, (_, i) => `10.244.9.${i + 1}@node-b`));
  t.match(renderScript(undefined, renderProxyIR({ ...input([]), ports: [portEndpoints(SERVICES.web()[0], huge, 'node-a')] })), `dnat ip to numgen random mod ${SHARED_PICK_MAX + 1} map {`, 'more than SHARED_PICK_MAX endpoints: a chain of its own');
  const stickyVmap = renderScript(undefined, renderProxyIR(input(['sticky']), { numgenVmapMinEndpoints: 2 }));
  t.match(stickyVmap, /numgen random mod 2 vmap \{ 0 : goto ep-[0-9a-f]{8}, 1 : goto ep-[0-9a-f]{8} \}/, 'affinity: a vmap of endpoint chains');
  t.match(full, /add rule inet podwire svc-nat-postrouting ct status dnat ip saddr \. ip daddr @svc-hairpin masquerade fully-random comment "hairpin"\n/);
  t.match(full, /add element inet podwire svc-hairpin \{ 10\.244\.1\.5 \. 10\.244\.1\.5 \}\n/, 'hairpin pairs: every endpoint IP');
  const shuffled = input(ALL);
  shuffled.ports.reverse();
  for (const p of shuffled.ports) p.allEndpoints.reverse();
  t.equal(unbatch(renderScript(undefined, renderProxyIR(shuffled))), full, 'deterministic whatever the input order');
  t.equal(renderScript(irA, irA), '', 'no change: nothing to do');
  const skipped: string[] = [];
  renderProxyIR({ ...input([]), ports: [portEndpoints(service('v6only', { clusterIPs: ['fd00:96::1'] }), [], 'node-a'), portEndpoints(service('headless'), [], 'node-a')] }, { onSkip: (k, why) => skipped.push(`${k}: ${why}`) });
  t.same(skipped, ['default/v6only:http/TCP: no IPv4 ClusterIP (IPv6 is not rendered yet)', 'default/headless:http/TCP: headless']);
  t.throws(() => renderProxyIR({ ...input([]), ports: [portEndpoints(service('bad', { clusterIPs: ['10.96.0.1; flush ruleset'] }), [], 'node-a')] }), { code: 'EINVAL' });
  t.throws(() => renderProxyIR({ ...input([]), ports: [portEndpoints(service('bad', { clusterIPs: ['10.96.0.1'], port: 0 }), [], 'node-a')] }), { code: 'EINVAL' });
});

t.test('partial syncs touch only the changed service, in a safe order', async (t) => {
  const others = (ir: NftIR, keep: string) => ir.chains.filter((c) => c.comment && !c.comment.startsWith(keep) && c.name !== CHAINS.reject).map((c) => c.name);
  for (const name of others(irA, 'default/web:')) t.notMatch(scriptF, new RegExp(`\\b${name}\\b`), `(f) leaves ${name} alone`);
  t.same(scriptF.split('\n').filter((l) => l.length && l !== 'add table inet podwire'), [
    'delete element inet podwire svc-eps-tcp-3 { 10.96.0.10 . 80 . 1 }',
    'add element inet podwire svc-eps-tcp-3 { 10.96.0.10 . 80 . 1 : 10.244.2.9 . 8080 }',
    'add element inet podwire svc-hairpin { 10.244.2.9 . 10.244.2.9 }',
  ], '(f) one endpoint of web moved: one arm of its pick rewritten, and the new IP\'s hairpin pair (10.244.2.5 stays: shop uses it); no chain, no other element');
  const lines = scriptG.trim().split('\n');
  for (const name of others(irB, 'default/shop:')) t.notMatch(scriptG, new RegExp(`\\b${name}\\b`), `(g) leaves ${name} alone`);
  t.notMatch(scriptG, /chain/, '(g) shop (Cluster policy, 3 endpoints) had no chain of its own');
  const deleted = lines.filter((l) => l.startsWith('delete element')).map((l) => l.split(' ')[4]);
  t.same([deleted.filter((m) => m === MAPS.serviceIps).length, deleted.filter((m) => m === MAPS.nodePorts).length, deleted.filter((m) => m === 'svc-eps-tcp-3').length, deleted.filter((m) => m === 'svc-hairpin').length], [3, 1, 12, 1],
    '(g) ClusterIP, external IP, LB IP, NodePort; 3 arms for each of those 4 destinations; the hairpin pair of 10.244.2.5 (no service uses it any more)');
  t.equal(lines.length, deleted.length + 1, '(g) deletes only');
  // with chains of its own (shared picks off): elements go before the chains that they name
  const [a0, b0, c0] = [input(ALL), inB, inC].map((i) => renderProxyIR(i, { sharedPickMax: 0 }));
  const lines0 = unbatch(renderScript(b0, c0)).trim().split('\n');
  const shopChains = a0.chains.filter((c) => c.comment?.startsWith('default/shop:')).map((c) => c.name);
  const lastElementDelete = lines0.map((l) => l.startsWith('delete element')).lastIndexOf(true);
  const firstChainDelete = lines0.findIndex((l) => l.startsWith('delete chain'));
  t.ok(lastElementDelete > 0 && firstChainDelete > lastElementDelete, '(g, own chains) map elements deleted before the chains');
  t.same(lines0.filter((l) => l.startsWith('delete chain')).map((l) => l.split(' ').at(-1)).sort(), [...shopChains].sort(), '(g, own chains) exactly shop\'s chains deleted');
  const existing = { chains: [...a0.chains.map((c) => c.name), 'pod-masquerade', 'foreign'], maps: a0.maps.map((m) => m.name), sets: a0.sets.map((s) => s.name) };
  const resync = renderScript(undefined, c0, { existing }).split('\n');
  const flushIps = resync.indexOf(`flush map inet podwire ${MAPS.serviceIps}`);
  for (const name of shopChains) t.ok(resync.indexOf(`delete chain inet podwire ${name}`) > flushIps, `full sync deletes stale ${name} after the maps are flushed`);
  t.notMatch(resync.join('\n'), /pod-masquerade|foreign/, 'existing names that are not ours are ignored');
});

// ---------------------------------------------------------------------------------------------
// tracer

const LOCAL_A = [NODE_IP['node-a'], '10.244.1.1'];
const pkt = (srcIp: string, dstIp: string, dstPort: number, over: Partial<TracePacket> = {}): TracePacket => ({
  srcIp, dstIp, dstPort, protocol: 'TCP', hook: 'prerouting', localAddresses: LOCAL_A, ...over,
});
const WEB_EPS = ['10.244.1.5:8080', '10.244.2.5:8080', '10.244.3.5:8080'];

t.test('tracer: ClusterIP from a pod, from the node, from outside; hairpin', async (t) => {
  const fromPod = tracePacket(irA, pkt(POD_A, '10.96.0.10', 80), { randomPick: 1 });
  t.same([fromPod.verdict, fromPod.dnatTo, fromPod.masquerade, fromPod.candidates], ['dnat', '10.244.2.5:8080', false, WEB_EPS], 'pod → ClusterIP: any of 3, source kept');
  const fromNode = tracePacket(irA, pkt(NODE_IP['node-a'], '10.96.0.10', 80, { hook: 'output' }), { randomPick: 2 });
  t.same([fromNode.verdict, fromNode.dnatTo, fromNode.masquerade], ['dnat', '10.244.3.5:8080', true], 'node → ClusterIP: masqueraded');
  t.equal(tracePacket(irA, pkt(OUTSIDE, '10.96.0.10', 80)).masquerade, true, 'outside → ClusterIP: masqueraded');
  const ownCascade = renderProxyIR(input(['web']), { sharedPickMax: 0 });
  const ownMap = renderProxyIR(input(['web']), { numgenVmapMinEndpoints: 1, sharedPickMax: 0 });
  for (const pick of [0, 1, 2]) {
    const [shared, cascade, map] = [irA, ownCascade, ownMap].map((ir) => tracePacket(ir, pkt(POD_A, '10.96.0.10', 80), { randomPick: pick }));
    t.same([cascade.dnatTo, cascade.candidates], [shared.dnatTo, shared.candidates], `pick ${pick}: the shared pick and an own cascade agree`);
    t.same([map.dnatTo, map.candidates], [shared.dnatTo, shared.candidates], `pick ${pick}: and an own numgen map`);
  }
  const hairpin = tracePacket(irA, pkt('10.244.1.5', '10.96.0.10', 80), { randomPick: 0 });
  t.same([hairpin.verdict, hairpin.dnatTo, hairpin.masquerade], ['dnat', '10.244.1.5:8080', true], 'endpoint → own service → itself: masqueraded');
  t.equal(tracePacket(irA, pkt(POD_A, '10.96.0.10', 81)).verdict, 'accept', 'other port: untouched');
  t.equal(tracePacket(irA, pkt(POD_A, '10.96.0.10', 80, { protocol: 'UDP' })).verdict, 'accept', 'other protocol: untouched');
});

t.test('tracer: NodePort, external IP, LB IP under Cluster and Local policy', async (t) => {
  for (const dst of [[NODE_IP['node-a'], 30080], ['192.0.2.10', 80], ['198.51.100.10', 80]] as const) {
    const r = tracePacket(irA, pkt(OUTSIDE, dst[0], dst[1]), { randomPick: 1 });
    t.same([r.verdict, r.dnatTo, r.masquerade, r.candidates], ['dnat', '10.244.2.5:8080', true, WEB_EPS], `outside → ${dst.join(':')} (Cluster): any endpoint, masqueraded`);
  }
  t.equal(tracePacket(irA, pkt(OUTSIDE, '10.244.1.1', 30080)).verdict, 'accept', 'NodePorts answer on node IPs only, not the cni0 gateway');
  const udp = (src: string, dst: string, port: number, over: Partial<TracePacket> = {}) => pkt(src, dst, port, { protocol: 'UDP', ...over });
  for (const dst of [[NODE_IP['node-a'], 30053], ['192.0.2.40', 53]] as const) {
    const r = tracePacket(irA, udp(OUTSIDE, dst[0], dst[1]), { randomPick: 7 });
    t.same([r.verdict, r.dnatTo, r.masquerade, r.candidates], ['dnat', '10.244.1.8:5353', false, ['10.244.1.8:5353']], `outside → ${dst.join(':')} (Local): local endpoint only, client IP kept`);
  }
  const irNodeC = renderProxyIR(input(ALL, 'node-c'));
  const localC = [NODE_IP['node-c'], '10.244.3.1'];
  const dropped = tracePacket(irNodeC, udp(OUTSIDE, NODE_IP['node-c'], 30053, { localAddresses: localC }));
  t.same([dropped.verdict, dropped.dnatTo, dropped.masquerade], ['drop', undefined, false], 'Local, node without local endpoint: outside traffic dropped');
  t.equal(tracePacket(irNodeC, udp(OUTSIDE, '192.0.2.40', 53, { localAddresses: localC })).verdict, 'drop', 'same for its external IP');
  const pod = tracePacket(irNodeC, udp('10.244.3.7', '192.0.2.40', 53, { localAddresses: localC }), { randomPick: 1 });
  t.same([pod.verdict, pod.dnatTo, pod.masquerade], ['dnat', '10.244.2.8:5353', false], 'a pod is short-circuited to the cluster-wide endpoints');
  const node = tracePacket(irNodeC, udp(NODE_IP['node-c'], NODE_IP['node-c'], 30053, { hook: 'output', localAddresses: localC }));
  t.same([node.verdict, node.dnatTo, node.masquerade], ['dnat', '10.244.1.8:5353', true], 'the node itself too, masqueraded');
});

t.test('tracer: no endpoints → reject; affinity; internal Local without local endpoint → drop', async (t) => {
  for (const p of [pkt(POD_A, '10.96.0.50', 80), pkt(OUTSIDE, NODE_IP['node-a'], 30050), pkt(NODE_IP['node-a'], '10.96.0.50', 80, { hook: 'output' })]) {
    const r = tracePacket(irA, p);
    t.same([r.verdict, r.path.at(-1)], ['reject', CHAINS.reject], `${p.srcIp} → ${p.dstIp}:${p.dstPort}: rejected`);
  }
  const aff = irA.sets.find((s) => s.comment === 'default/sticky:/TCP 10.244.2.6:8080')!.name;
  const sticky = tracePacket(irA, pkt(POD_A, '10.96.0.30', 80), { randomPick: 0, affinity: { [aff]: [POD_A] } });
  t.same([sticky.dnatTo, sticky.candidates], ['10.244.2.6:8080', undefined], 'known client: its endpoint, no random pick');
  t.equal(tracePacket(irA, pkt('10.244.1.99', '10.96.0.30', 80), { randomPick: 0, affinity: { [aff]: [POD_A] } }).dnatTo, '10.244.1.6:8080', 'other client: random');
  const [info] = SERVICES.web();
  const internalLocal = renderProxyIR({ ...input([]), nodeName: 'node-d', ports: [portEndpoints({ ...info, internalPolicyLocal: true }, THREE, 'node-d')] });
  t.equal(tracePacket(internalLocal, pkt(POD_A, '10.96.0.10', 80)).verdict, 'drop', 'internalTrafficPolicy Local, no local endpoint: drop');
});


t.test('10,000 services: O(1) base rules and per-packet path', async (t) => {
  const started = Date.now();
  const [small, large] = [renderProxyIR(big(10)), renderProxyIR(big(10_000))];
  const script = renderScript(undefined, large);
  t.ok(Date.now() - started < 20_000, `rendered in ${Date.now() - started} ms`);
  const fixed = (ir: NftIR) => ir.chains.filter((c) => c.base || c.name === CHAINS.services).map((c) => c.rules.length);
  t.same(fixed(large), fixed(small), 'base chains and svc-services: same rules at 10 and 10,000 services');
  t.equal(large.maps.find((m) => m.name === MAPS.serviceIps)!.elements.length, 10_000);
  t.ok(script.length > 1_000_000);
  const ipsCommands = script.split('\n').filter((l) => l.startsWith(`add element inet podwire ${MAPS.serviceIps} {`));
  t.same(ipsCommands.map((l) => l.split(' : ').length - 1), Array(10).fill(ELEMENT_BATCH), `10,000 @svc-ips elements in 10 commands of ${ELEMENT_BATCH}`);
  const clusterIp = (n: number) => `10.96.${n >> 8}.${n & 255}`;
  const cases: [string, TracePacket, TracePacket][] = [
    ['pod → ClusterIP', pkt(POD_A, clusterIp(7), 80), pkt(POD_A, clusterIp(7777), 80)],
    ['node → ClusterIP', pkt(NODE_IP['node-a'], clusterIp(7), 80, { hook: 'output' }), pkt(NODE_IP['node-a'], clusterIp(7777), 80, { hook: 'output' })],
    ['outside → NodePort', pkt(OUTSIDE, NODE_IP['node-a'], 30007), pkt(OUTSIDE, NODE_IP['node-a'], 31777)],
    ['pod → unknown port', pkt(POD_A, clusterIp(7), 81), pkt(POD_A, clusterIp(7777), 81)],
  ];
  for (const [label, few, many] of cases) {
    const a = tracePacket(small, few);
    const b = tracePacket(large, many);
    t.equal(a.verdict, label.endsWith('unknown port') ? 'accept' : 'dnat', `${label}: ${a.verdict}`);
    t.same([b.verdict, b.path.length, b.rulesEvaluated], [a.verdict, a.path.length, a.rulesEvaluated], `${label}: ${a.path.length} chains, ${a.rulesEvaluated} rules at 10 and at 10,000 services`);
  }
});


t.test('incremental state: after every step ir() is the full render, and the partial script is the full-IR diff', async (t) => {
  let state: NftRenderState | undefined;
  let prev: ProxyInput | undefined;
  for (const [label, inp] of STEPS) {
    const want = renderProxyIR(inp);
    if (!state || !prev) {
      state = NftRenderState.build(inp);
    } else {
      const changed = changedKeys(prev, inp);
      const partial = state.update(inp, changed);
      if (!partial) {
        t.not(JSON.stringify(prev.nodeIPs), JSON.stringify(inp.nodeIPs), `${label}: only a node change refuses a partial update`);
        state = NftRenderState.build(inp);
      } else {
        t.equal(partial.rendered, [...changed].filter((k) => inp.ports.some((p) => p.svc.key === k)).length, `${label}: rendered only the ${changed.size} changed ports`);
        t.same(sortedLines(renderScript(partial.prev, partial.next)), sortedLines(renderScript(renderProxyIR(prev), want)), `${label}: the same transaction as diffing the full IRs`);
      }
    }
    t.same(state.ir(), want, `${label}: ir() equals renderProxyIR`);
    prev = inp;
  }
  const s = NftRenderState.build(input(ALL));
  const none = s.update(input(ALL), new Set())!;
  t.equal(none.rendered, 0);
  t.equal(renderScript(none.prev, none.next), '', 'nothing changed: nothing to do');
  // two services claiming one external IP: the smaller key owns it, the other takes over when it goes
  const twin = (name: string) => portEndpoints(service(name, { clusterIPs: [name === 'a' ? '10.96.1.1' : '10.96.1.2'], externalIPs: ['192.0.2.99'] }), THREE, 'node-a');
  const both = { ...input([]), ports: [twin('a'), twin('b')] };
  const onlyB = { ...input([]), ports: [twin('b')] };
  const st = NftRenderState.build(both);
  const p = st.update(onlyB, new Set(['default/a:http/TCP']))!;
  const script = unbatch(renderScript(p.prev, p.next));
  t.match(script, /delete element inet podwire svc-ips \{ 192\.0\.2\.99 \. tcp \. 80 \}\n(.*\n)*add element inet podwire svc-ips \{ 192\.0\.2\.99 \. tcp \. 80 comment "default\/b:http\/TCP"/, 'the external IP moves to b');
  t.same(st.ir(), renderProxyIR(onlyB));
  // the same, with b's endpoints elsewhere: the shared pick's arms for the external IP (claimed
  // as one destination) must switch to b's endpoints too
  const bElsewhere = portEndpoints(service('b', { clusterIPs: ['10.96.1.2'], externalIPs: ['192.0.2.99'] }), move('10.244.2.5', '10.244.2.77')(THREE), 'node-a');
  const pair = { ...input([]), ports: [twin('a'), bElsewhere] };
  const st2 = NftRenderState.build(pair);
  t.same(st2.ir(), renderProxyIR(pair), 'two claimants: ir() equals the full render (a owns the external IP and its arms)');
  const p2 = st2.update({ ...input([]), ports: [bElsewhere] }, new Set(['default/a:http/TCP']))!;
  const script2 = unbatch(renderScript(p2.prev, p2.next));
  t.match(script2, /add element inet podwire svc-eps-tcp-3 \{ 192\.0\.2\.99 \. 80 \. \d : 10\.244\.2\.77 \. \d+ \}/, 'the external IP\'s arms now pick b\'s endpoints');
  t.same(st2.ir(), renderProxyIR({ ...input([]), ports: [bElsewhere] }));
});


t.test('full sync: chains listed with another hook than rendered are deleted and added again, only those', async (t) => {
  const chains = irA.chains.map((c) => c.name);
  const hooks = Object.fromEntries(irA.chains.filter((c) => c.base).map((c) => [c.name, { ...c.base! }]));
  const same = renderScript(undefined, irA, { existing: { chains, maps: [], sets: [], hooks } });
  t.notMatch(same, /^delete chain /m, 'every hook as rendered: no chain is recreated');
  t.equal(same, renderScript(undefined, irA, { existing: { chains, maps: [], sets: [] } }), 'and the script is the one without hooks');
  hooks[CHAINS.filterOutput] = { type: 'filter', hook: 'output', priority: -110 };
  hooks[CHAINS.services] = { type: 'nat', hook: 'prerouting', priority: -100 };
  delete hooks[CHAINS.natPostrouting];
  const script = renderScript(undefined, irA, { existing: { chains, maps: [], sets: [], hooks } });
  const deleted = [...script.matchAll(/^delete chain inet podwire (\S+)$/gm)].map((m) => m[1]).sort();
  t.same(deleted, [CHAINS.natPostrouting, CHAINS.filterOutput, CHAINS.services].sort(), 'another priority, a base chain now regular, a regular chain now base');
  const lines = script.split('\n');
  for (const name of deleted) {
    const adds = lines.flatMap((l, i) => (l.startsWith(`add chain inet podwire ${name}`) && (l.length === `add chain inet podwire ${name}`.length || l[`add chain inet podwire ${name}`.length] === ' ') ? [i] : []));
    const del = lines.indexOf(`delete chain inet podwire ${name}`);
    const lastFlush = Math.max(...lines.flatMap((l, i) => (/^flush (chain|map) /.test(l) ? [i] : [])));
    t.equal(adds.length, 1, `${name}: added once`);
    t.ok(lastFlush < del && del < adds[0]!, `${name}: deleted after every flush, then added`);
  }
});

t.test('names: 8 hex digits, 16 for an id whose 8 are taken; released names are free again', async (t) => {
  const seen = new Map<string, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair; i++) {
    const id = `ns/svc-${i}:p/TCP`;
    const short = hashHex(id).slice(0, 8);
    if (seen.has(short)) pair = [seen.get(short)!, id];
    seen.set(short, id);
  }
  const reg = new NameRegistry();
  const first = reg.name('svc-', pair[0]);
  const second = reg.name('svc-', pair[1]);
  t.equal(first, `svc-${hashHex(pair[0]).slice(0, 8)}`);
  t.equal(second, `svc-${hashHex(pair[1]).slice(0, 16)}`, 'the later id gets 16');
  t.equal(reg.name('svc-', pair[0]), first, 'stable while held');
  t.equal(reg.name('svc-', 'default/web:http/TCP'), chainOf(renderProxyIR(input(['web']), { sharedPickMax: 0 }), 'default/web:http/TCP'), 'the others keep 8');
  t.equal(reg.name('ep-', pair[0]), `ep-${hashHex(pair[0]).slice(0, 8)}`, 'prefixes are separate name spaces');
  reg.release('svc-', pair[0]);
  t.equal(reg.name('svc-', pair[1]), second, 'a held name does not move when another is released');
  const again = new NameRegistry();
  again.name('svc-', pair[1]);
  t.equal(again.name('svc-', pair[0]), `svc-${hashHex(pair[0]).slice(0, 16)}`, 'allocation order decides who gets 16');
});

// ---------------------------------------------------------------------------------------------
// the sync transactions on the fake nftables (the same against the kernel: proxy-nft-kernel)

const masquerade = () => nftMasqTransaction({ clusterCidrs: [CLUSTER_CIDR], podCidr: '10.244.1.0/24' });
/** Names of table podwire's objects in the fake, as the backend lists them for a full sync. */
const listed = (fake: FakeNftables) => {
  const names = (kind: 'chain' | 'map' | 'set') => fake.list(kind).filter((o) => o.table === 'podwire').map((o) => o.name);
  return { chains: names('chain'), maps: names('map'), sets: names('set') };
};

t.test('partial syncs converge to what a full sync installs (fake nftables)', async (t) => {
  const partial = new FakeNftables();
  const incremental = new FakeNftables();
  for (const fake of [partial, incremental]) fake.run(masquerade());
  let prev: NftIR | undefined;
  let state: NftRenderState | undefined;
  let prevInput: ProxyInput | undefined;
  for (const [label, inp] of STEPS) {
    const ir = renderProxyIR(inp);
    t.doesNotThrow(() => partial.run(renderTransaction(prev, ir)), `${prev ? 'partial' : 'full'} sync to ${label} applies`);
    // the agent's way: the incremental state, a full sync (with the names listed) when it refuses
    const step = state && prevInput ? state.update(inp, changedKeys(prevInput, inp)) : undefined;
    if (step) incremental.run(renderTransaction(step.prev, step.next));
    else {
      state = NftRenderState.build(inp);
      incremental.run(renderTransaction(undefined, state.ir(), { existing: listed(incremental) }));
    }
    const full = new FakeNftables();
    full.run(masquerade());
    full.run(renderTransaction(undefined, ir));
    const want = full.dump();
    t.ok(want.split('\n').length > 40 && want.includes('add chain inet podwire pod-masquerade'), `${label}: a full ruleset, the masquerade chain in it`);
    t.equal(partial.dump(), want, `${label}: same ruleset as a full sync`);
    t.equal(incremental.dump(), want, `${label}: the incremental state's syncs too (${step ? 'partial' : 'full'})`);
    prev = ir;
    prevInput = inp;
  }
  t.match(unbatch(renderScript(renderProxyIR(inD), renderProxyIR(inE))), /delete element inet podwire svc-no-endpoints \{ 192\.0\.2\.40 \. udp \. 53 \}\n(.*\n)*add element inet podwire svc-no-endpoints \{ 192\.0\.2\.40 \. udp \. 53 comment "default\/local:http\/UDP" : goto svc-reject \}/,
    'a verdict change is a delete then an add');
});

t.test('the fake refuses a sync transaction in the wrong order', async (t) => {
  // F → A: shop's own chains (Local + affinity) go; its @svc-ips elements still name them until deleted
  const [irF, irBack] = [renderProxyIR(STEPS[6]![1]), renderProxyIR(STEPS[7]![1])];
  const fake = new FakeNftables();
  fake.run(renderTransaction(undefined, irF));
  const right = renderTransaction(irF, irBack);
  const wrong = new Transaction(right.table);
  wrong.ops.push(...right.ops.filter((o) => o.kind === 'chain' && o.verb === 'delete'), ...right.ops.filter((o) => !(o.kind === 'chain' && o.verb === 'delete')));
  t.ok(wrong.ops.some((o) => o.kind === 'chain' && o.verb === 'delete'), 'the sync deletes chains');
  t.throws(() => fake.check(wrong), { code: 'EBUSY' }, 'chains deleted before what names them: refused');
  t.doesNotThrow(() => fake.run(right), 'the rendered order applies');
});

t.test('full sync: recreateBaseChains replaces a base chain whose priority changed (fake nftables)', async (t) => {
  const fake = new FakeNftables();
  fake.run(new Transaction('podwire').addTable().addChain({ name: CHAINS.filterOutput, base: { type: 'nat', hook: 'output', priority: -110 } }));
  const existing = { chains: [CHAINS.filterOutput], maps: [], sets: [] };
  t.throws(() => fake.check(renderTransaction(undefined, irA, { existing })), { code: 'EOPNOTSUPP' }, 'another priority on an existing base chain is refused');
  fake.run(renderTransaction(undefined, irA, { existing, recreateBaseChains: true }));
  t.same(fake.list('chain').find((c) => c.name === CHAINS.filterOutput)?.base, { type: 'nat', hook: 'output', priority: -90, policy: 'accept' });
  // An agent upgraded from a release whose reject chains were filter chains: the full sync, given
  // the listed hooks, recreates both as nat chains in one transaction.
  const upgraded = new FakeNftables();
  const old = new Transaction('podwire').addTable();
  for (const [name, hook] of [[CHAINS.filterPrerouting, 'prerouting'], [CHAINS.filterOutput, 'output']] as const) old.addChain({ name, base: { type: 'filter', hook, priority: -90, policy: 'accept' } });
  upgraded.run(old);
  const oldHooks = { [CHAINS.filterPrerouting]: { type: 'filter' as const, hook: 'prerouting' as const, priority: -90 }, [CHAINS.filterOutput]: { type: 'filter' as const, hook: 'output' as const, priority: -90 } };
  upgraded.run(renderTransaction(undefined, irA, { existing: { chains: [CHAINS.filterPrerouting, CHAINS.filterOutput], maps: [], sets: [], hooks: oldHooks } }));
  t.same([CHAINS.filterPrerouting, CHAINS.filterOutput].map((n) => upgraded.list('chain').find((c) => c.name === n)?.base?.type), ['nat', 'nat'], 'filter reject chains of an older release become nat chains');
  const listedHook = new FakeNftables();
  listedHook.run(new Transaction('podwire').addTable().addChain({ name: CHAINS.filterOutput, base: { type: 'filter', hook: 'output', priority: -110 } }));
  const hooks = { [CHAINS.filterOutput]: { type: 'filter' as const, hook: 'output' as const, priority: -110 } };
  t.doesNotThrow(() => listedHook.run(renderTransaction(undefined, irA, { existing: { ...existing, hooks } })), 'with the listed hooks: the differing chain is recreated');
  const full = new FakeNftables();
  full.run(renderTransaction(undefined, irA));
  t.equal(listedHook.dump(), full.dump(), 'and the result is a fresh full sync\'s');
});
