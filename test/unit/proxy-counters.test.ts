// Per-endpoint DNAT counters (podwire services): the parsers on output captured from nft 1.0.6 (JSON
// and, from a second run, the text of `nft list table`) and
// iptables-nft 1.8.9 (test/fixtures/proxy-counters-*: the renders of test/lib/proxy-nft-inputs'
// five services loaded into a pw- netns, then 6 TCP connections to web's ClusterIP, 3 to sticky's,
// 2 to shop's NodePort and 2 UDP datagrams to local's ClusterIP from the netns itself), how a
// service port finds its counters, the debug API's body and query, the tracer naming the counter
// it bumps, the full sync that recreates an older release's uncounted maps, and the nft backend's
// listings for one service versus all.
import t from 'tap';
import { fixtureText as fixture } from '../lib/fixtures.js';
import { parseElementCounters, parseNftCounters, parseNftTextCounters } from '../../src/proxy/nft/counters.js';
import { parseIptablesCounters } from '../../src/proxy/iptables/counters.js';
import { portCounts, type DnatCounter } from '../../src/proxy/counters.js';
import { servicesBody, selectPorts, serviceNames } from '../../src/agent/debug/services-view.js';
import { servicesQuery } from '../../src/agent/debug/services.js';
import { tracePacket } from '../../src/proxy/nft/trace.js';
import { renderProxyIR, SHARED } from '../../src/proxy/nft/render.js';
import { renderScript, renderTransaction } from '../../src/proxy/nft/diff.js';
import { FakeNftables } from '../../src/exec/nft/fake.js';
import { NftProxyBackend } from '../../src/proxy/nft/backend.js';
import { NftRenderState } from '../../src/proxy/nft/incremental.js';
import type { CommandRunner } from '../../src/exec/runner.js';
import { ALL, NODE_IP, POD_A, input, irA } from '../lib/proxy-nft-inputs.js';

const model = input(ALL);
const port = (name: string) => model.ports.find((p) => p.svc.name === name)!;
const counts = (name: string, counters: DnatCounter[]) => Object.fromEntries([...portCounts(port(name), model.nodeIPs, counters).byEndpoint].map(([k, v]) => [k, v.packets]));

t.test('nft -j list table: counted rules and shared-pick elements', async (t) => {
  const all = parseNftCounters(fixture('proxy-counters-nft-table.json'));
  const web = all.filter((c) => c.dest?.ip === '10.96.0.10');
  t.same(web.map((c) => [c.in, `${c.endpoint!.ip}:${c.endpoint!.port}`, c.packets, c.bytes]), [
    ['svc-eps-tcp-3', '10.244.1.5:8080', 3, 180], ['svc-eps-tcp-3', '10.244.2.5:8080', 0, 0], ['svc-eps-tcp-3', '10.244.3.5:8080', 3, 180],
  ], 'web: one element per arm, 6 connections (SYNs of 60 bytes) in all');
  t.same(counts('web', all), { '10.244.1.5:8080': 3, '10.244.2.5:8080': 0, '10.244.3.5:8080': 3 }, 'web by endpoint');
  t.same(counts('shop', all), { '10.244.1.5:8080': 1, '10.244.2.5:8080': 1, '10.244.3.5:8080': 0 }, 'shop: its NodePort on the node IP (192.168.56.10 . 30080 . k)');
  t.same(counts('local', all), { '10.244.1.8:5353': 0, '10.244.2.8:5353': 2 }, 'local (UDP): udp map only');
  const sticky = all.filter((c) => c.in.startsWith('ep-'));
  t.same(sticky.map((c) => [c.endpoint!.ip, c.packets]).sort(), [['10.244.1.6', 3], ['10.244.2.6', 0]], 'sticky: the DNAT rule of each ep- chain');
  t.ok(sticky.every((c) => c.portKey === undefined), 'rules carry no port key (nft 1.0.6 has no chain comments in JSON)');
  t.same(counts('sticky', all), {}, 'without a key, rules are nobody\'s');
  const keyed = all.map((c) => (c.in.startsWith('ep-') ? { ...c, portKey: port('sticky').svc.key } : c));
  t.same(counts('sticky', keyed), { '10.244.1.6:8080': 3, '10.244.2.6:8080': 0 }, 'with the chain → key map');
  t.throws(() => parseNftCounters('{"nftables": 3}'), /no "nftables" array/);
  t.throws(() => parseNftCounters('nope'), /not JSON/);
  t.throws(() => parseNftCounters(JSON.stringify({ nftables: [{ rule: { chain: 'c', expr: [{ counter: { packets: -1, bytes: 0 } }, { dnat: { addr: '10.0.0.1', port: 80 } }] } }] })), /non-negative integer/);
  t.same(parseNftCounters(JSON.stringify({ nftables: [{ rule: { chain: 'c', expr: [{ counter: { packets: 7, bytes: 420 } }, { dnat: { family: 'ip', addr: { map: {} } } }] } }] })), [{ in: 'c', packets: 7, bytes: 420 }], 'a numgen map pick: the port\'s total, no endpoint');
});

t.test('nft list table (text, what the agent reads for all services): the same counters as its JSON', async (t) => {
  // A second capture (another run: the random picks differ from the JSON one's).
  const text = fixture('proxy-counters-nft-table.txt');
  const all = parseNftTextCounters(text);
  t.same(counts('web', all), { '10.244.1.5:8080': 3, '10.244.2.5:8080': 0, '10.244.3.5:8080': 3 }, 'web by endpoint');
  t.same(counts('shop', all), { '10.244.1.5:8080': 0, '10.244.2.5:8080': 1, '10.244.3.5:8080': 1 }, 'shop by its NodePort');
  t.same(counts('local', all), { '10.244.1.8:5353': 2, '10.244.2.8:5353': 0 }, 'local (UDP)');
  const sticky = all.filter((c) => c.in.startsWith('ep-'));
  t.same(sticky.map((c) => [c.endpoint!.ip, c.packets]).sort(), [['10.244.1.6', 0], ['10.244.2.6', 3]], 'sticky: the ep- chains\' DNAT rules');
  t.equal(all.length, parseNftCounters(fixture('proxy-counters-nft-table.json')).length, 'as many counters as the JSON listing of the same ruleset');
  t.same(parseNftTextCounters('table inet podwire {\n\tchain svc-1 {\n\t\tmeta l4proto tcp counter packets 9 bytes 540 dnat ip to numgen random mod 9 map { 0 : 10.0.0.1 . 80 }\n\t}\n}\n'), [{ in: 'svc-1', packets: 9, bytes: 540 }], 'a numgen map pick: the port\'s total');
  t.same(parseNftTextCounters('table inet podwire {\n\tmap svc-ips {\n\t\telements = { 10.96.0.10 . 80 . 0 counter packets 3 bytes 180 : 10.244.1.5 . 8080 }\n\t}\n}\n'), [], 'elements of other maps are not picks');
});

t.test('nft -j list chain and nft get element (text)', async (t) => {
  const chain = parseNftCounters(fixture('proxy-counters-nft-chain.json'));
  t.equal(chain.length, 1, 'one counted DNAT in an ep- chain');
  t.match(chain[0], { endpoint: { ip: '10.244.1.6', port: 8080 }, packets: 3, bytes: 180 });
  const els = parseElementCounters('svc-eps-tcp-3', fixture('proxy-counters-nft-elements.txt'));
  t.same(els.map((c) => [c.dest, c.endpoint, c.packets]), [
    [{ ip: '10.96.0.10', port: 80, proto: 'tcp' }, { ip: '10.244.1.5', port: 8080 }, 3],
    [{ ip: '10.96.0.10', port: 80, proto: 'tcp' }, { ip: '10.244.2.5', port: 8080 }, 0],
    [{ ip: '10.96.0.10', port: 80, proto: 'tcp' }, { ip: '10.244.3.5', port: 8080 }, 3],
  ]);
  t.throws(() => parseElementCounters('svc-ips', ''), /not a shared pick map/);
});

t.test('iptables-save -c -t nat', async (t) => {
  const all = parseIptablesCounters(fixture('proxy-counters-iptables-save.txt'));
  t.equal(all.length, 10, 'one DNAT per endpoint of each port (web 3, shop 3, sticky 2, local 2)');
  t.same(counts('web', all), { '10.244.1.5:8080': 1, '10.244.2.5:8080': 2, '10.244.3.5:8080': 3 }, 'web: 6 connections');
  t.same(counts('sticky', all), { '10.244.1.6:8080': 3, '10.244.2.6:8080': 0 }, 'sticky: affinity keeps one endpoint');
  t.same(counts('shop', all), { '10.244.1.5:8080': 1, '10.244.2.5:8080': 0, '10.244.3.5:8080': 1 });
  t.throws(() => parseIptablesCounters('-A PODWIRE-SEP-X -j DNAT --to-destination 10.0.0.1:80'), /without \[packets:bytes\]/);
  t.throws(() => parseIptablesCounters('[1:2] -A PODWIRE-SEP-X -j DNAT --to-destination 10.0.0.1:80'), /without a comment/);
  t.same(parseIptablesCounters('[1:60] -A KUBE-SEP-X -m comment --comment a/b:c/TCP -j DNAT --to-destination 10.0.0.1:80'), [], 'not ours');
  t.equal(parseIptablesCounters('[1:60] -A PODWIRE-SEP-X -m comment --comment a/b:c/TCP -j DNAT --to-destination 10.0.0.1:80')[0]!.portKey, 'a/b:c/TCP', 'an unquoted comment');
});

t.test('the debug API body and query', async (t) => {
  const counters = parseIptablesCounters(fixture('proxy-counters-iptables-save.txt'));
  const body = servicesBody('node-a', 'iptables', model, selectPorts(model, { name: 'shop' }), counters);
  t.same(body, {
    node: 'node-a', mode: 'iptables', services: [{
      namespace: 'default', name: 'shop', type: 'LoadBalancer', clusterIPs: ['10.96.0.20'], externalIPs: ['192.0.2.10'], loadBalancerIPs: ['198.51.100.10'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080, endpoints: [
        { ip: '10.244.1.5', port: 8080, ready: true, serving: true, terminating: false, local: true, packets: 1, bytes: 60 },
        { ip: '10.244.2.5', port: 8080, ready: true, serving: true, terminating: false, local: false, packets: 0, bytes: 0 },
        { ip: '10.244.3.5', port: 8080, ready: true, serving: true, terminating: false, local: false, packets: 1, bytes: 60 },
      ] }],
    }],
  });
  const empty = servicesBody('node-a', 'nftables', model, selectPorts(model, { namespace: 'default', name: 'empty' }), []);
  t.same(empty.services[0]!.ports[0]!.endpoints, [], 'a service without endpoints is listed, with none');
  t.same(serviceNames(model), ['default/empty', 'default/local', 'default/shop', 'default/sticky', 'default/web']);
  const unsplit = servicesBody('node-a', 'nftables', model, selectPorts(model, { name: 'web' }), [{ in: 'svc-x', portKey: port('web').svc.key, packets: 4, bytes: 240 }]);
  t.same(unsplit.services[0]!.ports[0]!.unsplit, { packets: 4, bytes: 240 }, 'a numgen map pick: the port total');
  t.equal(unsplit.services[0]!.ports[0]!.endpoints[0]!.packets, null, 'and no per-endpoint figure');
  t.same(servicesQuery({ namespace: 'default', name: 'web' }), { namespace: 'default', name: 'web' });
  t.same(servicesQuery(undefined), {});
  t.match(servicesQuery({ name: 'Web' }), /not a Kubernetes object name/);
  t.match(servicesQuery({ node: 'a' }), /unknown query parameter "node"/);
});

t.test('the tracer names the counter a DNAT bumps', async (t) => {
  const pkt = (dstIp: string, dstPort: number) => ({ srcIp: POD_A, dstIp, dstPort, protocol: 'TCP', hook: 'prerouting' as const, localAddresses: [NODE_IP['node-a']!] });
  t.equal(tracePacket(irA, pkt('10.96.0.10', 80), { randomPick: 1 }).counted, `${SHARED.map(3, 'tcp')} 10.96.0.10 . 80 . 1`, 'shared pick: the element of the arm taken');
  t.equal(tracePacket(irA, pkt(NODE_IP['node-a']!, 30080), { randomPick: 2 }).counted, `${SHARED.map(3, 'tcp')} ${NODE_IP['node-a']} . 30080 . 2`, 'NodePort: the node IP . NodePort element');
  t.match(tracePacket(irA, pkt('10.96.0.30', 80)).counted, /^ep-[0-9a-f]{8} 10\.244\.1\.6:8080$/, 'affinity: the endpoint chain\'s DNAT rule');
  const own = renderProxyIR(input(['web']), { sharedPickMax: 0 });
  t.match(tracePacket(own, pkt('10.96.0.10', 80), { randomPick: 2 }).counted, /^svc-[0-9a-f]{8} 10\.244\.3\.5:8080$/, 'own chain: the cascade arm\'s DNAT');
  const map = renderProxyIR(input(['web']), { sharedPickMax: 0, numgenVmapMinEndpoints: 1 });
  t.match(tracePacket(map, pkt('10.96.0.10', 80)).counted, /^svc-[0-9a-f]{8} \*$/, 'numgen map: the port\'s one counter');
  t.equal(tracePacket(irA, pkt('10.96.0.50', 80)).counted, undefined, 'rejected: nothing counted');
});

t.test('full sync over an older release\'s uncounted maps: deleted and added again', async (t) => {
  const old = structuredClone(irA);
  for (const m of old.maps) delete m.counter;
  const fake = new FakeNftables();
  fake.run(renderTransaction(undefined, old));
  const names = (kind: 'chain' | 'map' | 'set') => fake.list(kind).filter((o) => o.table === 'podwire').map((o) => o.name);
  const existing = { chains: names('chain'), maps: names('map'), sets: names('set') };
  t.throws(() => fake.run(renderTransaction(undefined, irA, { existing })), /EEXIST|exists/, 'without knowing which maps count, `add map` fails (as nft does)');
  const script = renderScript(undefined, irA, { existing: { ...existing, counted: [] } });
  t.match(script, /delete map inet podwire svc-eps-tcp-3\nadd map inet podwire svc-eps-tcp-3 \{ typeof [^}]*counter;/, 'each counted map recreated');
  t.notMatch(script, /delete map inet podwire svc-ips\n/, 'verdict maps (no counter either way) kept');
  fake.run(renderTransaction(undefined, irA, { existing: { ...existing, counted: [] } }));
  const fresh = new FakeNftables();
  fresh.run(renderTransaction(undefined, irA));
  t.equal(fake.dump(), fresh.dump(), 'same ruleset as a fresh full sync');
  const counted = irA.maps.filter((m) => m.counter).map((m) => m.name);
  t.notMatch(renderScript(undefined, irA, { existing: { ...existing, counted } }), /delete map/, 'nothing recreated once they count');
});

t.test('nft backend: one service reads its own chains and elements; all services one table listing', async (t) => {
  const calls: string[][] = [];
  const table = fixture('proxy-counters-nft-table.txt');
  const state = NftRenderState.build(model);
  const runner: CommandRunner = {
    run: (cmd, args) => {
      calls.push([cmd, ...args]);
      if (args.includes('-t')) return { code: 0, stdout: '{"nftables": []}', stderr: '' };
      if (args[0] === '-f') return { code: 0, stdout: '', stderr: '' };
      if (args[0] === 'list' && args[1] === 'table') return { code: 0, stdout: table, stderr: '' };
      if (args[1] === 'list' && args[2] === 'chain') return { code: 0, stdout: fixture('proxy-counters-nft-chain.json'), stderr: '' };
      if (args[0] === 'get') return { code: 0, stdout: fixture('proxy-counters-nft-elements.txt'), stderr: '' };
      return { code: 1, stdout: '', stderr: `unexpected ${args.join(' ')}` };
    },
  };
  const backend = new NftProxyBackend(runner);
  t.throws(() => backend.counters(), /has not synced yet/);
  backend.sync(model, undefined);
  calls.length = 0;
  const web = backend.counters(new Set([port('web').svc.key]));
  t.same(calls, [['nft', 'get', 'element', 'inet', 'podwire', 'svc-eps-tcp-3', '{ 10.96.0.10 . 80 . 0, 10.96.0.10 . 80 . 1, 10.96.0.10 . 80 . 2 }']], 'web (shared pick): one get element, no chain');
  t.equal(web.length, 3);
  calls.length = 0;
  const sticky = backend.counters(new Set([port('sticky').svc.key]));
  t.same(calls.map((c) => c.slice(0, 4).join(' ')), ['nft -j list chain', 'nft -j list chain', 'nft -j list chain'], 'sticky: its svc- and two ep- chains');
  t.ok(sticky.every((c) => c.portKey === port('sticky').svc.key), 'keyed from the render state');
  calls.length = 0;
  const all = backend.counters();
  t.same(calls, [['nft', 'list', 'table', 'inet', 'podwire']], 'all: one listing (text)');
  t.equal(all.filter((c) => c.portKey === port('sticky').svc.key).length, 2, 'ep- rules keyed');
  const keys = state.chainKeys();
  t.same([...keys].filter(([, k]) => k === port('sticky').svc.key).map(([c]) => c.replace(/[0-9a-f]{8}$/, 'H')).sort(), ['ep-H', 'ep-H', 'svc-H'], 'the render state names the chains of each port (sticky: svc- and two ep-)');
  t.notOk([...keys.values()].includes(port('web').svc.key), 'web (shared pick) has no chain of its own');
});
