// The CNI 1.1.0 operations (podwire only: the reference plugins stop at spec 1.0.0). GC keeps the
// attachments in cni.dev/valid-attachments, keyed by (containerID, ifname), and releases every
// other reservation and host veth, never a link podwire does not own. STATUS is ready only while
// the range has a free address. VERSION lists every supported version.
import t from 'tap';
import path from 'node:path';
import { freshNetns, ipJson, run, SKIP_NOT_ROOT } from '../lib/netns.js';
import {
  CniRuntime, describe, describeRun, eventually, invokePlugin, makePluginDir, netConf, ping, PODWIRE, podNetnsList, reservations,
  strayTmpFiles, tempDir, veths, type NetworkConfigList, type Pod,
} from '../lib/cni.js';

const skip = SKIP_NOT_ROOT;

function single(conf: Record<string, any>): NetworkConfigList {
  const { cniVersion, name, ...plugin } = conf;
  return { cniVersion, name, plugins: [plugin] };
}

const att = (pod: Pod, ifname = 'eth0') => ({ containerId: pod.containerId, netns: pod.path, ifname });
const valid = (...xs: [Pod, string][]) => xs.map(([p, ifname]) => ({ containerID: p.containerId, ifname }));

t.test('podwire GC: keeps the valid attachments, releases the rest, leaves foreign links alone', { skip }, async (t) => {
  const host = freshNetns(t, 'host');
  const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
  const list = single(netConf(PODWIRE, { cniVersion: '1.1.0', dataDir }));
  const rt = new CniRuntime(makePluginDir(t), host);
  const pods = podNetnsList(t, 3);
  const results: any[] = [];
  for (const pod of pods) {
    const add = await rt.addList(list, att(pod));
    if (!t.ok(add.ok, `ADD ${describeRun(add)}`)) return;
    results.push(add.result);
  }
  const [a, b, c] = pods;
  const ipOf = (i: number): string => results[i].ips[0].address.split('/')[0];
  const vethOf = (i: number): string => results[i].interfaces[1].name;
  // A link podwire does not own, on its bridge: GC must not touch it.
  run(host, 'ip', ['link', 'add', 'vethforeign', 'type', 'veth', 'peer', 'name', 'vethforeign1']);
  run(host, 'ip', ['link', 'set', 'vethforeign', 'master', 'cni0']);
  const held = () => reservations(dataDir).map((r) => r.ip);
  const hostVeths = () => veths(host).map((l) => l.ifname as string);

  const gc1 = await rt.gcList(list, valid([a, 'eth0'], [c, 'eth0']));
  t.ok(gc1.ok, `GC [a, c]: ${describeRun(gc1)}`);
  t.equal(gc1.steps[0]?.r.stdout.trim(), '', 'GC prints nothing on success');
  t.same(held(), [ipOf(0), ipOf(2)].sort((x, y) => x.localeCompare(y, 'en', { numeric: true })), 'b\'s reservation released, a\'s and c\'s kept');
  t.notOk(hostVeths().includes(vethOf(1)), 'b\'s host veth removed');
  t.ok(hostVeths().includes(vethOf(0)) && hostVeths().includes(vethOf(2)), 'a\'s and c\'s host veths kept');
  t.ok(await eventually(() => !ipJson(b.name, ['link', 'show']).some((l: any) => l.ifname === 'eth0')), 'b\'s eth0 went with its peer');
  t.ok(ping(host, ipOf(0)) && ping(host, ipOf(2)), 'a and c still answer');
  t.ok(hostVeths().includes('vethforeign'), 'a foreign veth on cni0 is left alone');

  // Keyed by (containerID, ifname): a's eth1 is not a's eth0.
  const gc2 = await rt.gcList(list, valid([a, 'eth1'], [c, 'eth0']));
  t.ok(gc2.ok, `GC [a/eth1, c/eth0]: ${describeRun(gc2)}`);
  t.same(held(), [ipOf(2)], 'a/eth0 released: the valid entry named another ifname');
  t.notOk(hostVeths().includes(vethOf(0)), 'a\'s host veth removed');

  const gc3 = await rt.gcList(list, []);
  t.ok(gc3.ok, `GC []: ${describeRun(gc3)}`);
  t.same(held(), [], 'an empty valid list releases everything');
  t.same(hostVeths().sort(), ['vethforeign', 'vethforeign1'], 'only the foreign veth pair is left');
  t.same(strayTmpFiles(dataDir), [], 'no temp file');

  const gc4 = await rt.gcList(list, []);
  t.ok(gc4.ok, `GC again with nothing to do: ${describeRun(gc4)}`);
  const del = await rt.delList(list, att(c));
  t.ok(del.ok, `DEL after GC released it: ${describeRun(del)}`);
});

t.test('podwire GC of one network leaves another network on the same bridge alone', { skip }, async (t) => {
  const host = freshNetns(t, 'host');
  const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
  const net = (name: string, subnet: string) => single({ ...netConf(PODWIRE, { cniVersion: '1.1.0', name, dataDir, subnet }), bridge: 'pwpbr1' });
  const [neta, netb] = [net('neta', '10.252.1.0/24'), net('netb', '10.252.2.0/24')];
  const rt = new CniRuntime(makePluginDir(t), host);
  const [c1, c2, c3] = podNetnsList(t, 3);
  const adds = [await rt.addList(neta, att(c1)), await rt.addList(netb, att(c2, 'eth1')), await rt.addList(neta, att(c3))];
  if (!adds.every((a, i) => t.ok(a.ok, `ADD ${i}: ${describeRun(a)}`))) return;
  const vethOf = (i: number): string => adds[i]!.result.interfaces[1].name;
  const hostVeths = () => veths(host).map((l) => l.ifname as string);
  const held = () => reservations(dataDir).map((r) => r.ip);
  t.same(held(), ['10.252.1.2', '10.252.1.3', '10.252.2.2'], 'three reservations before GC');

  const gc = await rt.gcList(neta, valid([c1, 'eth0']));
  t.ok(gc.ok, `GC neta [c1/eth0]: ${describeRun(gc)}`);
  t.ok(hostVeths().includes(vethOf(1)), "netb's host veth of c2/eth1 is kept");
  t.ok(ipJson(c2.name, ['link', 'show']).some((l: any) => l.ifname === 'eth1'), "c2's eth1 is still there");
  t.ok(ping(host, '10.252.2.2'), 'c2 still answers on netb');
  t.ok(hostVeths().includes(vethOf(0)), "neta's valid c1/eth0 is kept");
  t.notOk(hostVeths().includes(vethOf(2)), "neta's stale c3/eth0 host veth is removed");
  t.same(held(), ['10.252.1.2', '10.252.2.2'], "only neta's stale reservation is released");

  const gcb = await rt.gcList(netb, []);
  t.ok(gcb.ok, `GC netb []: ${describeRun(gcb)}`);
  t.same(hostVeths(), [vethOf(0)], "netb's GC removed c2 and left neta's c1");
  t.same(held(), ['10.252.1.2'], "netb's reservation released, neta's kept");
});

t.test('podwire STATUS: ok while the range has a free address, 50 when exhausted, ok again after DEL', { skip }, async (t) => {
  const host = freshNetns(t, 'host');
  const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
  const list = single(netConf(PODWIRE, { cniVersion: '1.1.0', dataDir, subnet: '10.244.9.0/30' }));
  const rt = new CniRuntime(makePluginDir(t), host);
  const [pod] = podNetnsList(t, 1);

  const s1 = await rt.statusList(list);
  t.ok(s1.ok, `STATUS on a fresh node: ${describeRun(s1)}`);
  t.equal(s1.steps[0]?.r.stdout.trim(), '', 'STATUS prints nothing when ready');
  t.same(veths(host), [], 'STATUS changed nothing');
  t.same(reservations(dataDir), [], 'STATUS reserved nothing');

  const add = await rt.addList(list, att(pod));
  if (!t.ok(add.ok, `ADD takes the only address: ${describeRun(add)}`)) return;
  const s2 = await rt.statusList(list);
  t.notOk(s2.ok, 'STATUS fails when the range is exhausted');
  const err = s2.failed?.r.error;
  t.equal(err?.code, 50, `code 50 (not available): ${s2.failed ? describe(s2.failed.r) : ''}`);
  t.match(err?.msg ?? '', /exhaust|no free|full|available/i, 'the message says why');
  t.equal(err?.cniVersion, '1.1.0', 'error cniVersion = the config\'s');

  const del = await rt.delList(list, att(pod));
  t.ok(del.ok, `DEL ${describeRun(del)}`);
  const s3 = await rt.statusList(list);
  t.ok(s3.ok, `STATUS ready again: ${describeRun(s3)}`);

  const broken = single(netConf(PODWIRE, { cniVersion: '1.1.0', dataDir, subnet: '10.244.9.0/33' }));
  const s4 = await rt.statusList(broken);
  t.notOk(s4.ok, 'STATUS with an unusable config fails');
  t.ok([7, 50].includes(s4.failed?.r.error?.code ?? -1), `code 7 or 50: ${s4.failed ? describe(s4.failed.r) : ''}`);
});

t.test('podwire VERSION: every supported version, whatever the config version', { skip }, async (t) => {
  const host = freshNetns(t, 'host');
  const bin = makePluginDir(t);
  for (const cniVersion of ['0.3.1', '1.0.0', '1.1.0']) {
    const r = await invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command: 'VERSION', config: { cniVersion } });
    t.equal(r.exitCode, 0, `VERSION with cniVersion ${cniVersion}: ${describe(r)}`);
    t.equal(r.result?.cniVersion, '1.1.0', 'answers with the newest version it speaks');
    t.same([...(r.result?.supportedVersions ?? [])].sort(), ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'], 'supportedVersions');
  }
});
