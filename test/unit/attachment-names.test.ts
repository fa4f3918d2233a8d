// Container IDs and interface names are checked by one module (src/netlink/names.ts) for the four
// places that take them: the CNI environment (cni/env.ts, error 4), masquerade owners
// (cni/masq.ts), IPAM owners (ipam/store.ts) and netlink link names (netlink/link.ts, the
// kernel's rule only). Every place must agree on every name: before, the IPAM store took container
// IDs of 1,024 characters and interface names of 64, and CNI_IFNAME took names ipMasq then refused.
import t from 'tap';
import { parseEnv } from '../../src/cni/env.js';
import { CniError } from '../../src/cni/errors.js';
import { validateOwner as masqOwner } from '../../src/cni/masq.js';
import { parseValidAttachments } from '../../src/cni/config-fields.js';
import { validateOwner as ipamOwner } from '../../src/ipam/store.js';
import { encodeLinkAdd } from '../../src/netlink/link.js';
import { containerIdProblem, ifnameProblem, kernelIfnameProblem } from '../../src/netlink/names.js';

const ok = (fn: () => unknown): boolean => {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
};
const cniCode = (fn: () => unknown): number | 'ok' | 'other' => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return e instanceof CniError ? e.code : 'other';
  }
};
const env = (containerId: string, ifname: string) => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: '/run/netns/x', CNI_IFNAME: ifname, CNI_PATH: '/opt/cni/bin' });

const GOOD_IDS = ['a', 'abc123', 'A.b_c-d', '0'.repeat(64), 'x'.repeat(255)];
const BAD_IDS = ['', '-lead', '.hidden', '_x', 'a/b', '../etc', 'a b', 'a:b', 'a"b', 'a~b', 'a\nb', 'a\0b', 'é', 'x'.repeat(256), 'x'.repeat(1024)];
const GOOD_IFNAMES = ['eth0', 'net1', 'e', 'a'.repeat(15), 'eth0.100', 'veth-x_1', 'a..b', '%x', 'x@y'];
const BAD_IFNAMES = ['', '.', '..', 'a'.repeat(16), 'a'.repeat(64), 'eth/0', 'a:b', 'e th0', 'eth\t0', 'eth0\n', 'a\0b', 'et"h0', "et'h0", 'et\\h0', 'eth\u00e9', 'eth\u00a00'];

t.test('container IDs: the CNI spec pattern, at most 255 characters, the same in env, masquerade, IPAM and GC', async (t) => {
  for (const id of GOOD_IDS) {
    const what = JSON.stringify(id.slice(0, 20));
    t.equal(containerIdProblem(id), undefined, `${what}: valid`);
    t.equal(cniCode(() => parseEnv(env(id, 'eth0'))), 'ok', `${what}: CNI_CONTAINERID taken`);
    t.ok(ok(() => masqOwner({ containerId: id, ifname: 'eth0' })), `${what}: masquerade owner taken`);
    t.ok(ok(() => ipamOwner({ containerId: id, ifname: 'eth0' })), `${what}: IPAM owner taken`);
    t.ok(ok(() => parseValidAttachments({ 'cni.dev/valid-attachments': [{ containerID: id, ifname: 'eth0' }] })), `${what}: valid attachment taken`);
  }
  for (const id of BAD_IDS) {
    const what = JSON.stringify(id.slice(0, 20));
    t.type(containerIdProblem(id), 'string', `${what}: invalid (${containerIdProblem(id)})`);
    t.equal(cniCode(() => parseEnv(env(id, 'eth0'))), 4, `${what}: CNI_CONTAINERID refused with error 4`);
    t.notOk(ok(() => masqOwner({ containerId: id, ifname: 'eth0' })), `${what}: masquerade owner refused`);
    t.throws(() => ipamOwner({ containerId: id, ifname: 'eth0' }), { name: 'IpamError', kind: 'invalid' }, `${what}: IPAM owner refused`);
    t.equal(cniCode(() => parseValidAttachments({ 'cni.dev/valid-attachments': [{ containerID: id, ifname: 'eth0' }] })), 7, `${what}: valid attachment refused with error 7`);
  }
});

t.test('interface names: the kernel\'s rule, and printable ASCII without quotes or backslash for attachments', async (t) => {
  for (const name of GOOD_IFNAMES) {
    const what = JSON.stringify(name);
    t.equal(ifnameProblem(name), undefined, `${what}: valid`);
    t.equal(cniCode(() => parseEnv(env('abc', name))), 'ok', `${what}: CNI_IFNAME taken`);
    t.ok(ok(() => masqOwner({ containerId: 'abc', ifname: name })), `${what}: masquerade owner taken`);
    t.ok(ok(() => ipamOwner({ containerId: 'abc', ifname: name })), `${what}: IPAM owner taken`);
    t.ok(ok(() => encodeLinkAdd({ kind: 'bridge', name })), `${what}: a netlink link name`);
  }
  for (const name of BAD_IFNAMES) {
    const what = JSON.stringify(name);
    t.type(ifnameProblem(name), 'string', `${what}: invalid (${ifnameProblem(name)})`);
    t.equal(cniCode(() => parseEnv(env('abc', name))), 4, `${what}: CNI_IFNAME refused with error 4`);
    t.notOk(ok(() => masqOwner({ containerId: 'abc', ifname: name })), `${what}: masquerade owner refused`);
    t.throws(() => ipamOwner({ containerId: 'abc', ifname: name }), { name: 'IpamError', kind: 'invalid' }, `${what}: IPAM owner refused`);
    t.equal(cniCode(() => parseValidAttachments({ 'cni.dev/valid-attachments': [{ containerID: 'abc', ifname: name }] })), 7, `${what}: valid attachment refused with error 7`);
    // netlink keeps the kernel's rule: it refuses exactly what the kernel would.
    t.equal(ok(() => encodeLinkAdd({ kind: 'bridge', name })), kernelIfnameProblem(name) === undefined, `${what}: netlink ${kernelIfnameProblem(name) ?? 'takes it (the kernel would)'}`);
  }
  t.equal(kernelIfnameProblem('eth\u00e9'), undefined, 'the kernel takes UTF-8 of 15 bytes or less');
  t.equal(kernelIfnameProblem('\u00e9'.repeat(8)), 'longer than 15 bytes', 'bytes, not characters');
});

t.test('errors say what is wrong with the value, and give the rule', async (t) => {
  t.throws(() => parseEnv(env('abc', 'a'.repeat(16))), { message: /^invalid CNI_IFNAME "a{16}": longer than 15 bytes$/, details: /1-15 printable ASCII/ });
  t.throws(() => parseEnv(env('-x', 'eth0')), { message: /^invalid CNI_CONTAINERID "-x": must start with a letter or digit/, details: /1-255 characters/ });
  t.throws(() => ipamOwner({ containerId: 'abc', ifname: 'et"h0' }), { message: /^owner\.ifname "et\\"h0": contains a quote or backslash \(an interface name is/ });
  t.throws(() => masqOwner({ containerId: 'x'.repeat(256), ifname: 'eth0' }), { message: /^ipMasq: invalid container ID "x+": longer than 255 characters/ });
  t.throws(() => encodeLinkAdd({ kind: 'bridge', name: 'a:b' }), { message: /^invalid interface name "a:b": contains whitespace, "\/" or ":"/ });
});
