// The agent's small pure parts and its scheduler: underlay choice, the Node object it writes and
// what it reads from peers, subnet.env (read back by the CNI plugin's parser), CNI install, and the
// reconciler's coalescing, rate limit, backoff and resync, on simulated time (test/lib/fake-clock.ts).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AGENT_NODE_FLAGS } from '../../src/agent/runtime.js';
import { pickUnderlay, type NetDump } from '../../src/agent/underlay.js';
import { nodeBody, peerOf, subnetEnvText, withNetworkReady } from '../../src/agent/node-object.js';
import { installCni, CONFLIST_NAME } from '../../src/agent/cni-install.js';
import { Reconciler, type ReconcilerOptions, type SyncOutcome } from '../../src/agent/reconciler.js';
import { FakeClock } from '../lib/fake-clock.js';
import { parseSubnetEnv } from '../../src/cni/config.js';
import type { Node } from '../../src/api/objects.js';

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
  // With the cluster config's DNS settings (read at registration) the plugin's entry carries them.
  const withDns = { ...opts, clusterDns: { clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local' } };
  t.same(installCni(withDns), [path.join(opts.confDir, CONFLIST_NAME)], 'rewritten when the DNS settings arrive');
  const dnsList = JSON.parse(fs.readFileSync(path.join(opts.confDir, CONFLIST_NAME), 'utf8'));
  t.same(dnsList.plugins[0], { type: 'podwire', subnetFile: '/run/podwire/subnet.env', clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local', controlPlane: { agentSocket: '/run/podwire/agent.sock', nodeName: 'n1' } });
  t.same(installCni(withDns), [], 'unchanged again');
  // With the native client: it is `podwire`, the Node plugin `podwire-node` beside it; and back.
  const client = path.join(dir, 'client');
  fs.writeFileSync(client, '\x7fELF');
  t.same(installCni({ ...withDns, clientSource: client }), [path.join(opts.binDir, 'podwire-node'), path.join(opts.binDir, 'podwire')], 'the fallback, then the client');
  t.equal(fs.readFileSync(path.join(opts.binDir, 'podwire'), 'utf8'), '\x7fELF');
  t.equal(fs.readFileSync(path.join(opts.binDir, 'podwire-node'), 'utf8'), '#!/usr/bin/env node\n');
  t.equal(fs.statSync(path.join(opts.binDir, 'podwire-node')).mode & 0o777, 0o755);
  t.same(installCni({ ...withDns, clientSource: client }), [], 'unchanged');
  t.same(installCni(withDns), [path.join(opts.binDir, 'podwire')], 'without the client: the Node plugin is podwire again');
  t.notOk(fs.existsSync(path.join(opts.binDir, 'podwire-node')), 'and podwire-node is gone');
});

// The reconciler runs on a FakeClock: no sleeps, and every timing below is exact.
type Outcome = (call: number) => Promise<SyncOutcome> | SyncOutcome;
function harness(opts: ReconcilerOptions, outcome: Outcome = () => ({ ok: true }), clockStartMs?: number) {
  const clock = new FakeClock(clockStartMs);
  const t0 = clock.now();
  const calls: { at: number; reasons: string[] }[] = [];
  const errors: [string, number][] = [];
  const sync = async (reasons: string[]) => {
    calls.push({ at: clock.now() - t0, reasons });
    return outcome(calls.length);
  };
  const r = new Reconciler(sync, { ...opts, clock }, (e, retryInMs) => errors.push([e.message, retryInMs]));
  /** Moves the fake time to ms after the reconciler was made. */
  const advanceTo = (ms: number) => clock.advance(t0 + ms - clock.now());
  return { clock, r, calls, errors, advanceTo, times: () => calls.map((c) => c.at) };
}

/** A sync that does not finish until the test says so. */
function gate(): { wait: Promise<SyncOutcome>; open: () => void } {
  let open = () => undefined as void;
  const wait = new Promise<SyncOutcome>((resolve) => (open = () => resolve({ ok: true })));
  return { wait, open };
}

t.test('reconciler: a burst of requests makes one sync, coalesceMs after the first', async (t) => {
  const h = harness({});
  h.r.start();
  for (let i = 0; i < 10; i++) h.r.request(`event ${i}`);
  await h.advanceTo(19);
  t.same(h.calls, [], 'nothing before coalesceMs (default 20)');
  await h.advanceTo(20);
  t.same(h.calls, [{ at: 20, reasons: ['start', ...Array.from({ length: 10 }, (_, i) => `event ${i}`)] }], 'one sync with all 11 reasons');
  await h.advanceTo(10_000);
  t.equal(h.calls.length, 1, 'and no other');
  t.same(h.clock.pending(), [[20_000, true]], 'only the periodic resync is pending, as a background timer');
  const epoch0 = harness({}, undefined, 0);
  epoch0.r.start();
  await epoch0.advanceTo(20);
  t.same(epoch0.times(), [20], 'also on a clock that starts at 0: the first sync is no "sync" at time 0 to keep apart from');
});

t.test('reconciler: syncs start at least minIntervalMs apart, counted from the last start', async (t) => {
  const h = harness({}, (call) => (call === 1 ? new Promise((resolve) => h.clock.setTimer(30, () => resolve({ ok: true }))) : { ok: true }));
  h.r.start();
  await h.advanceTo(60); // the first sync ran from 20 to 50
  h.r.request('soon after');
  await h.advanceTo(119);
  t.same(h.times(), [20], 'not before 100 ms after the last start');
  await h.advanceTo(120);
  t.same(h.times(), [20, 120], 'exactly 100 ms after it');
  await h.advanceTo(300);
  h.r.request('long after');
  await h.advanceTo(320);
  t.same(h.times(), [20, 120, 320], 'long after the last sync only coalesceMs is waited');
});

t.test('reconciler: a failure is retried after 200 ms, doubling, capped at maxBackoffMs, reset by a success', async (t) => {
  const h = harness({ maxBackoffMs: 1000 }, (call) => {
    if (call === 2) throw new Error('netlink busy');
    return { ok: call >= 6 && call !== 7 };
  });
  h.r.start();
  await h.advanceTo(5000);
  t.same(h.times(), [20, 220, 620, 1420, 2420, 3420], 'waits 200, 400, 800, then the 1000 cap twice');
  t.same(h.calls.slice(1).map((c) => c.reasons), Array(5).fill(['retry after failure']));
  t.same(h.errors, [['netlink busy', 400]], 'a sync that throws is reported with the wait before its retry');
  h.r.request('after the success');
  await h.advanceTo(10_000);
  t.same(h.times().slice(6), [5020, 5220], 'a success resets the backoff: the next failure waits 200 ms again');
  await h.r.stop();
});

t.test('reconciler: the default backoff doubles up to 30 s', async (t) => {
  const h = harness({ resyncMs: 3_600_000 }, () => ({ ok: false }));
  h.r.start();
  await h.advanceTo(200_000);
  const waits = h.times().slice(1).map((at, i) => at - h.times()[i]!);
  t.same(waits.slice(0, 10), [200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
  await h.r.stop();
});

t.test('reconciler: one sync at a time; requests during a sync make exactly one more after it', async (t) => {
  const slow = gate();
  const h = harness({ resyncMs: 500 }, (call) => (call === 1 ? slow.wait : { ok: true }));
  h.r.start();
  await h.advanceTo(30);
  h.r.request('during a');
  await h.advanceTo(40);
  h.r.request('during b');
  await h.advanceTo(1000); // the periodic resync at 500 falls due during the sync too
  t.same(h.times(), [20], 'no second sync while the first runs');
  slow.open();
  await h.advanceTo(1019);
  t.same(h.times(), [20], 'the next one waits coalesceMs after the first ends');
  await h.advanceTo(1020);
  t.same(h.calls[1], { at: 1020, reasons: ['during a', 'during b', 'periodic resync', 'changes during sync'] });
  await h.advanceTo(1400);
  t.equal(h.calls.length, 2, 'one more, not one per request');
  await h.r.stop();
});

t.test('reconciler: a request during a short sync runs minIntervalMs after that sync started', async (t) => {
  const slow = gate();
  const h = harness({}, (call) => (call === 1 ? slow.wait : { ok: true }));
  h.r.start();
  await h.advanceTo(30);
  h.r.request('during');
  await h.advanceTo(50);
  slow.open();
  await h.advanceTo(119);
  t.same(h.times(), [20]);
  await h.advanceTo(120);
  t.same(h.calls[1], { at: 120, reasons: ['during', 'changes during sync'] });
  await h.r.stop();
});

t.test('reconciler: a periodic resync every resyncMs, whatever else syncs; none after stop()', async (t) => {
  const h = harness({ resyncMs: 1000 });
  h.r.start();
  await h.advanceTo(1500);
  h.r.request('node changed');
  await h.advanceTo(3020);
  t.same(h.calls, [
    { at: 20, reasons: ['start'] },
    { at: 1020, reasons: ['periodic resync'] },
    { at: 1520, reasons: ['node changed'] },
    { at: 2020, reasons: ['periodic resync'] },
    { at: 3020, reasons: ['periodic resync'] },
  ]);
  await h.r.stop();
  t.same(h.clock.pending(), [], 'stop() cancels every timer');
  h.r.request('after stop');
  await h.advanceTo(10_000);
  t.equal(h.calls.length, 5, 'requests after stop() are ignored');
});

t.test('reconciler: settled() resolves when no sync runs or waits, also a retry, and after stop()', async (t) => {
  const h = harness({}, (call) => ({ ok: call !== 1 }));
  await h.r.settled();
  t.pass('idle: at once');
  h.r.start();
  let settled = false;
  void h.r.settled().then(() => (settled = true));
  await h.advanceTo(20);
  t.notOk(settled, 'not while the failed sync waits for its retry');
  await h.advanceTo(220);
  t.ok(settled, 'after the retry succeeded');
  t.same(h.times(), [20, 220]);
  const h2 = harness({}, () => ({ ok: false }));
  h2.r.start();
  await h2.advanceTo(20);
  const after = h2.r.settled();
  await h2.r.stop();
  await after;
  t.pass('stop() with a retry pending wakes settled()');
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
