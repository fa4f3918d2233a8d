// Chaining, as a runtime runs a conflist (libcni): [bridge-like plugin, portmap, bandwidth, tuning]
// with podwire, podwire delegating IPAM to host-local, and the reference bridge as the first
// plugin. ADD/CHECK/DEL succeed with prevResult passed through, the chained plugins find podwire's
// interfaces in it (bandwidth shapes the host veth, tuning the pod), and a port mapped on the host
// netns (8080 → 80) is reachable from another netns across an uplink (192.0.2.0/24).
import t, { type Test } from 'tap';
import path from 'node:path';
import { freshNetns, run, SKIP_NOT_ROOT } from '../lib/netns.js';
import {
  CniRuntime, describeRun, links, makePluginDir, netConf, reservations, SKIP_NO_REFERENCE, tcpFetch, tcpListener, tempDir, VARIANTS,
  veths, podNetns, type NetworkConfigList, type Variant,
} from '../lib/cni.js';

const skip = SKIP_NOT_ROOT || SKIP_NO_REFERENCE;
const PORT_MAPPINGS = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }];

function conflist(v: Variant, dataDir: string, tuningDir: string): NetworkConfigList {
  const { cniVersion, name, ...first } = netConf(v, { dataDir });
  return {
    cniVersion,
    name,
    plugins: [
      first,
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'bandwidth', ingressRate: 100_000_000, ingressBurst: 1_000_000, egressRate: 100_000_000, egressBurst: 1_000_000 },
      { type: 'tuning', sysctl: { 'net.core.somaxconn': '1234' }, dataDir: tuningDir },
    ],
  };
}

/** host netns ⇄ client netns over a veth "uplink": host 192.0.2.1/24, client 192.0.2.2/24. */
function uplink(t: Test, host: string): string {
  const client = freshNetns(t, 'cli');
  run(host, 'ip', ['link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
  run(host, 'ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'uplink']);
  run(host, 'ip', ['link', 'set', 'uplink', 'up']);
  run(client, 'ip', ['addr', 'add', '192.0.2.2/24', 'dev', 'eth0']);
  run(client, 'ip', ['link', 'set', 'eth0', 'up']);
  return client;
}

const natRules = (host: string) => run(host, 'iptables-save', ['-t', 'nat']);

for (const v of VARIANTS) {
  t.test(`${v.name} + portmap + bandwidth + tuning: ADD, CHECK, port mapping, DEL`, { skip }, async (t) => {
    const host = freshNetns(t, 'host');
    const client = uplink(t, host);
    const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
    const list = conflist(v, dataDir, tempDir(t, 'tuning'));
    const rt = new CniRuntime(makePluginDir(t), host);
    const pod = podNetns(t, 'pod');
    const att = { containerId: pod.containerId, netns: pod.path, ifname: 'eth0', capabilityArgs: { portMappings: PORT_MAPPINGS } };

    const add = await rt.addList(list, att);
    if (!t.ok(add.ok, `ADD list: ${describeRun(add)}`)) return;
    const first = add.steps[0].r.result;
    add.steps.forEach((s, i) => {
      t.same([s.config.name, s.config.cniVersion], [list.name, list.cniVersion], `${s.type} got the list's name and cniVersion`);
      if (i > 0) t.same(s.config.prevResult, add.steps[i - 1].r.result, `${s.type} got the previous plugin's result as prevResult`);
      t.same(s.config.runtimeConfig, s.type === 'portmap' ? { portMappings: PORT_MAPPINGS } : undefined, `${s.type} runtimeConfig by capability`);
    });
    t.same(add.result.ips, first.ips, 'the chain\'s final result keeps the first plugin\'s IPs');
    t.same(add.result.interfaces.slice(0, 3), first.interfaces, 'and its interfaces');
    const podIp: string = first.ips[0].address.split('/')[0];
    const hostVeth: string = first.interfaces[1].name;

    // Each chained plugin acted on what the first one reported.
    t.match(natRules(host), /--dport 8080\b.*--to-destination 10\.244\.1\.\d+:80/, 'portmap DNAT 8080 → pod:80 in the host netns');
    const qdiscs = tcQdiscs(host, hostVeth);
    t.ok(qdiscs.some((q) => q.kind === 'tbf'), `bandwidth: tbf on the host veth ${hostVeth} (qdiscs: ${qdiscs.map((q) => q.kind).join(',')})`);
    t.ok(links(host).some((l) => l.linkinfo?.info_kind === 'ifb'), 'bandwidth: ifb device for egress shaping');
    t.equal(run(pod.name, 'cat', ['/proc/sys/net/core/somaxconn']).trim(), '1234', 'tuning: sysctl applied in the pod');

    // The mapped port, from another netns, to the host netns's own address.
    await tcpListener(t, pod.name, 80, 'pod-hello-80');
    t.equal(tcpFetch(client, '192.0.2.1', 8080), 'pod-hello-80', 'client → 192.0.2.1:8080 reaches the listener in the pod');
    t.equal(tcpFetch(host, podIp, 80), 'pod-hello-80', 'host netns → pod:80 directly');

    let check = await rt.checkList(list, att);
    if (!check.ok && check.failed?.type === 'portmap' && /could not check ipv6 dnat/.test(check.failed.r.stdout)) {
      // Reference portmap bug (v1.1.1 and upstream HEAD): CHECK also checks the IPv6 DNAT chain
      // whenever ip6tables works, and ADD never made one for an IPv4-only pod. Check the rest.
      t.comment(`reference portmap CHECK fails on IPv4-only pods (${check.failed.r.stdout.trim()}); CHECK without portmap`);
      check = await rt.checkList({ ...list, plugins: list.plugins.filter((p) => p.type !== 'portmap') }, att);
    }
    t.ok(check.ok, `CHECK list: ${describeRun(check)}`);
    t.ok(check.steps.every((s) => JSON.stringify(s.config.prevResult) === JSON.stringify(add.result)), 'CHECK: every plugin got the cached result');

    const del = await rt.delList(list, att);
    t.ok(del.ok, `DEL list: ${describeRun(del)}`);
    t.same(del.steps.map((s) => s.type), ['tuning', 'bandwidth', 'portmap', v.type], 'DEL in reverse order');
    t.ok(del.steps.every((s) => JSON.stringify(s.config.prevResult) === JSON.stringify(add.result)), 'DEL: every plugin got the cached result');
    t.notMatch(natRules(host), /--dport 8080\b/, 'portmap rules gone');
    t.same(veths(host).map((l) => l.ifname), ['uplink'], 'no pod veth left, only the uplink');
    t.notOk(links(host).some((l) => l.linkinfo?.info_kind === 'ifb'), 'ifb gone');
    t.same(reservations(dataDir), [], 'no reservation left');
    t.equal(tcpFetch(client, '192.0.2.1', 8080, 1), '', 'the mapped port is closed again');

    const delAgain = await rt.delList(list, att);
    t.ok(delAgain.ok, `DEL list again (no cached result): ${describeRun(delAgain)}`);
  });
}

function tcQdiscs(ns: string, dev: string): { kind: string }[] {
  const out = run(ns, 'tc', ['-j', 'qdisc', 'show', 'dev', dev]);
  return out.trim() ? JSON.parse(out) : [];
}

