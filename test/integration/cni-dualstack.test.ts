// Dual stack: two range sets (IPv4 + IPv6) give the pod one address of each, default routes for
// both families, IPv6 reachable from the node, ipMasq entries in both maps; DEL removes all of it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { freshNetns, ipJson, SKIP_NOT_ROOT } from '../lib/netns.js';
import { describe, invokePlugin, makePluginDir, podNetns, reservations, tempDir, veths } from '../lib/cni.js';

t.test('podwire: dual-stack ADD/CHECK/DEL with ipMasq', { skip: SKIP_NOT_ROOT }, async (t) => {
  const pluginDir = makePluginDir(t);
  const host = freshNetns(t, 'host');
  const pod = podNetns(t, 'pod');
  const dataDir = tempDir(t, 'ipam');
  const conf = {
    cniVersion: '1.0.0', name: 'dual', type: 'podwire', isDefaultGateway: true, ipMasq: true,
    ipam: { type: 'podwire', ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]], dataDir },
  };
  const call = (command: string, config: unknown) =>
    invokePlugin({ pluginDir, type: 'podwire', command, containerId: 'dual1', netns: pod.name, ifname: 'eth0', config, hostNetns: host });

  const add = await call('ADD', conf);
  if (!t.equal(add.exitCode, 0, `ADD ${describe(add)}`)) return;
  t.same(add.result.ips.map((ip: any) => [ip.address, ip.gateway]), [['10.244.1.2/24', '10.244.1.1'], ['fd00:10:244:1::2/64', 'fd00:10:244:1::1']]);
  t.same(add.result.routes, [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }, { dst: '::/0', gw: 'fd00:10:244:1::1' }]);
  const v6 = ipJson(pod.name, ['-6', 'addr', 'show', 'dev', 'eth0'])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
  t.ok(v6.includes('fd00:10:244:1::2/64'), 'the pod holds its IPv6 address');
  t.ok(ipJson(pod.name, ['-6', 'route', 'show', 'default']).some((r: any) => r.gateway === 'fd00:10:244:1::1'), 'IPv6 default route');
  const bridgeV6 = ipJson(host, ['-6', 'addr', 'show', 'dev', 'cni0'])[0].addr_info.map((a: any) => a.local);
  t.ok(bridgeV6.includes('fd00:10:244:1::1'), 'the bridge holds the IPv6 gateway');
  execFileSync('ip', ['netns', 'exec', host, 'ping', '-6', '-c', '1', '-W', '2', 'fd00:10:244:1::2'], { stdio: 'ignore' });
  t.pass('the node reaches the pod over IPv6');
  const maps = execFileSync('ip', ['netns', 'exec', host, 'nft', 'list', 'table', 'inet', 'podwire-cni'], { encoding: 'utf8' });
  t.match(maps, /10\.244\.1\.2 comment "dual1\/eth0"/, 'IPv4 masquerade entry');
  t.match(maps, /fd00:10:244:1::2 comment "dual1\/eth0"/, 'IPv6 masquerade entry');

  const check = await call('CHECK', { ...conf, prevResult: add.result });
  t.equal(check.exitCode, 0, `CHECK ${describe(check)}`);

  const del = await call('DEL', { ...conf, prevResult: add.result });
  t.equal(del.exitCode, 0, `DEL ${describe(del)}`);
  t.same(reservations(dataDir), [], 'both addresses released');
  t.same(veths(host), [], 'host veth gone');
  const after = execFileSync('ip', ['netns', 'exec', host, 'nft', 'list', 'table', 'inet', 'podwire-cni'], { encoding: 'utf8' });
  t.notMatch(after, /dual1/, 'both masquerade entries gone');
});
