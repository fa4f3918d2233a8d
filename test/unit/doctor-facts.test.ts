// The file-reading parts of the doctor's fact gathering (src/agent/debug/doctor.ts): the CNI conf
// dir in the runtime's order with podwire's config recognised, and IPAM reservations no netns
// holds (recent ones and released ones never flagged); the nft chains a node should have.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expectedNftChains, ipamOrphans, readCniConf } from '../../src/agent/debug/doctor.js';

const tmp = (t: Test) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};

t.test('readCniConf', async (t) => {
  const d = tmp(t);
  fs.writeFileSync(path.join(d, '10-podwire.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'podwire', plugins: [{ type: 'podwire' }, { type: 'portmap' }] }));
  fs.writeFileSync(path.join(d, '05-bridge.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'b', type: 'bridge' }));
  fs.writeFileSync(path.join(d, '99-broken.json'), '{');
  fs.writeFileSync(path.join(d, 'README'), 'not a config');
  const got = readCniConf(d);
  t.equal(got.confDir, d);
  t.same(got.files.map((f) => [f.name, f.ours]), [['05-bridge.conf', false], ['10-podwire.conflist', true], ['99-broken.json', false]]);
  t.match(got.files[2]!.error, /^unreadable: /);
  t.same(readCniConf(path.join(d, 'absent')), { confDir: path.join(d, 'absent'), files: [] }, 'no dir: no files, no error');
  const notDir = path.join(d, 'README');
  t.match(readCniConf(notDir).error, /ENOTDIR/);
});

t.test('ipamOrphans', async (t) => {
  const d = tmp(t);
  const net = path.join(d, 'podwire');
  fs.mkdirSync(net);
  const now = Date.now();
  const put = (name: string, ageMs: number, content = 'cid-1\neth0\n') => {
    const p = path.join(net, name);
    fs.writeFileSync(p, content);
    const at = new Date(now - ageMs);
    fs.utimesSync(p, at, at);
  };
  put('10.244.1.5', 120_000, 'live-container\neth0\n');
  put('10.244.1.6', 120_000, 'gone-container\neth0\n');
  put('10.244.1.7', 5_000, 'new-container\neth0\n');
  put('last_reserved_ip.0', 120_000, '10.244.1.7');
  put('lock', 120_000, '');
  const held = new Set(['10.244.1.5']);
  t.same(ipamOrphans(d, now, (ip) => held.has(ip)), [{ network: 'podwire', ip: '10.244.1.6', containerId: 'gone-container', ifname: 'eth0' }], 'only the old reservation no netns holds');
  t.same(ipamOrphans(path.join(d, 'absent'), now, () => false), []);
});

t.test('expectedNftChains: masquerade, VXLAN notrack with a VXLAN device, the proxy once synced', async (t) => {
  const base = { masqMode: 'nftables' as const, proxyMode: 'none' as const, proxySynced: false, vxlanDevice: true };
  const notrack = ['overlay-notrack-in', 'overlay-notrack-out'];
  t.same(expectedNftChains(base), ['pod-masquerade', ...notrack], 'a VXLAN device (backend vxlan, or auto)');
  t.same(expectedNftChains({ ...base, vxlanDevice: false }), ['pod-masquerade'], 'no VXLAN device (host-gw, or before registration): no notrack chains');
  t.same(expectedNftChains({ ...base, vxlanNotrack: false }), ['pod-masquerade'], '--vxlan-notrack off');
  t.same(expectedNftChains({ ...base, masqMode: 'iptables' }), [], 'iptables masq mode: none in nft');
  t.ok(expectedNftChains({ ...base, proxyMode: 'nftables', proxySynced: true }).includes('svc-nat-prerouting'));
  t.notOk(expectedNftChains({ ...base, proxyMode: 'nftables', proxySynced: false }).includes('svc-nat-prerouting'), 'proxy not synced yet');
});
