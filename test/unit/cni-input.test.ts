// The CNI plugin's input layer: environment, network config, subnet.env, prevResult and result
// versions. Pure: no kernel, no files except a temp subnet.env.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, parseSubnetEnv } from '../../src/cni/config.js';
import { parseEnv, parseCniArgs } from '../../src/cni/env.js';
import { CniError } from '../../src/cni/errors.js';
import { formatResult, parsePrevResult } from '../../src/cni/result.js';
import { hostVethName, isHostVethName } from '../../src/cni/names.js';

const base = { cniVersion: '1.0.0', name: 'pwnet', type: 'podwire', ipam: { type: 'podwire', ranges: [[{ subnet: '10.244.1.0/24' }]] } };
const conf = (over: Record<string, unknown> = {}) => JSON.stringify({ ...base, ...over });
const env = (over: Record<string, string | undefined> = {}) => ({
  CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...over,
});

function code(fn: () => unknown): number | string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof CniError ? err.code : `not a CniError: ${(err as Error).message}`;
  }
}

t.test('env: required variables per command, hostile values refused with code 4', async (t) => {
  const e = parseEnv(env({ CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0', CNI_PATH: '/a::/b' }));
  t.equal(e.command, 'ADD');
  t.same([...e.args], [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web-0']]);
  t.same(e.path, ['/a', '/b']);
  t.equal(code(() => parseEnv(env({ CNI_COMMAND: undefined }))), 4);
  t.equal(code(() => parseEnv(env({ CNI_COMMAND: 'add' }))), 4, 'commands are upper case');
  for (const k of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']) t.equal(code(() => parseEnv(env({ [k]: undefined }))), 4, `ADD without ${k}`);
  t.equal(code(() => parseEnv(env({ CNI_COMMAND: 'DEL', CNI_NETNS: undefined }))), 'no error', 'DEL may come without a netns');
  t.equal(code(() => parseEnv({ CNI_COMMAND: 'VERSION' })), 'no error');
  for (const id of ['../etc', 'a/b', '-lead', 'a b', 'x'.repeat(256), '.hidden']) t.equal(code(() => parseEnv(env({ CNI_CONTAINERID: id }))), 4, `container id ${JSON.stringify(id.slice(0, 20))}`);
  for (const n of ['eth0/x', 'a'.repeat(16), '..', 'e th0', 'a:b']) t.equal(code(() => parseEnv(env({ CNI_IFNAME: n }))), 4, `ifname ${JSON.stringify(n)}`);
  t.equal(code(() => parseEnv(env({ CNI_NETNS: 'relative/ns' }))), 4);
  t.equal(code(() => parseCniArgs('novalue')), 4);
  t.equal(code(() => parseCniArgs('=v')), 4);
});

t.test('config: defaults like the reference bridge, errors with spec codes', async (t) => {
  const c = parseConfig(conf());
  t.match(c, { bridge: 'cni0', isGateway: false, isDefaultGateway: false, ipMasq: false, mtu: 1500, hairpinMode: false });
  t.same(c.ipam.ranges, [[{ subnet: '10.244.1.0/24' }]]);
  t.equal(parseConfig(conf({ isDefaultGateway: true })).isGateway, true, 'isDefaultGateway implies isGateway');
  t.equal(code(() => parseConfig('{not json')), 6);
  t.equal(code(() => parseConfig('[]')), 6);
  t.equal(code(() => parseConfig(conf({ cniVersion: '9.9.9' }))), 1);
  t.equal(code(() => parseConfig(conf({ name: '../x' }))), 7);
  t.equal(code(() => parseConfig(conf({ mtu: 20 }))), 7);
  t.equal(code(() => parseConfig(conf({ isGateway: 'yes' }))), 7);
  t.equal(code(() => parseConfig(conf({ bridge: 'a'.repeat(16) }))), 7);
  t.equal(code(() => parseConfig(conf({ vlan: 100 }))), 2, 'a bridge option podwire lacks is refused, not ignored');
  t.equal(code(() => parseConfig(conf({ ipam: { type: 'podwire', ranges: [[{ subnet: '10.244.1.0/33' }]] } }))), 7);
  t.equal(code(() => parseConfig(conf({ ipam: { type: 'podwire', ranges: [[{ subnet: '10.244.1.0/24', rangeStart: '10.9.9.9' }]] } }))), 7);
  t.equal(code(() => parseConfig(conf({ ipam: { type: 'podwire', ranges: [] } }))), 7);
  t.equal(code(() => parseConfig(conf({ ipam: { type: 'podwire', ranges: [[{ subnet: '10.244.1.0/24' }]], dataDir: 'rel' } }))), 7);
  t.equal(code(() => parseConfig(conf({ ipam: { type: '../../bin/sh' } }))), 7, 'an IPAM type is a plugin name, not a path');
  t.equal(parseConfig(conf({ ipam: { type: 'host-local', subnet: '10.1.0.0/16' } })).ipam.type, 'host-local');
  const legacy = parseConfig(conf({ ipam: { type: 'podwire', subnet: '10.5.0.0/24', gateway: '10.5.0.254' } }));
  t.same(legacy.ipam.ranges, [[{ subnet: '10.5.0.0/24', gateway: '10.5.0.254' }]], "host-local's single-range form");
});

t.test('config: fields of the wrong type are refused with code 7 naming the field, never ignored', async (t) => {
  const refused = (over: Record<string, unknown>, field: RegExp, what: string) => {
    t.equal(code(() => parseConfig(conf(over))), 7, what);
    t.throws(() => parseConfig(conf(over)), { message: field }, `${what}: the message names the field`);
  };
  refused({ type: {} }, /config field type /, 'type {}');
  refused({ type: -1 }, /config field type /, 'type -1');
  refused({ type: '../podwire' }, /config field type /, 'type a path');
  refused({ dns: 'nameserver 1.1.1.1' }, /config field dns must be an object/, 'dns a string');
  refused({ dns: { nameservers: '1.1.1.1' } }, /config field dns\.nameservers must be a list/, 'dns.nameservers a string');
  refused({ dns: { nameservers: ['1.1.1.x'] } }, /config field dns\.nameservers\[0\] "1\.1\.1\.x" is not an IP address/, 'dns.nameservers not IPs');
  refused({ dns: { domain: 7 } }, /config field dns\.domain must be a string/, 'dns.domain a number');
  refused({ dns: { search: [1] } }, /config field dns\.search\[0\] must be a string/, 'dns.search not strings');
  refused({ runtimeConfig: 0 }, /config field runtimeConfig must be an object/, 'runtimeConfig 0');
  refused({ runtimeConfig: [] }, /config field runtimeConfig must be an object/, 'runtimeConfig an array');
  refused({ args: 1.5 }, /config field args must be an object/, 'args 1.5');
  refused({ args: { cni: 'x' } }, /config field args\.cni must be an object/, 'args.cni a string');
  t.same(parseConfig(conf({ dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'], options: ['ndots:5'] } })).dns,
    { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'], options: ['ndots:5'] }, 'a well-formed dns section is kept');
});

t.test('config: CIDRs are canonical text and a pod subnet must be one a pod can use', async (t) => {
  const withSubnet = (subnet: string) => conf({ ipam: { type: 'podwire', ranges: [[{ subnet }]] } });
  for (const subnet of ['0.0.0.0/0', '::/0', '10.0.0.0/08', '10.244.1.0/024', '127.0.0.0/24', '0.0.0.0/8', '224.0.0.0/24', 'ff02::/64', 'fe80::/64']) {
    t.equal(code(() => parseConfig(withSubnet(subnet))), 7, `subnet ${subnet} refused`);
    t.throws(() => parseConfig(withSubnet(subnet)), { message: new RegExp(`subnet "${subnet.replace(/[./]/g, '\\$&')}"`) }, `the message names ${subnet}`);
  }
  t.throws(() => parseConfig(withSubnet('0.0.0.0/0')), { message: /prefix length 0 covers every address/ });
  t.throws(() => parseConfig(withSubnet('10.0.0.0/08')), { message: /prefix length "08": write it without leading zeros/ });
  t.equal(code(() => parseConfig(conf({ ipam: { type: 'podwire', ranges: [[{ subnet: '10.244.1.0/24' }]], routes: [{ dst: '10.0.0.0/08' }] } }))), 7, 'a route dst with a leading zero');
  t.equal(code(() => parseConfig(withSubnet('10.0.0.0/8'))), 'no error', '10.0.0.0/8 is fine');
  t.equal(code(() => parseConfig(withSubnet('240.0.0.0/24'))), 'no error', 'class E (used for pods by some clusters) is allowed');
});

t.test('config: MAC and IPs requested through runtimeConfig, args or CNI_ARGS', async (t) => {
  t.match(parseConfig(conf({ runtimeConfig: { mac: '0A:58:0A:F4:01:05', ips: ['10.244.1.5/24'] } })), { mac: '0a:58:0a:f4:01:05', requestedIps: ['10.244.1.5'] });
  t.match(parseConfig(conf(), { cniArgs: new Map([['IP', '10.244.1.7'], ['MAC', '0a:58:00:00:00:01']]) }), { mac: '0a:58:00:00:00:01', requestedIps: ['10.244.1.7'] });
  t.equal(code(() => parseConfig(conf({ runtimeConfig: { mac: '01:00:5e:00:00:01' } }))), 7, 'multicast MAC');
  t.equal(code(() => parseConfig(conf({ runtimeConfig: { ips: ['10.1.2'] } }))), 7);
});

t.test('config without ipam: the node subnet from subnet.env, flannel defaults', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cni-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'subnet.env');
  fs.writeFileSync(file, 'PODWIRE_NETWORK=10.244.0.0/16\nPODWIRE_SUBNET=10.244.3.1/24\nPODWIRE_MTU=1450\nPODWIRE_IPMASQ=true\n');
  const c = parseConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'pw', type: 'podwire', subnetFile: file }));
  t.match(c, { isGateway: true, isDefaultGateway: true, hairpinMode: true, ipMasq: false, ipMasqByNode: true, mtu: 1450 });
  const explicit = parseConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'pw', type: 'podwire', subnetFile: file, ipMasq: true }));
  t.match(explicit, { ipMasq: false, ipMasqByNode: true }, 'ipMasq: true while the agent masquerades the node (PODWIRE_IPMASQ=true): no per-pod rule');
  t.equal(code(() => parseConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'pw', type: 'podwire', subnetFile: file, ipMasq: 'yes' }))), 7, 'ipMasq is still validated');
  const noAgentMasq = path.join(dir, 'nomasq.env');
  fs.writeFileSync(noAgentMasq, 'PODWIRE_NETWORK=10.244.0.0/16\nPODWIRE_SUBNET=10.244.3.1/24\nPODWIRE_IPMASQ=false\n');
  t.match(parseConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'pw', type: 'podwire', subnetFile: noAgentMasq })), { ipMasq: true, ipMasqByNode: false }, 'PODWIRE_IPMASQ=false: the plugin masquerades per pod');
  t.match(parseConfig(conf({ ipMasq: true })), { ipMasq: true, ipMasqByNode: false }, 'an ipam section (no agent file): per pod, as the bridge plugin');
  t.same(c.ipam.ranges, [[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }]]);
  t.same(c.ipam.routes, [{ dst: '10.244.0.0/16' }]);
  t.equal(code(() => parseConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'pw', subnetFile: path.join(dir, 'missing') }))), 11, 'no agent yet: try again later');
  const big = path.join(dir, 'big.env');
  fs.writeFileSync(big, `PODWIRE_NETWORK=10.244.0.0/16\nPODWIRE_SUBNET=10.244.3.1/24\n#${'x'.repeat(70_000)}\n`);
  const fromFile = (subnetFile: string) => () => parseConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'pw', type: 'podwire', subnetFile }));
  t.equal(code(fromFile(big)), 7, 'a subnetFile larger than SUBNET_FILE_MAX (64 KiB) is refused, not read whole');
  t.throws(fromFile(big), { message: /subnetFile: .*big\.env is \d+ bytes, more than the 65536 allowed/ });
  t.equal(code(fromFile(dir)), 7, 'a directory as subnetFile');
  t.throws(fromFile(dir), { message: /subnetFile: .* is a directory, not a regular file/ });
  const everything = path.join(dir, 'all.env');
  fs.writeFileSync(everything, 'PODWIRE_NETWORK=0.0.0.0/0\nPODWIRE_SUBNET=0.0.0.1/0\n');
  t.equal(code(fromFile(everything)), 7, 'PODWIRE_SUBNET 0.0.0.1/0 (the bridge would get 0.0.0.1/0)');
  t.throws(fromFile(everything), { message: /all\.env PODWIRE_SUBNET "0\.0\.0\.1\/0": .*prefix length 0 covers every address/ });
  t.equal(code(() => parseSubnetEnv('PODWIRE_NETWORK=10.0.0.0/08\nPODWIRE_SUBNET=10.0.1.1/24\n', 'f')), 7, 'PODWIRE_NETWORK with a leading zero');
  t.equal(code(() => parseSubnetEnv('PODWIRE_NETWORK=10.0.0.0/8\n', 'f')), 7);
  t.equal(code(() => parseSubnetEnv('PODWIRE_NETWORK=10.0.0.0/8\nPODWIRE_SUBNET=10.0.1.1/24\nPODWIRE_MTU=9x\n', 'f')), 7);
});

t.test('results per version; prevResult of any version read back', async (t) => {
  const r = {
    interfaces: [{ name: 'cni0', mac: 'aa:aa:aa:aa:aa:aa' }, { name: 'pw0', mac: 'bb:bb:bb:bb:bb:bb' }, { name: 'eth0', mac: 'cc:cc:cc:cc:cc:cc', mtu: 1500, sandbox: '/run/netns/p' }],
    ips: [{ address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 2 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
    dns: {},
  };
  const v04 = formatResult(r, '0.4.0') as any;
  t.same(v04.ips, [{ version: '4', interface: 2, address: '10.244.1.2/24', gateway: '10.244.1.1' }]);
  t.notOk('mtu' in v04.interfaces[2], 'no mtu before 1.1.0');
  const v10 = formatResult(r, '1.0.0') as any;
  t.same(v10.ips, [{ interface: 2, address: '10.244.1.2/24', gateway: '10.244.1.1' }]);
  t.equal((formatResult(r, '1.1.0') as any).interfaces[2].mtu, 1500);
  t.same(parsePrevResult(v04), { ...r, interfaces: r.interfaces.map(({ mtu: _, ...i }) => i) }, '0.4.0 result reads back');
  t.equal(code(() => parsePrevResult({ ips: [{ address: 'x' }] })), 6);
  t.equal(code(() => parsePrevResult({ interfaces: [], ips: [{ address: '10.0.0.1/24', interface: 3 }] })), 6);
});

t.test('host veth names: deterministic, short, recognisable', async (t) => {
  const n = hostVethName('abc', 'eth0');
  t.equal(n, hostVethName('abc', 'eth0'));
  t.not(n, hostVethName('abc', 'eth1'));
  t.equal(n.length, 14);
  t.ok(isHostVethName(n));
  t.notOk(isHostVethName('veth1234'));
});

t.test('env: VERSION and GC ignore attachment variables (libcni sends CNI_NETNS=dummy with VERSION)', async (t) => {
  t.equal(code(() => parseEnv({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_CONTAINERID: 'x/y' })), 'no error');
  t.equal(code(() => parseEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/x', CNI_NETNS: 'dummy' })), 'no error');
});
