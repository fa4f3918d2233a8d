// Bad input of every class (podwire only): each gets a spec error (JSON on stdout, exit status 1,
// the right code, a message) and changes nothing: no new link in the host netns or the pod, no
// reservation or temp file in the IPAM dataDir. Plus the exhausted range (a /30 with one usable
// address) and a CNI_NETNS that is not a network namespace: a regular file, a FIFO (must not block
// in open), or the plugin's own netns (/proc/self/ns/net: the plugin runs in a throwaway pw- host
// netns, so even a plugin that took it would only touch that).
import { execFileSync } from 'node:child_process';
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { freshNetns, SKIP_NOT_ROOT } from '../lib/netns.js';
import {
  describe, invokePlugin, linkNames, makePluginDir, netConf, PODWIRE, PODWIRE_HOSTLOCAL, podNetns, reservations, strayTmpFiles, tempDir,
  type InvokeResult, type Pod,
} from '../lib/cni.js';

const skip = SKIP_NOT_ROOT;

interface BadCase {
  name: string;
  codes: number[];
  config?: (base: Record<string, any>, files: Scratch) => unknown;
  containerId?: string;
  ifname?: string;
  netns?: (pod: Pod, files: Scratch) => string;
  env?: Record<string, string | undefined>;
  command?: string;
  msg?: RegExp;
}

/** Files of the case's scratch dir: a regular file and a FIFO nobody ever writes to. */
interface Scratch {
  file: string;
  fifo: string;
}

/** A cached ADD result as CHECK's prevResult: CHECK then gets as far as opening CNI_NETNS. */
const PREV_RESULT = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/run/netns/x' }], ips: [], routes: [], dns: {} };

const withRange = (extra: Record<string, string>) => (b: Record<string, any>) => ({ ...b, ipam: { ...b.ipam, ranges: [[{ ...b.ipam.ranges[0][0], ...extra }]] } });

const CASES: BadCase[] = [
  { name: 'malformed JSON', codes: [6], config: () => '{"cniVersion": "1.0.0", "name": "pwnet", "type": ' },
  { name: 'empty stdin', codes: [6], config: () => '' },
  { name: 'JSON that is not an object', codes: [6, 7], config: () => '["cniVersion", "1.0.0"]' },
  { name: 'missing CNI_COMMAND', codes: [4], env: { CNI_COMMAND: undefined } },
  { name: 'unknown CNI_COMMAND', codes: [4], command: 'ATTACH' },
  { name: 'missing CNI_CONTAINERID', codes: [4], env: { CNI_CONTAINERID: undefined } },
  { name: 'missing CNI_NETNS', codes: [4], env: { CNI_NETNS: undefined } },
  { name: 'missing CNI_IFNAME', codes: [4], env: { CNI_IFNAME: undefined } },
  { name: 'missing CNI_PATH', codes: [4], env: { CNI_PATH: undefined } },
  { name: 'container ID with ../', codes: [4], containerId: '../../../tmp/pw-escape' },
  { name: 'container ID with /', codes: [4], containerId: 'abc/def' },
  { name: 'container ID starting with a dot', codes: [4], containerId: '.hidden' },
  { name: 'ifname of 16 characters', codes: [4, 7], ifname: 'eth0123456789abc' },
  { name: 'ifname with /', codes: [4, 7], ifname: 'et/h0' },
  { name: 'ifname ..', codes: [4, 7], ifname: '..' },
  { name: 'ifname with a space', codes: [4, 7], ifname: 'eth 0' },
  { name: 'subnet /33', codes: [7], config: withRange({ subnet: '10.244.1.0/33' }), msg: /10\.244\.1\.0\/33/ },
  { name: 'subnet with octet 300', codes: [7], config: withRange({ subnet: '10.244.300.0/24' }), msg: /10\.244\.300\.0/ },
  { name: 'subnet not a CIDR', codes: [7], config: withRange({ subnet: 'banana' }), msg: /banana/ },
  { name: 'rangeStart outside the subnet', codes: [7], config: withRange({ rangeStart: '10.244.2.10' }), msg: /10\.244\.2\.10/ },
  { name: 'rangeEnd before rangeStart', codes: [7], config: withRange({ rangeStart: '10.244.1.100', rangeEnd: '10.244.1.50' }) },
  { name: 'gateway outside the subnet', codes: [7], config: withRange({ gateway: '10.9.9.9' }), msg: /10\.9\.9\.9/ },
  { name: 'subnet 0.0.0.0/0', codes: [7], config: withRange({ subnet: '0.0.0.0/0' }), msg: /0\.0\.0\.0\/0.*covers every address/ },
  { name: 'subnet prefix with a leading zero', codes: [7], config: withRange({ subnet: '10.0.0.0/08' }), msg: /10\.0\.0\.0\/08/ },
  { name: 'type {}', codes: [7], config: (b) => ({ ...b, type: {} }), msg: /config field type/ },
  { name: 'type -1', codes: [7], config: (b) => ({ ...b, type: -1 }), msg: /config field type/ },
  { name: 'dns a string', codes: [7], config: (b) => ({ ...b, dns: 'nameserver 10.96.0.10' }), msg: /config field dns/ },
  { name: 'runtimeConfig 0', codes: [7], config: (b) => ({ ...b, runtimeConfig: 0 }), msg: /config field runtimeConfig/ },
  { name: 'runtimeConfig an array', codes: [7], config: (b) => ({ ...b, runtimeConfig: [] }), msg: /config field runtimeConfig/ },
  { name: 'args 1.5', codes: [7], config: (b) => ({ ...b, args: 1.5 }), msg: /config field args/ },
  { name: 'unsupported cniVersion 9.9.9', codes: [1], config: (b) => ({ ...b, cniVersion: '9.9.9' }), msg: /9\.9\.9/ },
  { name: 'cniVersion missing', codes: [1, 7], config: (b) => ({ ...b, cniVersion: undefined }) },
  { name: 'network name missing', codes: [7], config: (b) => ({ ...b, name: undefined }) },
  { name: 'mtu not a number', codes: [7], config: (b) => ({ ...b, mtu: 'big' }) },
  { name: 'delegated ipam plugin not in CNI_PATH', codes: [5, 7, 102], config: (b) => ({ ...b, ipam: { ...b.ipam, type: 'no-such-ipam' } }), msg: /no-such-ipam/ },
  { name: 'CNI_NETNS is a regular file', codes: [3, 4, 5, 7, 100], netns: (_p, f) => f.file },
  { name: 'CNI_NETNS is a FIFO (ADD)', codes: [4], netns: (_p, f) => f.fifo, msg: /CNI_NETNS.*not a network namespace/ },
  { name: 'CNI_NETNS is a FIFO (CHECK)', codes: [4], command: 'CHECK', config: (b) => ({ ...b, prevResult: PREV_RESULT }), netns: (_p, f) => f.fifo, msg: /CNI_NETNS/ },
  { name: "CNI_NETNS is the plugin's own netns", codes: [4], netns: () => '/proc/self/ns/net', msg: /CNI_NETNS.*plugin's own/ },
  { name: 'subnetFile is a FIFO', codes: [7], config: (b, f) => ({ ...b, ipam: undefined, subnetFile: f.fifo }), msg: /subnetFile.*not a regular file/ },
  // The control plane is never reached (nothing listens on port 9 of loopback): the plugin must fail on the file first.
  { name: 'controlPlane.tokenFile is a FIFO', codes: [105], config: (b, f) => ({ ...b, controlPlane: { server: 'http://127.0.0.1:9', tokenFile: f.fifo, nodeName: 'n1' } }), msg: /credentials.*not a regular file/ },
  { name: 'controlPlane.caFile is a FIFO', codes: [105], config: (b, f) => ({ ...b, controlPlane: { server: 'https://127.0.0.1:9', tokenFile: f.file, caFile: f.fifo, nodeName: 'n1' } }), msg: /credentials.*not a regular file/ },
  { name: 'CNI_NETNS does not exist', codes: [3, 4, 5, 7, 100], netns: () => '/run/netns/pw-no-such-netns' },
  { name: 'CHECK without prevResult', codes: [7], command: 'CHECK' },
];

/** The error contract: exit 1, exactly one JSON error object on stdout with a listed code and a message. */
function expectError(t: Test, r: InvokeResult, codes: number[], msg?: RegExp, config?: unknown): void {
  t.equal(r.exitCode, 1, `exit status 1 (${describe(r)})`);
  // SPEC.md "Error": cniVersion is "the same value as provided by the configuration" (when it is one we speak).
  const wanted = (config as { cniVersion?: unknown } | undefined)?.cniVersion;
  if (typeof wanted === 'string' && ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'].includes(wanted)) t.equal(r.error?.cniVersion, wanted, 'error cniVersion = the config\'s');
  t.ok(r.error, 'stdout is a CNI error object');
  t.ok(codes.includes(r.error?.code ?? -1), `code ${r.error?.code} is one of ${codes.join('/')}`);
  t.ok(typeof r.error?.msg === 'string' && r.error.msg.length > 0, `msg: ${r.error?.msg}`);
  if (msg) t.match(r.error?.msg + ' ' + (r.error?.details ?? ''), msg, 'the message names the offending value');
}

t.test('podwire: every bad input class is refused with its code and changes nothing', { skip }, async (t) => {
  const bin = makePluginDir(t);
  const pod = podNetns(t, 'pod');
  const dir = tempDir(t, 'bad');
  const dataDir = path.join(dir, 'ipam');
  const scratch: Scratch = { file: path.join(dir, 'not-a-netns'), fifo: path.join(dir, 'fifo') };
  fs.writeFileSync(scratch.file, 'just a file\n');
  execFileSync('mkfifo', [scratch.fifo]);
  const base = netConf(PODWIRE, { dataDir });
  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      const host = freshNetns(t, 'host'); // one per case: a leftover cannot hide the next case's
      const config = c.config ? c.config(base, scratch) : base;
      const r = await invokePlugin({
        pluginDir: bin, hostNetns: host, type: 'podwire', command: c.command ?? 'ADD', config,
        containerId: c.containerId ?? pod.containerId, netns: c.netns ? c.netns(pod, scratch) : pod.path, ifname: c.ifname ?? 'eth0', env: c.env,
        timeoutMs: 15_000, // a plugin blocked (in open() of a FIFO, say) is killed and fails the case
      });
      expectError(t, r, c.codes, c.msg, config);
      t.same(linkNames(host), ['lo'], 'no link created in the host netns');
      t.same(linkNames(pod.name), ['lo'], 'no link created in the pod');
      t.same(reservations(dataDir), [], 'no reservation file');
      t.same(strayTmpFiles(dataDir), [], 'no temp file');
      t.equal(fs.readFileSync(scratch.file, 'utf8'), 'just a file\n', 'the regular file is untouched');
    });
  }
  t.notOk(fs.existsSync('/tmp/pw-escape'), 'a hostile container ID wrote nothing outside the dataDir');
});

for (const v of [PODWIRE, PODWIRE_HOSTLOCAL]) {
  t.test(`${v.name}: exhausted range (/30, one usable address): the second ADD fails clearly and leaves nothing`, { skip }, async (t) => {
    const host = freshNetns(t, 'host');
    const bin = makePluginDir(t);
    const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
    const conf = netConf(v, { dataDir, subnet: '10.244.9.0/30' });
    const [p1, p2] = [podNetns(t, 'p1'), podNetns(t, 'p2')];
    const add = (pod: Pod) => invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command: 'ADD', config: conf, containerId: pod.containerId, netns: pod.path, ifname: 'eth0' });
    const first = await add(p1);
    if (!t.equal(first.exitCode, 0, `first ADD ${describe(first)}`)) return;
    t.equal(first.result.ips[0].address, '10.244.9.2/30', 'the only usable address');
    const linksBefore = linkNames(host);
    const second = await add(p2);
    expectError(t, second, v.ipamType === 'podwire' ? [101] : [100, 101, 102, 999], /no (free )?(ip )?address|exhausted|available|full/i, conf);
    t.same(linkNames(host), linksBefore, 'no veth left in the host netns');
    t.same(linkNames(p2.name), ['lo'], 'nothing left in the second pod');
    t.same(reservations(dataDir).map((r) => r.ip), ['10.244.9.2'], 'still one reservation, the first pod\'s');
    t.same(strayTmpFiles(dataDir), [], 'no temp file');
  });
}
