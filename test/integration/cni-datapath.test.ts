// Real traffic through what the plugins built: two pods on the same bridge ping each other, the
// gateway and the host netns, and reach each other over TCP (podwire, podwire+host-local and the
// reference bridge). Then podwire's node-subnet configurations: the config of the issue as
// written (isDefaultGateway plus an ipam default route) and a config without ipam that reads the
// node subnet, MTU and masquerade setting from a flannel-style subnet.env.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freshNetns, ipJson, run, SKIP_NOT_ROOT } from '../lib/netns.js';
import {
  describe, GATEWAY, inetAddrs, invokePlugin, makePluginDir, netConf, ping, PODWIRE, podNetns, reservations, SKIP_NO_REFERENCE, tcpFetch,
  tcpListener, tempDir, VARIANTS, veths, type Pod,
} from '../lib/cni.js';

const skip = SKIP_NOT_ROOT || SKIP_NO_REFERENCE;

for (const v of VARIANTS) {
  t.test(`${v.name}: two pods on cni0 ping and reach each other over TCP`, { skip }, async (t) => {
    const host = freshNetns(t, 'host');
    const bin = makePluginDir(t);
    const conf = netConf(v, { dataDir: path.join(tempDir(t, 'ipam'), 'ipam') });
    const pods = [podNetns(t, 'p1'), podNetns(t, 'p2')];
    const results: any[] = [];
    for (const pod of pods) {
      const r = await invokePlugin({ pluginDir: bin, hostNetns: host, type: v.type, command: 'ADD', config: conf, containerId: pod.containerId, netns: pod.path, ifname: 'eth0' });
      if (!t.equal(r.exitCode, 0, `ADD ${describe(r)}`)) return;
      results.push(r.result);
    }
    const ips: string[] = results.map((r) => r.ips[0].address.split('/')[0]);
    t.not(ips[0], ips[1], `distinct IPs ${ips.join(' ')}`);
    // The reference pins the bridge MAC when it adds the gateway address (else the bridge takes the
    // lowest port MAC and changes as pods come and go: containernetworking/cni#285).
    const bridgeMac = ipJson(host, ['link', 'show', 'dev', 'cni0'])[0]?.address;
    t.same([results[0].interfaces[0].mac, results[1].interfaces[0].mac], [bridgeMac, bridgeMac], 'cni0 MAC stable across ADDs, as both results report');
    const [a, b] = pods;
    t.ok(ping(a.name, ips[1]), 'pod 1 pings pod 2');
    t.ok(ping(b.name, ips[0]), 'pod 2 pings pod 1');
    t.ok(ping(a.name, GATEWAY), 'pod pings the gateway');
    t.ok(ping(host, ips[0]) && ping(host, ips[1]), 'the host netns pings both pods');
    await tcpListener(t, b.name, 8080, 'hello-from-p2');
    t.equal(tcpFetch(a.name, ips[1], 8080), 'hello-from-p2', 'pod 1 → pod 2 over TCP');
    await tcpListener(t, a.name, 9090, 'hello-from-p1');
    t.equal(tcpFetch(b.name, ips[0], 9090), 'hello-from-p1', 'pod 2 → pod 1 over TCP');

    // The port whose MAC an unpinned bridge would have taken goes away: the bridge MAC must not move.
    const del = await invokePlugin({ pluginDir: bin, hostNetns: host, type: v.type, command: 'DEL', config: { ...conf, prevResult: results[0] }, containerId: a.containerId, netns: a.path, ifname: 'eth0' });
    t.equal(del.exitCode, 0, `DEL pod 1 ${describe(del)}`);
    t.equal(ipJson(host, ['link', 'show', 'dev', 'cni0'])[0]?.address, bridgeMac, 'cni0 MAC unchanged after the first pod left');
    t.ok(ping(b.name, GATEWAY), 'pod 2 still reaches the gateway');
  });
}

async function addOne(t: Test, bin: string, host: string, pod: Pod, config: object) {
  const r = await invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command: 'ADD', config, containerId: pod.containerId, netns: pod.path, ifname: 'eth0' });
  t.equal(r.exitCode, 0, `ADD ${describe(r)}`);
  return r;
}

t.test('podwire: isDefaultGateway plus an ipam route 0.0.0.0/0 (the issue\'s config) gives one default route', { skip }, async (t) => {
  // The reference bridge (v1.1.1 and upstream) fails this ADD with "file exists": it appends its
  // own default route because the ipam one has no gw. podwire must accept the config it documents.
  const host = freshNetns(t, 'host');
  const bin = makePluginDir(t);
  const pod = podNetns(t, 'pod');
  const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
  const conf = netConf(PODWIRE, { dataDir, routes: [{ dst: '0.0.0.0/0' }] });
  const r = await addOne(t, bin, host, pod, conf);
  if (r.exitCode !== 0) return;
  t.same(r.result.routes.filter((x: any) => x.dst === '0.0.0.0/0').length, 1, 'one default route in the result');
  t.same(ipJson(pod.name, ['-4', 'route', 'show', 'default']).map((x: any) => x.gateway), [GATEWAY], 'one default route in the pod, via the gateway');
  t.ok(ping(pod.name, GATEWAY), 'pod pings the gateway');
  const del = await invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command: 'DEL', config: { ...conf, prevResult: r.result }, containerId: pod.containerId, netns: pod.path, ifname: 'eth0' });
  t.equal(del.exitCode, 0, `DEL ${describe(del)}`);
  t.same(reservations(dataDir), [], 'released');
});

function subnetEnvConf(t: Test, masq: boolean) {
  const subnetFile = path.join(tempDir(t, 'subnet'), 'subnet.env');
  fs.writeFileSync(subnetFile, `PODWIRE_NETWORK=10.244.0.0/16\nPODWIRE_SUBNET=10.244.7.1/24\nPODWIRE_MTU=1450\nPODWIRE_IPMASQ=${masq}\n`);
  // Without ipam the reservations go to podwire's default store: a network name of our own, removed after.
  const name = `pwtest-${randomBytes(4).toString('hex')}`;
  const store = path.join('/var/lib/podwire/networks', name);
  t.teardown(() => fs.rmSync(store, { recursive: true, force: true }));
  return { store, conf: { cniVersion: '1.0.0', name, type: 'podwire', bridge: 'cni0', subnetFile } };
}

const del1 = (bin: string, host: string, pod: Pod, conf: object, prevResult: unknown) =>
  invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command: 'DEL', config: { ...conf, prevResult }, containerId: pod.containerId, netns: pod.path, ifname: 'eth0' });

t.test('podwire: no ipam → node subnet and MTU from subnet.env, flannel defaults; PODWIRE_IPMASQ=true leaves masquerade to the agent', { skip }, async (t) => {
  const host = freshNetns(t, 'host');
  const bin = makePluginDir(t);
  const pods = [podNetns(t, 'p1'), podNetns(t, 'p2')];
  const { store, conf } = subnetEnvConf(t, true);
  const results = [];
  for (const pod of pods) {
    const r = await addOne(t, bin, host, pod, conf);
    if (r.exitCode !== 0) return;
    results.push(r.result);
  }
  const [ip1, ip2] = results.map((r) => r.ips[0]);
  t.match(ip1.address, /^10\.244\.7\.\d+\/24$/, `pod IP from PODWIRE_SUBNET: ${ip1.address}`);
  t.equal(ip1.gateway, '10.244.7.1', 'gateway = PODWIRE_SUBNET\'s address');
  t.ok(inetAddrs(host, 'cni0').includes('10.244.7.1/24'), 'bridge holds 10.244.7.1/24 (isGateway by default, like flannel)');
  t.same(ipJson(pods[0].name, ['-4', 'route', 'show', 'default']).map((x: any) => x.gateway), ['10.244.7.1'], 'default route (isDefaultGateway by default)');
  const [eth0] = ipJson(pods[0].name, ['link', 'show', 'dev', 'eth0']);
  t.equal(eth0?.mtu, 1450, 'pod MTU = PODWIRE_MTU');
  const [hv] = ipJson(host, ['link', 'show', 'dev', results[0].interfaces[1].name]);
  t.equal(hv?.mtu, 1450, 'host veth MTU = PODWIRE_MTU');
  t.equal(hv?.linkinfo?.info_slave_data?.hairpin, true, 'hairpin on by default, like flannel');
  t.ok(ping(pods[0].name, ip2.address.split('/')[0]), 'pods ping each other');
  t.notMatch(run(host, 'nft', ['list', 'ruleset']), /masquerade/, 'flannel convention: PODWIRE_IPMASQ=true means the agent masquerades, not the plugin');
  const explicit = podNetns(t, 'p3');
  const r3 = await addOne(t, bin, host, explicit, { ...conf, ipMasq: true });
  if (r3.exitCode !== 0) return;
  t.notMatch(run(host, 'nft', ['list', 'ruleset']), /masquerade/, 'ipMasq: true in the config while the agent masquerades: still no per-pod rule (no firewall exec per pod)');
  t.equal((await del1(bin, host, explicit, { ...conf, ipMasq: true }, r3.result)).exitCode, 0, 'DEL of the ipMasq: true pod');
  for (const [i, pod] of pods.entries()) {
    const del = await del1(bin, host, pod, conf, results[i]);
    t.equal(del.exitCode, 0, `DEL ${describe(del)}`);
  }
  t.same(veths(host), [], 'no veth left');
  t.same(reservations(store), [], 'no reservation left in the default store');
});

t.test('podwire: subnet.env with PODWIRE_IPMASQ=false → the plugin masquerades the pod, and DEL takes it back', { skip }, async (t) => {
  const host = freshNetns(t, 'host');
  const bin = makePluginDir(t);
  const pod = podNetns(t, 'p1');
  const { store, conf } = subnetEnvConf(t, false);
  const r = await addOne(t, bin, host, pod, conf);
  if (r.exitCode !== 0) return;
  const ip = r.result.ips[0].address.split('/')[0];
  const ruleset = run(host, 'nft', ['list', 'ruleset']);
  t.match(ruleset, /masquerade/, 'a masquerade rule in the host netns');
  t.match(ruleset, new RegExp(`\\b${ip.replace(/\./g, '\\.')}\\b`), `the pod IP ${ip} is in the ruleset`);
  const del = await del1(bin, host, pod, conf, r.result);
  t.equal(del.exitCode, 0, `DEL ${describe(del)}`);
  t.notMatch(run(host, 'nft', ['list', 'ruleset']), new RegExp(`\\b${ip.replace(/\./g, '\\.')}\\b`), 'the pod IP is gone from the ruleset');
  t.same(reservations(store), [], 'released');

  // The agent starts masquerading the node (PODWIRE_IPMASQ=true): a per-pod entry left from before
  // is no longer current; the next GC removes it although its pod is still valid.
  const pod2 = podNetns(t, 'p2');
  const r2 = await addOne(t, bin, host, pod2, conf);
  if (r2.exitCode !== 0) return;
  const ip2 = r2.result.ips[0].address.split('/')[0];
  t.match(run(host, 'nft', ['list', 'ruleset']), new RegExp(`\\b${ip2.replace(/\./g, '\\.')}\\b`), `per-pod entry for ${ip2}`);
  fs.writeFileSync(conf.subnetFile, fs.readFileSync(conf.subnetFile, 'utf8').replace('PODWIRE_IPMASQ=false', 'PODWIRE_IPMASQ=true'));
  const gc = await invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command: 'GC', config: { ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: pod2.containerId, ifname: 'eth0' }] } });
  t.equal(gc.exitCode, 0, `GC ${describe(gc)}`);
  t.notMatch(run(host, 'nft', ['list', 'ruleset']), new RegExp(`\\b${ip2.replace(/\./g, '\\.')}\\b`), 'GC under PODWIRE_IPMASQ=true removed the obsolete per-pod entry');
  t.ok(ping(pod2.name, '10.244.7.1'), 'the pod itself is untouched (still reaches its gateway)');
  t.equal((await del1(bin, host, pod2, conf, r2.result)).exitCode, 0, 'DEL');
  t.same(reservations(store), [], 'released');
});
