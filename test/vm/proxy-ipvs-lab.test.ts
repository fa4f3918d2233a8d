// The IPVS service proxy (`podwire-agent --proxy-mode ipvs`) in a 2-node lab cluster inside the
// kernel VM: the vm tier's (CI's) short run, minutes where the full suite
// (proxy-e2e-ipvs.long.ts, 3 nodes, checks 0-15) takes ~24 min under TCG and is run by hand.
// What it proves, read from the kernel (ipvsadm, ip, sysctl, nft) and from traffic:
//   1. every agent runs the ipvs proxy: the dummy podwire-ipvs0 (NOARP), kube-proxy's IPVS
//      sysctls, bridge-nf-call-iptables=1, nothing of the other modes
//   2. ClusterIP from a pod: a virtual service with both endpoints on every node, the address
//      bound on podwire-ipvs0, connections spread over both (the same-node one too: its replies
//      are bridged on cni0 and need br_netfilter), the client's IP kept
//   3. NodePort from the other node and from outside the cluster (masqueraded)
//   4. a service IP answers only on its service ports (a node listener is not reachable through it)
//   5. an endpoint removed: its real server leaves the live set on every node, new connections avoid it
//   6. services deleted: no virtual service of ours and no bound address left
// It needs root and IPVS in the kernel (scripts/kernel-vm/vm-tests loads the modules in the VM);
// it never loads a module itself, and skips, saying why, elsewhere.
import { existsSync } from 'node:fs';
import t from 'tap';
import { addPod, agentStatus, BIN, ECHO_PORT, waitFor, type ClusterNode } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import { isRoot } from '../lib/netns.js';
import { ipvsView, liveTargets, vsKey } from '../lib/proxy-e2e-ipvs-oracle.js';
import { IPVS_DEVICE, otherModesObjects } from '../lib/proxy-e2e-modes.js';
import { createService, fmt, inNetns, labelPod, probe, probeMany, sameList } from '../lib/proxy-e2e.js';

const LISTENER = 9100;
const skip = !isRoot ? 'needs root (CAP_NET_ADMIN) and network namespaces'
  : !existsSync('/proc/net/ip_vs') ? 'no IPVS in this kernel (/proc/net/ip_vs missing): run it in the kernel VM (npm run test:vm)' : false;

type ProxyStatus = { proxy?: { mode?: string; lastSync?: { error?: string } } };

t.test('ipvs service proxy in a 2-node lab cluster', { skip, timeout: 360_000 }, async (t) => {
  const t0 = Date.now();
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 1, proxyMode: 'ipvs' });
  const [n1, n2] = c.nodes as [ClusterNode, ClusterNode];
  const [p1, p2] = [c.pods.find((p) => p.node === n1.name)!, c.pods.find((p) => p.node === n2.name)!];
  const client = await addPod(c.lab, n1, 2);
  await labelPod(c, client.name, { app: 'client' });
  for (const n of c.nodes) {
    await waitFor(`${n.name}'s ipvs proxy synced`, async () => {
      const st = (await agentStatus(n)) as ProxyStatus;
      if (st.proxy?.lastSync?.error) throw new Error(st.proxy.lastSync.error);
      return st.proxy?.mode === 'ipvs' && st.proxy.lastSync !== undefined;
    }, 30_000);
  }
  t.comment(`cluster + client pod ready in ${Date.now() - t0} ms: ${p1.name}=${p1.ip} ${p2.name}=${p2.ip} client=${client.ip}`);
  const both = [p1, p2].map((p) => `${p.ip}:${ECHO_PORT}`).sort();

  await t.test('1. every node: podwire-ipvs0, the IPVS sysctls, br_netfilter, no other mode\'s objects', async (t) => {
    const want: Record<string, string> = {
      'net.ipv4.vs.conntrack': '1', 'net.ipv4.vs.expire_nodest_conn': '1', 'net.ipv4.vs.expire_quiescent_template': '1',
      'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2', 'net.bridge.bridge-nf-call-iptables': '1',
    };
    for (const n of c.nodes) {
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, inNetns(n.netns, 'sysctl', ['-n', k]).trim()]));
      t.same(got, want, `${n.name}: ${Object.entries(got).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      const [link] = JSON.parse(inNetns(n.netns, 'ip', ['-d', '-j', 'link', 'show', 'dev', IPVS_DEVICE])) as { flags: string[]; linkinfo?: { info_kind?: string } }[];
      t.ok(link?.linkinfo?.info_kind === 'dummy' && link.flags.includes('NOARP'), `${n.name}: ${IPVS_DEVICE} is a dummy link, NOARP (${link?.flags.join(',')})`);
      t.same(otherModesObjects('ipvs', n.netns), [], `${n.name}: nothing of the nftables or iptables proxy`);
    }
  });

  const web = await createService(c, 'web', { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: ECHO_PORT }] });
  const ip = web.spec.clusterIP!;
  const key = vsKey('tcp', ip, 80);

  await t.test('2. ClusterIP from a pod: both endpoints (one on the same node), the client IP kept', async (t) => {
    await waitFor('web: a virtual service with both real servers on every node', () => c.nodes.every((n) => sameList(liveTargets(ipvsView(n.netns), key), both)), 60_000);
    for (const n of c.nodes) {
      const v = ipvsView(n.netns);
      t.ok(v.bound?.includes(`${ip}/32`), `${n.name}: ${ip}/32 bound on ${IPVS_DEVICE} (${v.bound?.join(', ')})`);
      t.same(liveTargets(v, key), both, `${n.name}: ${key} -> ${both.join(', ')} (Masq, weight 1)`);
    }
    const s = await probeMany(c, client.netns, `${ip}:80`, 40, { concurrency: 4 });
    t.equal(s.ok, 40, `40 connections answered (${fmt(s)})`);
    for (const p of [p1, p2]) t.ok((s.names[p.name] ?? 0) >= 10, `${p.name} (${p.node === n1.name ? 'the client\'s node' : 'the other node'}) answered ${s.names[p.name] ?? 0} of 40 (rr)`);
    t.same(Object.keys(s.seenAs), [client.ip], 'not masqueraded: the servers saw the client pod\'s IP');
  });

  await t.test('3. NodePort from the other node and from outside the cluster', async (t) => {
    const np = await createService(c, 'web-np', { type: 'NodePort', selector: { app: 'echo' }, ports: [{ port: 80, targetPort: ECHO_PORT }] });
    const port = np.spec.ports![0]!.nodePort!;
    await waitFor(`web-np: node1 ${n1.underlayIp}:${port} has both real servers`, () => sameList(liveTargets(ipvsView(n1.netns), vsKey('tcp', n1.underlayIp, port)), both), 60_000);
    await waitFor(`web-np: node2 ${n2.underlayIp}:${port} has both real servers`, () => sameList(liveTargets(ipvsView(n2.netns), vsKey('tcp', n2.underlayIp, port)), both), 60_000);
    const names = new Set([p1.name, p2.name]);
    for (const [what, netns, target] of [['node2 → node1', n2.netns, `${n1.underlayIp}:${port}`], ['outside → node2', c.outside.netns, `${n2.underlayIp}:${port}`]] as const) {
      const s = await probeMany(c, netns, target, 10, { concurrency: 2 });
      t.ok(s.ok === 10 && Object.keys(s.names).every((n) => names.has(n)), `${what} NodePort ${target}: answered by echo pods (${fmt(s)})`);
    }
    await c.admin.delete({ plural: 'services', namespace: 'default', name: 'web-np' });
  });

  await t.test(`4. ${ip} answers only on port 80: node1's listener on 0.0.0.0:${LISTENER} is not reachable through it`, async (t) => {
    c.lab.spawn(n1.netns, process.execPath, [BIN.echo, 'serve', String(LISTENER), 'node1-listener'], { stdio: 'ignore' });
    await waitFor(`node1 listens on ${LISTENER}`, () => inNetns(n1.netns, 'ss', ['-Hltn', `sport = :${LISTENER}`]).trim() !== '', 20_000);
    const [direct, viaService] = await probe(c, client.netns, [`${n1.underlayIp}:${LISTENER}`, `${ip}:${LISTENER}`], 2000);
    t.ok(direct!.ok && direct!.name === 'node1-listener', `client pod → node1 ${n1.underlayIp}:${LISTENER}: the listener answers (${direct!.name ?? direct!.error})`);
    t.ok(!viaService!.ok && /no answer within/.test(viaService!.error ?? ''), `client pod → ${ip}:${LISTENER}: dropped (${viaService!.ok ? `answered by ${viaService!.name}` : viaService!.error})`);
  });

  await t.test('5. an endpoint removed: it leaves the live real servers on every node, new connections avoid it', async (t) => {
    await labelPod(c, p2.name, { app: 'gone' });
    const only = [`${p1.ip}:${ECHO_PORT}`];
    await waitFor(`web: only ${only[0]} live on every node`, () => c.nodes.every((n) => sameList(liveTargets(ipvsView(n.netns), key), only)), 60_000);
    for (const n of c.nodes) {
      const d = ipvsView(n.netns).services.get(key)?.dests.find((r) => r.address === p2.ip);
      t.ok(!d || d.weight === 0, `${n.name}: ${p2.ip} ${d ? `at weight 0 (${d.active} active, ${d.inactive} inactive: it drains)` : 'deleted'}`);
    }
    const s = await probeMany(c, client.netns, `${ip}:80`, 10, { concurrency: 2 });
    t.same(s.names, { [p1.name]: 10 }, `10 new connections all to ${p1.name} (${fmt(s)})`);
    await labelPod(c, p2.name, { app: 'echo' });
  });

  await t.test('6. services deleted: no virtual service of ours, no bound address', async (t) => {
    await c.admin.delete({ plural: 'services', namespace: 'default', name: 'web' });
    await waitFor('every node: web\'s virtual service and address gone', () => c.nodes.every((n) => {
      const v = ipvsView(n.netns);
      return !v.services.has(key) && !v.bound?.includes(`${ip}/32`);
    }), 60_000);
    for (const n of c.nodes) {
      const v = ipvsView(n.netns);
      t.same([...v.services.keys()], [], `${n.name}: no virtual service (kube-dns is answered node-locally, without one)`);
      t.notOk(v.bound?.includes(`${ip}/32`), `${n.name}: ${ip}/32 unbound (${v.bound?.join(', ') || 'nothing bound'})`);
    }
  });
});
