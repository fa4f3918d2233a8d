// CNI conformance, the same cases against podwire (own IPAM), podwire delegating IPAM to the
// reference host-local, and the reference bridge+host-local: ADD result shape for every cniVersion
// checked against the kernel (ip -j -d), CHECK after ADD, DEL cleanup, idempotent DEL in all its
// forms, and CHECK drift detection. Plugins run as a runtime runs them, inside a test host netns.
import t, { type Test } from 'tap';
import path from 'node:path';
import { deleteNetns } from '../../src/netns/netns.js';
import { freshNetns, ipJson, run, SKIP_NOT_ROOT } from '../lib/netns.js';
import {
  describe, eventually, GATEWAY, inetAddrs, invokePlugin, makePluginDir, netConf, PODWIRE, podNetns, reservations, SKIP_NO_REFERENCE,
  tempDir, VARIANTS, veths, type InvokeResult, type Pod, type Variant,
} from '../lib/cni.js';

const skip = SKIP_NOT_ROOT || SKIP_NO_REFERENCE;

interface Node {
  host: string;
  bin: string;
  dataDir: string;
}

function node(t: Test): Node {
  return { host: freshNetns(t, 'host'), bin: makePluginDir(t), dataDir: path.join(tempDir(t, 'ipam'), 'ipam') };
}

function cni(n: Node, v: Variant, command: string, pod: Pod, config: object, extra: { ifname?: string; netns?: string } = {}): Promise<InvokeResult> {
  return invokePlugin({
    pluginDir: n.bin, hostNetns: n.host, type: v.type, command, config,
    containerId: pod.containerId, netns: extra.netns ?? pod.path, ifname: extra.ifname ?? 'eth0',
  });
}

const owned = (n: Node, pod: Pod) => reservations(n.dataDir).filter((r) => r.owner.includes(pod.containerId));
const versionsOf = (v: Variant) => (v === PODWIRE ? ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] : ['0.3.1', '0.4.0', '1.0.0']);
const older = (version: string) => version.startsWith('0.');

/** The ADD result against the kernel: every claim in it is checked with ip -j -d. */
function checkAddResult(t: Test, v: Variant, n: Node, pod: Pod, version: string, r: InvokeResult): void {
  const res = r.result;
  t.equal(res.cniVersion, version, 'result cniVersion is the config one');
  t.equal(res.interfaces?.length, 3, 'interfaces: bridge, host veth, container');
  const [br, hv, ct] = res.interfaces ?? [];
  t.equal(br?.name, 'cni0');
  t.match(hv?.name, v.hostVethRe, `host veth name ${hv?.name}`);
  t.notOk(hv?.sandbox, 'host veth has no sandbox');
  t.same([ct?.name, ct?.sandbox], ['eth0', pod.path], 'container interface eth0 in the pod netns');
  t.equal(res.ips?.length, 1, 'one IP');
  const ip = res.ips?.[0] ?? {};
  t.match(ip.address, /^10\.244\.1\.\d+\/24$/);
  t.equal(ip.gateway, GATEWAY);
  t.equal(ip.interface, 2, 'ips[0].interface points at the container interface');
  t.equal(ip.version, older(version) ? '4' : undefined, older(version) ? 'ips[].version "4" before 1.0.0' : 'no ips[].version from 1.0.0 on');
  const defaults = (res.routes ?? []).filter((x: any) => x.dst === '0.0.0.0/0');
  t.same(defaults, [{ dst: '0.0.0.0/0', gw: GATEWAY }], 'exactly one default route, via the gateway');
  t.type(res.dns, 'object', 'dns present');

  // The kernel, pod side.
  const [eth0] = ipJson(pod.name, ['link', 'show', 'dev', 'eth0']);
  t.ok(eth0?.flags.includes('UP'), 'eth0 up');
  t.equal(eth0?.address, ct?.mac, 'eth0 MAC as reported');
  t.equal(eth0?.mtu, 1500, 'eth0 MTU');
  t.same(inetAddrs(pod.name, 'eth0'), [ip.address], 'eth0 has exactly the reported address');
  const routes = ipJson(pod.name, ['-4', 'route', 'show', 'default']);
  t.same(routes.map((x: any) => `${x.gateway} ${x.dev}`), [`${GATEWAY} eth0`], 'pod default route via the gateway');
  // The kernel, host side.
  const [host] = hv ? ipJson(n.host, ['link', 'show', 'dev', hv.name]) : [];
  t.equal(host?.master, 'cni0', 'host veth is a port of cni0');
  t.equal(host?.ifindex, eth0?.link_index, 'host veth is eth0\'s peer');
  t.equal(host?.address, hv?.mac, 'host veth MAC as reported');
  t.equal(host?.mtu, 1500, 'host veth MTU');
  t.ok(host?.flags.includes('UP'), 'host veth up');
  t.equal(host?.linkinfo?.info_slave_data?.hairpin, true, 'hairpin on the bridge port');
  const [bridge] = ipJson(n.host, ['link', 'show', 'dev', 'cni0']);
  t.equal(bridge?.linkinfo?.info_kind, 'bridge');
  t.equal(bridge?.address, br?.mac, 'bridge MAC as reported');
  t.ok(inetAddrs(n.host, 'cni0').includes(`${GATEWAY}/24`), 'bridge holds the gateway address (isGateway)');
  t.equal(run(n.host, 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim(), '1', 'IPv4 forwarding on in the host netns (isGateway)');
  t.same(owned(n, pod).map((x) => x.ip), [ip.address?.split('/')[0]], 'one reservation file, for the reported IP');
}

for (const v of VARIANTS) {
  t.test(`${v.name}: ADD result per cniVersion, CHECK, DEL`, { skip }, async (t) => {
    const n = node(t);
    for (const version of versionsOf(v)) {
      await t.test(`cniVersion ${version}`, async (t) => {
        const pod = podNetns(t, 'pod');
        const conf = netConf(v, { cniVersion: version, dataDir: n.dataDir });
        const add = await cni(n, v, 'ADD', pod, conf);
        if (!t.equal(add.exitCode, 0, `ADD ${describe(add)}`) || !add.result) return;
        checkAddResult(t, v, n, pod, version, add);
        if (!older(version)) {
          const check = await cni(n, v, 'CHECK', pod, { ...conf, prevResult: add.result });
          t.equal(check.exitCode, 0, `CHECK right after ADD: ${describe(check)}`);
        }
        const hostVeth = add.result.interfaces[1].name;
        const del = await cni(n, v, 'DEL', pod, { ...conf, prevResult: add.result });
        t.equal(del.exitCode, 0, `DEL ${describe(del)}`);
        t.equal(del.stdout.trim(), '', 'DEL prints nothing on success');
        t.same(owned(n, pod), [], 'reservation released');
        t.notOk(veths(n.host).some((l) => l.ifname === hostVeth), 'host veth removed');
        t.same(ipJson(pod.name, ['link', 'show']).map((l: any) => l.ifname), ['lo'], 'only lo left in the pod');
      });
    }
  });

  t.test(`${v.name}: DEL is idempotent (twice, netns gone, no netns, unknown container, other ifname)`, { skip }, async (t) => {
    const n = node(t);
    const conf = netConf(v, { dataDir: n.dataDir });
    const [a, b, c, d, keep] = ['a', 'b', 'c', 'd', 'keep'].map((l) => podNetns(t, l));
    const keepAdd = await cni(n, v, 'ADD', keep, conf);
    t.equal(keepAdd.exitCode, 0, `ADD (bystander) ${describe(keepAdd)}`);
    const keepVeth = keepAdd.result?.interfaces?.[1]?.name;
    const bystanderIntact = (what: string) => {
      t.equal(owned(n, keep).length, 1, `${what}: the bystander keeps its reservation`);
      t.ok(veths(n.host).some((l) => l.ifname === keepVeth), `${what}: the bystander keeps its host veth`);
    };

    const addA = await cni(n, v, 'ADD', a, conf);
    t.equal(addA.exitCode, 0, `ADD a ${describe(addA)}`);
    for (const round of ['first', 'second']) {
      const del = await cni(n, v, 'DEL', a, { ...conf, prevResult: addA.result });
      t.equal(del.exitCode, 0, `${round} DEL ${describe(del)}`);
    }
    t.same(owned(n, a), [], 'DEL twice: released');
    t.equal(veths(n.host).length, 1, 'DEL twice: only the bystander veth left');

    const addB = await cni(n, v, 'ADD', b, conf);
    t.equal(addB.exitCode, 0, `ADD b ${describe(addB)}`);
    deleteNetns(b.name);
    const delB = await cni(n, v, 'DEL', b, { ...conf, prevResult: addB.result });
    t.equal(delB.exitCode, 0, `DEL after the netns was deleted: ${describe(delB)}`);
    t.same(owned(n, b), [], 'netns gone: released');
    t.ok(await eventually(() => veths(n.host).length === 1), 'netns gone: its host veth goes too');

    const addC = await cni(n, v, 'ADD', c, conf);
    t.equal(addC.exitCode, 0, `ADD c ${describe(addC)}`);
    const delC = await cni(n, v, 'DEL', c, { ...conf, prevResult: addC.result }, { netns: '' });
    t.equal(delC.exitCode, 0, `DEL with CNI_NETNS empty: ${describe(delC)}`);
    t.same(owned(n, c), [], 'CNI_NETNS empty: released');
    if (v.podwire) {
      // The reference bridge cannot find the host end without the netns; podwire names it from (containerId, ifname).
      t.notOk(veths(n.host).some((l) => l.ifname === addC.result?.interfaces?.[1]?.name), 'CNI_NETNS empty: podwire still removes the host veth');
    }
    await cni(n, v, 'DEL', c, conf);

    const delD = await cni(n, v, 'DEL', d, conf);
    t.equal(delD.exitCode, 0, `DEL of a container never added: ${describe(delD)}`);
    const delOther = await cni(n, v, 'DEL', keep, conf, { ifname: 'eth1' });
    t.equal(delOther.exitCode, 0, `DEL of another ifname of a live container: ${describe(delOther)}`);
    bystanderIntact('after all the DELs');
    t.same(inetAddrs(keep.name, 'eth0'), [keepAdd.result?.ips?.[0]?.address], 'the bystander pod keeps its address');
  });

  t.test(`${v.name}: CHECK detects drift precisely`, { skip }, async (t) => {
    const n = node(t);
    const pod = podNetns(t, 'pod');
    const conf = netConf(v, { dataDir: n.dataDir });
    const add = await cni(n, v, 'ADD', pod, conf);
    if (!t.equal(add.exitCode, 0, `ADD ${describe(add)}`)) return;
    const checkConf = { ...conf, prevResult: add.result };
    const address: string = add.result.ips[0].address;
    const hostVeth: string = add.result.interfaces[1].name;
    const check = () => cni(n, v, 'CHECK', pod, checkConf);
    const expectDrift = async (what: string, msg: RegExp) => {
      const r = await check();
      t.not(r.exitCode, 0, `${what}: CHECK fails (${describe(r)})`);
      t.ok(r.error && typeof r.error.code === 'number', `${what}: error JSON with a code on stdout`);
      t.match(r.error?.msg ?? '', msg, `${what}: the message says what drifted`);
      if (v.podwire) t.ok((r.error?.code ?? 0) >= 100, `${what}: plugin-specific code (got ${r.error?.code})`);
    };
    const restore = async (what: string) => {
      const r = await check();
      t.equal(r.exitCode, 0, `${what} restored: CHECK ok again (${describe(r)})`);
    };
    t.equal((await check()).exitCode, 0, 'CHECK ok after ADD');

    run(pod.name, 'ip', ['addr', 'del', address, 'dev', 'eth0']); // takes the default route with it
    await expectDrift('address removed', new RegExp(`${address.split('/')[0].replace(/\./g, '\\.')}|addr`, 'i'));
    run(pod.name, 'ip', ['addr', 'add', address, 'dev', 'eth0']);
    run(pod.name, 'ip', ['route', 'replace', 'default', 'via', GATEWAY, 'dev', 'eth0']);
    await restore('address');

    run(pod.name, 'ip', ['route', 'del', 'default']);
    await expectDrift('default route removed', /route/i);
    run(pod.name, 'ip', ['route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0']);
    await restore('route');

    run(n.host, 'ip', ['link', 'set', hostVeth, 'nomaster']);
    await expectDrift('host veth detached from cni0', /cni0|bridge|master/i);
    run(n.host, 'ip', ['link', 'set', hostVeth, 'master', 'cni0']);
    run(n.host, 'ip', ['link', 'set', hostVeth, 'type', 'bridge_slave', 'hairpin', 'on']); // a new port starts with hairpin off
    await restore('bridge port');

    const del = await cni(n, v, 'DEL', pod, checkConf);
    t.equal(del.exitCode, 0, `DEL ${describe(del)}`);
  });
}

t.test('every variant: the config arrives on stdin only once the plugin waits for it (a slow runtime writer) → ADD and DEL still work', { skip }, async (t) => {
  for (const v of VARIANTS) {
    const n = node(t);
    const pod = podNetns(t, 'late');
    const conf = netConf(v, { dataDir: n.dataDir });
    const late = (command: string, config: object) => invokePlugin({
      pluginDir: n.bin, hostNetns: n.host, type: v.type, command, config, containerId: pod.containerId, netns: pod.path, ifname: 'eth0', lateStdin: true,
    });
    const add = await late('ADD', conf);
    t.equal(add.exitCode, 0, `${v.name}: late stdin, ADD ${describe(add)}`);
    const del = await late('DEL', add.result ? { ...conf, prevResult: add.result } : conf);
    t.equal(del.exitCode, 0, `${v.name}: late stdin, DEL ${describe(del)}`);
    t.same(owned(n, pod), [], `${v.name}: released`);
  }
});
