// The CNI fast path: the native client (dist/bin/podwire-cni-client, native/podwire-cni.c) hands
// the command to the agent's local API (POST /v1/cni, src/agent/cni-server.ts), which runs the
// plugin's own code. Compared with the Node plugin on the same node: the same results, errors and
// kernel state; the client falls back to the Node plugin when no agent answers; an agent that dies
// after doing an ADD but before answering yields CNI error 11 with the ADD undone, and a retry
// converges. The "agent" is test/lib/cni-agent-child.ts in the test's node netns.
import t from 'tap';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { asNetnsPath, describe, invokePlugin, makePluginDir, netConf, PODWIRE, podNetns, reservations, tempDir, veths, type InvokeResult } from '../lib/cni.js';
import { clientPluginDir, SKIP_NO_CLIENT, startCniAgent } from '../lib/cni-agent.js';
import { freshNetns, ipJson, SKIP_NOT_ROOT } from '../lib/netns.js';

const skip = SKIP_NOT_ROOT || SKIP_NO_CLIENT;

/** A result without what differs between two pods (IP, MACs, sandbox path, host veth name). */
function shape(r: InvokeResult): unknown {
  return JSON.parse(JSON.stringify(r.result ?? r.error ?? null)
    .replace(/10\.244\.1\.\d+/g, 'IP').replace(/"mac":"[0-9a-f:]+"/g, '"mac":"MAC"')
    .replace(/"sandbox":"[^"]+"/g, '"sandbox":"NETNS"').replace(/"name":"pw[0-9a-f]{12}"/g, '"name":"VETH"'));
}

/**
 * What the kernel holds for one pod, without what differs between two pods: in the pod netns its
 * links (name, MTU, flags, kind, addresses) and routes; on the node its host veth (MTU, flags,
 * master, hairpin and the other bridge-port settings). The pod IP is "IP", MACs, indexes and
 * the veth name are left out (the IPv6 link-local address, derived from the MAC, is "LINK-LOCAL").
 */
function kernelState(node: string, pod: string, hostVeth: string): unknown {
  const ip = (x: unknown) => JSON.parse(JSON.stringify(x).replace(/10\.244\.1\.(?!1")\d+/g, 'IP').replace(/"fe80::[0-9a-f:]+"/g, '"LINK-LOCAL"'));
  const links = ipJson(pod, ['-d', 'addr', 'show']).map((l: any) => ({
    ifname: l.ifname, mtu: l.mtu, flags: l.flags, operstate: l.operstate, kind: l.linkinfo?.info_kind,
    addrs: (l.addr_info ?? []).map((a: any) => ({ family: a.family, local: a.local, prefixlen: a.prefixlen, scope: a.scope, noprefixroute: a.noprefixroute })),
  }));
  const routes = ipJson(pod, ['-4', 'route', 'show', 'table', 'all']).map((r: any) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, protocol: r.protocol, scope: r.scope, type: r.type, prefsrc: r.prefsrc, flags: r.flags }));
  const [h] = ipJson(node, ['-d', 'link', 'show', 'dev', hostVeth]);
  // The bridge port's settings, without what numbers or times it (port number and id, designated
  // port/bridge/root, timers).
  const port = Object.fromEntries(Object.entries(h?.linkinfo?.info_slave_data ?? {})
    .filter(([k]) => !/^(no|id|ifindex|designated_.*|bridge_id|root_id|.*_timer)$/.test(k)));
  const host = { mtu: h?.mtu, flags: h?.flags, master: h?.master, kind: h?.linkinfo?.info_kind, port };
  return ip({ links, routes, host });
}

t.test('fast path and Node plugin: same results, errors and kernel state; fallback; agent gone mid-ADD', { skip, timeout: 180_000 }, async (t) => {
  const node = freshNetns(t, 'fast');
  const dir = tempDir(t, 'fast');
  const agent = await startCniAgent(t, node, dir);
  const nodeBin = makePluginDir(t);
  const fastBin = clientPluginDir(t);
  const dataDir = path.join(dir, 'ipam');
  const conf = { ...netConf(PODWIRE, { dataDir, cniVersion: '1.1.0' }), controlPlane: { agentSocket: agent.socket, nodeName: 'node-a' } };
  const args = (name: string) => `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};PODWIRE_LABELS=app:web`;
  const call = (bin: string, command: string, pod: { containerId: string; path: string }, name: string, config: unknown = conf, extra: Partial<Parameters<typeof invokePlugin>[0]> = {}) =>
    invokePlugin({ pluginDir: bin, hostNetns: node, type: 'podwire', command, config, containerId: pod.containerId, netns: pod.path, ifname: 'eth0', args: args(name), ...extra });
  const hostVeths = () => veths(node).map((l) => l.ifname as string).sort();

  const slow = podNetns(t, 'slow');
  const fast = podNetns(t, 'fast');
  let before = await agent.requests();
  const a1 = await call(nodeBin, 'ADD', slow, 'slow');
  t.equal(a1.exitCode, 0, `Node plugin ADD: ${describe(a1)}`);
  t.equal(await agent.requests(), before, 'the Node plugin did not go through /v1/cni');
  const a2 = await call(fastBin, 'ADD', fast, 'fast');
  t.equal(a2.exitCode, 0, `fast path ADD: ${describe(a2)}`);
  t.equal(await agent.requests(), before + 1, 'the native client\'s ADD was run by the agent (POST /v1/cni)');
  t.same(shape(a2), shape(a1), 'the same result but for the IP, MACs, sandbox and host veth name');
  t.not(a1.result?.ips?.[0]?.address, a2.result?.ips?.[0]?.address, 'two IPs from the same IPAM store');
  t.equal(reservations(dataDir).length, 2, 'both reservations in the one store');
  t.equal(hostVeths().length, 2, 'two host veths on the node');
  const hostVethOf = (r: InvokeResult) => r.result.interfaces.find((i: any) => !i.sandbox && /^pw[0-9a-f]{12}$/.test(i.name)).name as string;
  const k1 = kernelState(node, slow.name, hostVethOf(a1));
  t.same(kernelState(node, fast.name, hostVethOf(a2)), k1, 'the same kernel state: pod links, addresses, routes; host veth settings and bridge port');
  const eth0 = (k1 as { links: { ifname: string; kind?: string; addrs: { local: string }[] }[] }).links.find((l) => l.ifname === 'eth0');
  t.ok(eth0?.kind === 'veth' && eth0.addrs.some((a) => a.local === 'IP'), 'and that state is a pod: eth0 a veth holding the pod IP');
  t.match(k1, { host: { master: 'cni0', kind: 'veth' } }, 'its host end on cni0');
  t.ok((k1 as { routes: { dst: string; gateway?: string }[] }).routes.some((r) => r.dst === 'default' && r.gateway === '10.244.1.1'), 'its default route via the gateway');

  before = await agent.requests();
  for (const [bin, pod, name, what] of [[nodeBin, slow, 'slow', 'Node plugin'], [fastBin, fast, 'fast', 'fast path']] as const) {
    const prev = name === 'slow' ? a1.result : a2.result;
    const check = await call(bin, 'CHECK', pod, name, { ...conf, prevResult: prev });
    t.equal(check.exitCode, 0, `${what} CHECK: ${describe(check)}`);
  }
  // Crossed over: each pod's CHECK and DEL by the other path (same store, same kernel).
  const crossCheck = await call(fastBin, 'CHECK', slow, 'slow', { ...conf, prevResult: a1.result });
  t.equal(crossCheck.exitCode, 0, `the fast path CHECKs the Node plugin's pod: ${describe(crossCheck)}`);
  const d1 = await call(fastBin, 'DEL', slow, 'slow');
  const d2 = await call(nodeBin, 'DEL', fast, 'fast');
  t.equal(d1.exitCode, 0, `the fast path DELs the Node plugin's pod: ${describe(d1)}`);
  t.equal(d2.exitCode, 0, `the Node plugin DELs the fast path's pod: ${describe(d2)}`);
  t.equal(await agent.requests(), before + 3, 'CHECK, CHECK, DEL through the agent');
  await agent.settled();
  t.same(reservations(dataDir), [], 'no reservation left');
  t.same(hostVeths(), [], 'no host veth left');

  await t.test('errors: the same CNI error through either path', async (t) => {
    const pod = podNetns(t, 'err');
    const cases: [string, unknown, Record<string, string | undefined>][] = [
      ['empty stdin', '', {}],
      ['not JSON', '{"cniVersion":', {}],
      ['no CNI_COMMAND', conf, { CNI_COMMAND: undefined }],
      ['an unknown command', conf, { CNI_COMMAND: 'FROB' }],
      ['a bad CNI_IFNAME', conf, { CNI_IFNAME: 'a/b' }],
    ];
    for (const [what, config, env] of cases) {
      const viaNode = await call(nodeBin, 'ADD', pod, 'err', config, { env });
      const viaFast = await call(fastBin, 'ADD', pod, 'err', config, { env });
      t.ok(viaNode.exitCode === 1 && viaNode.error, `${what}, Node plugin: ${describe(viaNode)}`);
      t.same([viaFast.exitCode, viaFast.error], [viaNode.exitCode, viaNode.error], `${what}: the fast path says the same (${viaFast.error?.code} ${viaFast.error?.msg})`);
    }
    const huge = await call(fastBin, 'ADD', pod, 'err', JSON.stringify({ ...conf, pad: 'x'.repeat(17 << 20) }));
    t.match(huge, { exitCode: 1, error: { code: 6, msg: /too large/ } }, `stdin over 16 MiB: decode error from the client itself (${huge.error?.msg})`);
    t.same(hostVeths(), [], 'nothing created');
  });

  await t.test('no agent answering: the client runs the Node plugin itself', async (t) => {
    const pod = podNetns(t, 'fb');
    const noCp = netConf(PODWIRE, { dataDir, cniVersion: '1.1.0' });
    // An agent without the CNI server (--cni-server off) answers 404: nothing ran there.
    const off = http.createServer((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Route POST:/v1/cni not found"}'));
    const offSock = path.join(dir, 'off.sock');
    await new Promise<void>((r) => off.listen(offSock, r));
    t.teardown(() => new Promise<void>((r) => off.close(() => r())));
    for (const [what, config] of [['no agentSocket in the config', noCp], ['an agentSocket nobody listens on', { ...noCp, agentSocket: path.join(dir, 'nobody.sock') }], ['an agent answering 404 (--cni-server off)', { ...noCp, agentSocket: offSock }]] as const) {
      const n = await agent.requests();
      const add = await call(fastBin, 'ADD', pod, 'fb', config);
      t.equal(add.exitCode, 0, `${what}: ADD ${describe(add)}`);
      t.equal(await agent.requests(), n, `${what}: the agent was not asked`);
      const del = await call(fastBin, 'DEL', pod, 'fb', config);
      t.equal(del.exitCode, 0, `${what}: DEL ${describe(del)}`);
    }
    t.same(reservations(dataDir), [], 'no reservation left');
  });

  await t.test('the agent killed after doing an ADD, before answering: error 11, the ADD undone; the retry converges', async (t) => {
    const dir2 = tempDir(t, 'hold');
    const held = await startCniAgent(t, node, dir2, { holdMs: 20_000 });
    const conf2 = { ...conf, controlPlane: { agentSocket: held.socket, nodeName: 'node-a' } };
    const pod = { ...podNetns(t, 'hold'), containerId: `hold${'0'.repeat(60)}` };
    const pending = call(fastBin, 'ADD', pod, 'held', conf2);
    const deadline = Date.now() + 20_000;
    while (!held.out().includes('holding') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.ok(held.out().includes('holding'), 'the agent did the ADD and holds its answer');
    t.equal(reservations(dataDir).length, 1, 'the IP is reserved meanwhile');
    held.child.kill('SIGKILL');
    const add = await pending;
    t.match(add, { exitCode: 1, error: { code: 11, msg: /went away during ADD/, details: /undone/ } }, `ADD: ${describe(add)}`);
    t.same(reservations(dataDir), [], 'the reservation was released by the undo');
    t.same(hostVeths(), [], 'the host veth was removed by the undo');
    // The runtime retries (here against the first agent, still up): the ADD completes.
    const retry = await call(fastBin, 'ADD', pod, 'held');
    t.equal(retry.exitCode, 0, `the retried ADD: ${describe(retry)}`);
    const del = await call(fastBin, 'DEL', pod, 'held');
    t.equal(del.exitCode, 0, `DEL: ${describe(del)}`);
    await agent.settled();
    t.same(reservations(dataDir), [], 'nothing left');
  });
  t.ok(fs.existsSync(asNetnsPath(node)), 'the node netns is still there');
});
