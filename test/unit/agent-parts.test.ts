// The agent's small pure parts and its scheduler: underlay choice, the Node object it writes and
// what it reads from peers, subnet.env (read back by the CNI plugin's parser), CNI install, and the
// reconciler's coalescing / backoff.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AGENT_NODE_FLAGS } from '../../src/agent/runtime.js';
import { pickUnderlay, type NetDump } from '../../src/agent/underlay.js';
import { nodeBody, peerOf, subnetEnvText, withNetworkReady } from '../../src/agent/node-object.js';
import { installCni, CONFLIST_NAME } from '../../src/agent/cni-install.js';
import { Reconciler } from '../../src/agent/reconciler.js';
import { parseSubnetEnv } from '../../src/cni/config.js';
import type { Node } from '../../src/controlplane/objects.js';

const link = (index: number, name: string, extra = {}) => ({ index, name, mtu: 1500, flags: 0, up: true, operState: 6, ...extra });
const addr = (ifindex: number, cidr: string, scope = 0) => ({ family: 4 as const, ifindex, cidr, local: cidr.split('/')[0]!, prefixLen: Number(cidr.split('/')[1]), scope, flags: 0 });
const route = (dst: string, ifindex: number) => ({ family: 4 as const, dst, ifindex, onlink: false, table: 254, protocol: 3, scope: 0, type: 1 });

t.test('underlay: default route interface, else the only candidate, else a clear error', async (t) => {
  const dump: NetDump = {
    links: [link(1, 'lo'), link(2, 'eth0'), link(3, 'eth1'), link(4, 'cni0'), link(5, 'pw0123456789ab', { kind: 'veth' })],
    addrs: [addr(1, '127.0.0.1/8', 254), addr(2, '192.0.2.11/24'), addr(3, '198.51.100.5/24'), addr(4, '10.244.1.1/24')],
    routes: [route('0.0.0.0/0', 3)],
  };
  t.match(pickUnderlay(dump), { ifname: 'eth1', ip: '198.51.100.5', cidr: '198.51.100.5/24', mtu: 1500 }, 'the default route decides');
  t.match(pickUnderlay(dump, { iface: 'eth0' }), { ifname: 'eth0', ip: '192.0.2.11' }, '--iface wins');
  t.match(pickUnderlay(dump, { publicIp: '192.0.2.11' }), { ifname: 'eth0' }, '--public-ip picks its interface');
  t.match(pickUnderlay({ ...dump, routes: [], links: dump.links.filter((l) => l.name !== 'eth1') }), { ifname: 'eth0' }, 'no default route: the only interface with a global IPv4 address (cni0 and pod veths excluded)');
  t.throws(() => pickUnderlay({ ...dump, routes: [] }), /several candidate interfaces \(eth0, eth1\)/);
  t.throws(() => pickUnderlay(dump, { iface: 'eth9' }), { name: 'UnderlayError', message: /--iface eth9: no such interface/ });
  t.throws(() => pickUnderlay(dump, { publicIp: '203.0.113.1' }), /no interface has this address/);
  t.throws(() => pickUnderlay({ ...dump, links: dump.links.map((l) => (l.name === 'eth1' ? { ...l, up: false } : l)) }), /eth1 is down/);
});

t.test('node object: annotations and addresses set, other fields kept; peers read back', async (t) => {
  const underlay = { ifname: 'eth0', ifindex: 2, ip: '192.0.2.11', cidr: '192.0.2.11/24', mtu: 1500 };
  const existing: Node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { zone: 'a' }, annotations: { other: 'x' }, resourceVersion: '7' }, spec: { podCIDR: '10.244.1.0/24' } };
  const body = nodeBody({ nodeName: 'n1', underlay, vtepMac: '0e:00:00:00:00:01', backend: 'vxlan' }, existing);
  t.same(body.metadata.labels, { zone: 'a' }, 'labels kept');
  t.equal(body.metadata.resourceVersion, '7', 'resourceVersion kept (optimistic update)');
  t.match(body.metadata.annotations, { other: 'x', 'podwire.io/public-ip': '192.0.2.11', 'podwire.io/vtep-mac': '0e:00:00:00:00:01', 'podwire.io/backend': 'vxlan' });
  t.equal(body.spec.podCIDR, '10.244.1.0/24', 'podCIDR kept');
  t.same(body.status?.addresses, [{ type: 'InternalIP', address: '192.0.2.11' }, { type: 'Hostname', address: 'n1' }]);
  t.same(peerOf(body), { name: 'n1', podCidr: '10.244.1.0/24', publicIp: '192.0.2.11', vtepMac: '0e:00:00:00:00:01' });
  t.equal(peerOf({ ...body, spec: {} }), undefined, 'a node without podCIDR is no peer yet');
  const ready = withNetworkReady(body, true, 'ok', '2026-01-01T00:00:00Z');
  const again = withNetworkReady(ready, true, 'ok', '2026-01-01T00:05:00Z');
  const c = again.status!.conditions!.find((x) => x.type === 'NetworkUnavailable')!;
  t.match(c, { status: 'False', lastTransitionTime: '2026-01-01T00:00:00Z', lastHeartbeatTime: '2026-01-01T00:05:00Z' }, 'transition time only moves on a change');
  t.equal(withNetworkReady(again, false, 'boom', '2026-01-01T00:06:00Z').status!.conditions!.find((x) => x.type === 'NetworkUnavailable')!.lastTransitionTime, '2026-01-01T00:06:00Z');
});

t.test('subnet.env is what the CNI plugin reads, with node-level masquerade', async (t) => {
  const env = parseSubnetEnv(subnetEnvText('10.244.0.0/16', '10.244.1.1/24', 1450), 'subnet.env');
  t.same(env, { network: '10.244.0.0/16', subnet: '10.244.1.1/24', mtu: 1450, ipMasq: true });
});

t.test('install-cni writes the plugin and conflist once, atomically', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cni-install-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const source = path.join(dir, 'bundle.mjs');
  fs.writeFileSync(source, '#!/usr/bin/env node\n');
  const opts = { pluginSource: source, binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), subnetFile: '/run/podwire/subnet.env', agentSocket: '/run/podwire/agent.sock', nodeName: 'n1' };
  fs.mkdirSync(opts.binDir);
  fs.writeFileSync(path.join(opts.binDir, 'portmap'), '');
  t.same(installCni(opts), [path.join(opts.binDir, 'podwire'), path.join(opts.confDir, CONFLIST_NAME)]);
  t.equal(fs.statSync(path.join(opts.binDir, 'podwire')).mode & 0o777, 0o755);
  const list = JSON.parse(fs.readFileSync(path.join(opts.confDir, CONFLIST_NAME), 'utf8'));
  t.match(list, { cniVersion: '1.0.0', name: 'podwire', plugins: [{ type: 'podwire', controlPlane: { agentSocket: '/run/podwire/agent.sock', nodeName: 'n1' } }, { type: 'portmap' }] });
  t.same(installCni(opts), [], 'nothing rewritten when unchanged');
  t.same(fs.readdirSync(opts.confDir), [CONFLIST_NAME], 'no temp file left');
});

t.test('reconciler: a burst makes one sync, a failure is retried with backoff, changes during a sync make another', async (t) => {
  const calls: string[][] = [];
  let fail = 1;
  let gate: (() => void) | undefined;
  const r = new Reconciler(async (reasons) => {
    calls.push(reasons);
    if (gate) await new Promise<void>((res) => (gate = res));
    if (fail-- > 0) return { ok: false };
    return { ok: true };
  }, { coalesceMs: 10, minIntervalMs: 0, resyncMs: 60_000, maxBackoffMs: 50 });
  r.start();
  for (let i = 0; i < 10; i++) r.request(`event ${i}`);
  await new Promise((res) => setTimeout(res, 400));
  await r.settled();
  t.equal(calls.length, 2, 'one coalesced sync, then one retry after the failure');
  t.same(calls[0]!.length, 11, 'the first sync saw all 11 reasons');
  t.same(calls[1], ['retry after failure']);
  gate = () => undefined;
  r.request('slow');
  await new Promise((res) => setTimeout(res, 30));
  r.request('during');
  gate!();
  gate = undefined;
  await new Promise((res) => setTimeout(res, 100));
  await r.settled();
  await r.stop();
  t.same(calls.slice(2).map((c) => c.join(',')), ['slow', 'during,changes during sync'], 'a request during a sync runs one more after it');
});

t.test('runtime: the agent\'s shebang carries AGENT_NODE_FLAGS; collectGarbage runs only where gc is exposed', async (t) => {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const shebang = `#!/usr/bin/env -S node ${AGENT_NODE_FLAGS.join(' ')}`;
  t.equal(fs.readFileSync(path.resolve(here, '../../../src/agent/main.ts'), 'utf8').split('\n')[0], shebang, 'src/agent/main.ts');
  const main = path.resolve(here, '../../src/agent/main.js');
  t.equal(fs.readFileSync(main, 'utf8').split('\n')[0], shebang, 'the built main.js keeps it');
  const help = spawnSync(main, ['--help'], { encoding: 'utf8' });
  t.equal(help.status, 0, `main.js runs through its shebang (${help.stderr.trim()})`);
  const runtime = path.resolve(here, '../../src/agent/runtime.js');
  const probe = (flags: readonly string[]) => spawnSync(process.execPath, [...flags, '--input-type=module', '-e', `import { collectGarbage } from ${JSON.stringify(runtime)}; console.log(typeof collectGarbage())`], { encoding: 'utf8' }).stdout.trim();
  t.equal(probe(AGENT_NODE_FLAGS), 'number', 'with the agent\'s flags: a full GC, timed');
  t.equal(probe([]), 'undefined', 'without --expose-gc: nothing, no error');
});
