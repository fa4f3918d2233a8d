// Not in the vm tier (~24 min under TCG, past CI's budget): run it in the kernel VM by hand, e.g. a job with
// `modprobe -a ip_vs ip_vs_rr br_netfilter dummy; PODWIRE_KERNEL_VM=1 node dist/test/vm/proxy-e2e-ipvs.long.js` (scripts/kernel-vm/run --mem 4096 JOB 2400).
// The IPVS service proxy (`podwire-agent --proxy-mode ipvs`) end to end in a 3-node lab cluster,
// inside the kernel VM (this host's kernel has no IPVS): the shared checks 0-9 of
// test/lib/proxy-e2e-suite.ts with the IPVS rules oracle (test/lib/proxy-e2e-ipvs-oracle.ts:
// ipvsadm, the podwire-ipvs0 addresses, the ipvs- objects of inet podwire), then the checks only
// this mode has (issue 17's Tests), in the same cluster:
//   10. the sysctls kube-proxy's IPVS mode sets, and the dummy device (NOARP) on every node
//   11. a service IP answers only on its service ports: a node listener on 0.0.0.0 is not
//       reachable through the ClusterIP (kubernetes#72236)
//   12. a removed TCP endpoint with a long-lived connection: the connection goes on, new ones
//       avoid it, its real server is at weight 0, deleted once the connection closed and a full
//       sync saw it (node1 resyncs every 2 s since check 9)
//   13. a removed UDP endpoint's real server is deleted at once, never left at weight 0
//   14. node1's agent killed and restarted under traffic: a TCP connection through IPVS survives,
//       the virtual services are adopted (same services, real servers and weights; their
//       connection counters go on, a re-created one would start at 0)
//   15. mode switch ipvs → nftables → ipvs on node1: nothing of the old mode left, traffic works
//       in each; a virtual service that is not podwire's survives all of it
import type { Test } from 'tap';
import t from 'tap';
import { BIN, LAB_TIMEOUT_SCALE, agentStatus, restartAgent, waitAgentSynced, waitFor, type ClusterNode, type LabCluster } from '../../src/lab/cluster.js';
import type { Service } from '../../src/api/objects.js';
import { ipvsOracle, ipvsConnStats, ipvsConns, ipvsView, liveTargets, vsKey } from '../lib/proxy-e2e-ipvs-oracle.js';
import { runProxyE2E } from '../lib/proxy-e2e-suite.js';
import { createService, fmt, inNetns, labelPod, probe, probeMany, sameList } from '../lib/proxy-e2e.js';
import { IPVS_DEVICE, ipvsVirtualServices, modeObjects, otherModesObjects } from '../lib/proxy-e2e-modes.js';
import type { E2EContext } from '../lib/proxy-e2e-oracle.js';
import type { ProxyMode } from '../../src/proxy/backend.js';

const STREAM = 9200;
const LISTENER = 9100;
const UDP_PORT = 9000; // the suite's check 7a left socat UDP servers on it in every pod
const FOREIGN_VS = '-A -t 198.51.100.30:80 -s rr';

/** A long-lived TCP connection through socat: the server's first line, then every line sent comes back. */
interface TcpFlow {
  lines: { at: number; text: string }[];
  exited?: string;
  /** Closes with a reset (SO_LINGER 0): IPVS then keeps the connection 10 s (CLOSE), not 2 min (TIME_WAIT). */
  stop(): void;
}

function startTcpFlow(c: LabCluster, netns: string, target: string, intervalMs = 200): TcpFlow {
  const child = c.lab.spawn(netns, 'socat', ['-', `TCP4:${target},linger=0`], { stdio: ['pipe', 'pipe', 'pipe'] });
  const flow: TcpFlow = { lines: [], stop: () => undefined };
  let buf = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) flow.lines.push({ at: Date.now(), text: line });
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin!.on('error', () => undefined);
  let n = 0;
  const timer = setInterval(() => child.stdin!.write(`ping ${++n}\n`), intervalMs);
  child.on('exit', (code, signal) => {
    clearInterval(timer);
    flow.exited = `socat exited ${code ?? signal}: ${err.trim()}`;
  });
  flow.stop = () => {
    clearInterval(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  return flow;
}

/** Waits for `count` more echoed lines after `since`; fails when the flow ended. */
function flowAlive(flow: TcpFlow, since: number, count: number, what: string): Promise<unknown> {
  return waitFor(what, () => {
    if (flow.exited) throw new Error(`the connection ended: ${flow.exited}`);
    return flow.lines.filter((l) => l.at > since && l.text.startsWith('ping ')).length >= count;
  }, 15_000);
}

/** The longest gap between two echoed lines after `since` (ms). */
const maxGap = (flow: TcpFlow, since: number) => {
  const at = [since, ...flow.lines.filter((l) => l.at > since).map((l) => l.at)];
  return Math.max(0, ...at.slice(1).map((a, i) => a - at[i]!));
};

async function killAgent(n: ClusterNode): Promise<void> {
  n.agent.kill('SIGKILL');
  await new Promise((r) => (n.agent.exitCode !== null || n.agent.signalCode !== null ? r(undefined) : n.agent.once('exit', r)));
}

type ProxyStatus = { proxy?: { mode?: string; lastSync?: { error?: string } } };

/** node's agent restarted in `mode` and its proxy synced without error. */
async function restartIn(c: LabCluster, n: ClusterNode, mode: ProxyMode): Promise<void> {
  await killAgent(n);
  const i = n.agentArgs.indexOf('--proxy-mode');
  n.agentArgs[i + 1] = mode;
  restartAgent(c, n);
  await waitAgentSynced(n, 2, 60_000);
  await waitFor(`${n.name}'s ${mode} proxy synced`, async () => {
    const st = (await agentStatus(n)) as ProxyStatus;
    if (st.proxy?.lastSync?.error) throw new Error(st.proxy.lastSync.error);
    return st.proxy?.mode === mode && st.proxy.lastSync !== undefined;
  }, 30_000);
}

/** `ipvsadm -S -n` of node1 without the foreign service: the virtual services and real servers with weights, no counters. */
const ourRules = (netns: string) => inNetns(netns, 'ipvsadm', ['-S', '-n']).split('\n').filter((l) => l && !l.includes('198.51.100.30')).sort();

async function extraChecks(t: Test, x: E2EContext): Promise<void> {
  const { c, nodes: [n1], pods: [p1, p2], client } = x;
  const svc = (name: string, spec: Service['spec']) => createService(c, name, spec);
  // Not podwire's: made by hand on node1, on an address podwire never binds. It must survive.
  inNetns(n1.netns, 'ipvsadm', ['-A', '-t', '198.51.100.30:80', '-s', 'rr']);
  inNetns(n1.netns, 'ipvsadm', ['-a', '-t', '198.51.100.30:80', '-r', '198.51.100.31:80', '-m', '-w', '3']);

  await t.test('10. every node: kube-proxy\'s IPVS sysctls and the dummy podwire-ipvs0 (NOARP)', async (t) => {
    const want: Record<string, string> = {
      'net.ipv4.vs.conntrack': '1', 'net.ipv4.vs.expire_nodest_conn': '1', 'net.ipv4.vs.expire_quiescent_template': '1',
      'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2',
      // From kernel 5.9 the default 1 is right (kubernetes#81775); this VM's kernel is newer.
      'net.ipv4.vs.conn_reuse_mode': '1',
    };
    for (const n of x.nodes) {
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, inNetns(n.netns, 'sysctl', ['-n', k]).trim()]));
      t.same(got, want, `${n.name}: ${Object.entries(got).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      const [link] = JSON.parse(inNetns(n.netns, 'ip', ['-d', '-j', 'link', 'show', 'dev', IPVS_DEVICE])) as { flags: string[]; linkinfo?: { info_kind?: string } }[];
      t.ok(link?.linkinfo?.info_kind === 'dummy' && link.flags.includes('NOARP') && link.flags.includes('UP'), `${n.name}: ${IPVS_DEVICE} is a dummy link, UP, NOARP (${link?.flags.join(',')})`);
    }
  });

  await t.test(`11. a service IP answers only on its ports: node1's listener on 0.0.0.0:${LISTENER} is not reachable through the ClusterIP`, async (t) => {
    const s = await svc('ports', { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }] });
    const ip = s.spec.clusterIP!;
    await waitFor('ports: virtual service on node1', () => (liveTargets(ipvsView(n1.netns), vsKey('tcp', ip, 80))?.length ?? 0) === 2);
    c.lab.spawn(n1.netns, process.execPath, [BIN.echo, 'serve', String(LISTENER), 'node1-listener'], { stdio: 'ignore' });
    await waitFor(`node1 listens on ${LISTENER}`, () => inNetns(n1.netns, 'ss', ['-Hltn', `sport = :${LISTENER}`]).trim() !== '', 20_000);
    const [direct, viaService, port80] = await probe(c, client.netns, [`${n1.underlayIp}:${LISTENER}`, `${ip}:${LISTENER}`, `${ip}:80`], 2000);
    t.ok(direct!.ok && direct!.name === 'node1-listener', `client pod → node1 ${n1.underlayIp}:${LISTENER}: the listener answers (${direct!.name ?? direct!.error})`);
    t.ok(!viaService!.ok && /no answer within/.test(viaService!.error ?? ''), `client pod → ClusterIP ${ip}:${LISTENER}: dropped (${viaService!.ok ? `answered by ${viaService!.name}` : viaService!.error})`);
    t.ok(port80!.ok && [p1.name, p2.name].includes(port80!.name!), `client pod → ClusterIP ${ip}:80 answered by ${port80!.name ?? port80!.error}`);
    const [fromNode] = await probe(c, n1.netns, [`${ip}:${LISTENER}`], 2000);
    t.notOk(fromNode!.ok, `node1 itself → ClusterIP ${ip}:${LISTENER}: not answered either (${fromNode!.error})`);
    await c.admin.delete({ plural: 'services', namespace: 'default', name: 'ports' });
  });

  // Pods 1 and 2 run a stream server (first line: the pod's name, then an echo of every line).
  for (const p of [p1, p2]) c.lab.spawn(p.netns, 'socat', [`TCP4-LISTEN:${STREAM},fork,reuseaddr`, `SYSTEM:echo ${p.name}; exec cat`], { stdio: 'ignore' });
  await waitFor('stream servers bound', () => [p1, p2].every((p) => inNetns(p.netns, 'ss', ['-Hltn', `sport = :${STREAM}`]).trim() !== ''), 20_000);
  for (const p of [p1, p2]) await labelPod(c, p.name, { long: 'yes' });
  const long = await svc('long', { selector: { long: 'yes' }, ports: [{ name: 'echo', port: 80, targetPort: 8080 }, { name: 'stream', port: 81, targetPort: STREAM }] });
  const lip = long.spec.clusterIP!;
  const both = (port: number) => [p1, p2].map((p) => `${p.ip}:${port}`).sort();
  const longReady = () => waitFor('long: 2 real servers per port on every node', () => x.nodes.every((n) => {
    const v = ipvsView(n.netns);
    return sameList(liveTargets(v, vsKey('tcp', lip, 80)), both(8080)) && sameList(liveTargets(v, vsKey('tcp', lip, 81)), both(STREAM));
  }));
  await longReady();

  await t.test('12. a removed TCP endpoint: its long-lived connection goes on, new connections avoid it, its real server drains at weight 0 and goes once the connection closed', async (t) => {
    const flow = startTcpFlow(c, client.netns, `${lip}:81`);
    try {
      await flowAlive(flow, 0, 3, 'the stream echoes');
      const serving = [p1, p2].find((p) => p.name === flow.lines[0]!.text);
      if (!serving) return void t.fail(`the stream was answered by ${flow.lines[0]!.text}, not pod1 or pod2`);
      const other = serving === p1 ? p2 : p1;
      const rs = `${serving.ip}:${STREAM}`;
      const removedAt = Date.now();
      await labelPod(c, serving.name, { long: null });
      const drained = await waitFor(`node1: ${rs} at weight 0 with its connection`, () => {
        const d = ipvsView(n1.netns).services.get(vsKey('tcp', lip, 81))?.dests.find((r) => `${r.address}:${r.port}` === rs);
        return d && d.weight === 0 && d.active >= 1 ? d : undefined;
      });
      t.pass(`node1: ${rs} at weight 0, ${drained.active} active connection(s), ${Date.now() - removedAt} ms after the endpoint went`);
      const est = ipvsConns(n1.netns).filter((cn) => cn.virtual === `${lip}:81` && cn.dest === rs && cn.state === 'ESTABLISHED');
      t.equal(est.length, 1, `node1: ipvsadm -Lcn lists the stream as ESTABLISHED to ${rs}`);
      await flowAlive(flow, Date.now(), 10, 'the stream keeps echoing');
      // Its gaps are this process's (the oracle's commands run synchronously), not the connection's.
      t.ok(!flow.exited, `the connection went on after the endpoint was removed (never closed or reset; longest gap between echoes ${maxGap(flow, removedAt)} ms)`);
      const fresh = await probeMany(c, client.netns, `${lip}:80`, 20, { concurrency: 2 });
      t.same(fresh.names, { [other.name]: 20 }, `20 new connections all went to ${other.name} (${fmt(fresh)})`);
      const closedAt = Date.now();
      flow.stop();
      const gone = await waitFor(`node1: ${rs} deleted once the stream closed`, () => {
        const s = ipvsView(n1.netns).services.get(vsKey('tcp', lip, 81));
        return s && !s.dests.some((r) => `${r.address}:${r.port}` === rs) ? s : undefined;
      }, 60_000);
      t.pass(`node1: ${rs} deleted ${Date.now() - closedAt} ms after the connection closed (a reset: 10 s in CLOSE, then a full sync)`);
      t.same(gone.dests.map((d) => `${d.address}:${d.port} w${d.weight}`), [`${other.ip}:${STREAM} w1`], `node1: ${other.name} is the one real server left`);
    } finally {
      flow.stop();
    }
  });

  await t.test('13. a removed UDP endpoint\'s real server is deleted at once, never left at weight 0', async (t) => {
    for (const p of [p1, p2]) await labelPod(c, p.name, { udp2: 'yes' });
    const u = await svc('udp2', { selector: { udp2: 'yes' }, ports: [{ port: UDP_PORT, targetPort: UDP_PORT, protocol: 'UDP' }] });
    const key = vsKey('udp', u.spec.clusterIP!, UDP_PORT);
    await waitFor('udp2: 2 real servers on every node', () => x.nodes.every((n) => sameList(liveTargets(ipvsView(n.netns), key), both(UDP_PORT))));
    const rs = `${p2.ip}:${UDP_PORT}`;
    const seen: string[] = [];
    const removedAt = Date.now();
    await labelPod(c, p2.name, { udp2: null });
    await waitFor(`every node: ${rs} gone`, () => x.nodes.every((n) => {
      const d = ipvsView(n.netns).services.get(key)?.dests.find((r) => `${r.address}:${r.port}` === rs);
      if (d && d.weight === 0) seen.push(`${n.name}: weight 0`);
      return !d;
    }));
    t.same(seen, [], `${rs} went from every node ${Date.now() - removedAt} ms after the endpoint, never seen at weight 0`);
    await c.admin.delete({ plural: 'services', namespace: 'default', name: 'udp2' });
  });

  // The endpoint check 12 removed comes back.
  for (const p of [p1, p2]) await labelPod(c, p.name, { long: 'yes' });
  await longReady();

  await t.test('14. node1\'s agent killed and restarted under traffic: the connection survives, the virtual services are adopted, not re-created', async (t) => {
    const flow = startTcpFlow(c, client.netns, `${lip}:81`);
    try {
      await flowAlive(flow, 0, 3, 'the stream echoes');
      const before = ourRules(n1.netns);
      const statsBefore = ipvsConnStats(n1.netns);
      t.ok([...statsBefore.values()].some((n) => n > 0), `node1's virtual services have counted connections before the restart (${[...statsBefore].filter(([k]) => !k.includes('->')).map(([k, n]) => `${k}=${n}`).join(' ')})`);
      const killedAt = Date.now();
      await killAgent(n1);
      const down = await probeMany(c, client.netns, `${lip}:80`, 10, { concurrency: 2 });
      t.equal(down.ok, 10, `with node1's agent down, new connections still work (${fmt(down)})`);
      restartAgent(c, n1);
      await waitAgentSynced(n1, 2, 60_000);
      await waitFor('node1\'s proxy synced after the restart', async () => ((await agentStatus(n1)) as ProxyStatus).proxy?.lastSync !== undefined, 30_000);
      t.comment(`node1's agent back and synced ${Date.now() - killedAt} ms after the kill`);
      await flowAlive(flow, Date.now(), 5, 'the stream echoes after the restart');
      t.ok(!flow.exited, `the connection through IPVS went on over the kill and the restart, never reset (longest gap between echoes ${maxGap(flow, killedAt)} ms)`);
      t.same(ourRules(n1.netns), before, `node1: the same ${before.filter((l) => l.startsWith('-A')).length} virtual services and ${before.filter((l) => l.startsWith('-a')).length} real servers with the same weights (ipvsadm -S -n)`);
      const statsAfter = ipvsConnStats(n1.netns);
      const reset = [...statsBefore].filter(([k, n]) => (statsAfter.get(k) ?? -1) < n).map(([k, n]) => `${k}: ${n} → ${statsAfter.get(k)}`);
      t.same(reset, [], 'no virtual service or real server counter went back (none was re-created)');
      const after = await probeMany(c, client.netns, `${lip}:80`, 10, { concurrency: 2 });
      t.equal(after.ok, 10, `new connections after the restart (${fmt(after)})`);
    } finally {
      flow.stop();
    }
  });

  await t.test('15. mode switch on node1, ipvs → nftables → ipvs: nothing of the old mode left, traffic works in each, the foreign virtual service survives', async (t) => {
    for (const [mode, prev] of [['nftables', 'ipvs'], ['ipvs', 'nftables']] as const) {
      const at = Date.now();
      await restartIn(c, n1, mode);
      const left = await waitFor(`node1: nothing of ${prev} left`, () => {
        const objs = modeObjects(prev, n1.netns, [FOREIGN_VS]);
        return objs.length === 0 ? objs : undefined;
      }).catch(() => modeObjects(prev, n1.netns, [FOREIGN_VS]));
      t.same(left, [], `node1 in ${mode} mode (${Date.now() - at} ms): no ${prev} objects${prev === 'ipvs' ? ` (no ${IPVS_DEVICE}, no ipvs- objects, no virtual service of ours)` : ''}`);
      t.same(otherModesObjects(mode, n1.netns, [FOREIGN_VS]), [], `node1: nothing of any mode but ${mode}`);
      t.ok(modeObjects(mode, n1.netns).length > 0, `node1: ${mode} objects are there`);
      await waitFor(`node1: long served in ${mode} mode`, async () => (await probeMany(c, client.netns, `${lip}:80`, 2, { concurrency: 1, timeoutMs: 1500 })).ok === 2);
      const s = await probeMany(c, client.netns, `${lip}:80`, 10, { concurrency: 2 });
      t.ok(s.ok === 10 && Object.keys(s.names).every((n) => [p1.name, p2.name].includes(n)), `client pod → ClusterIP in ${mode} mode (${fmt(s)})`);
      t.ok(ipvsVirtualServices(n1.netns).includes(FOREIGN_VS), `node1: the foreign virtual service 198.51.100.30:80 is still there (${ipvsVirtualServices(n1.netns).join('; ')})`);
    }
    const v = ipvsView(n1.netns);
    t.same(v.services.get('tcp/198.51.100.30:80')?.dests.map((d) => `${d.address}:${d.port} ${d.forward} ${d.weight}`), ['198.51.100.31:80 Masq 3'], 'and its real server, untouched');
  });

  await c.admin.delete({ plural: 'services', namespace: 'default', name: 'long' });
  inNetns(n1.netns, 'ipvsadm', ['-D', '-t', '198.51.100.30:80']);
  await waitFor('every node idle again', () => x.nodes.every((n) => ipvsOracle.idle(ipvsView(n.netns))));
}

// Run by hand with node (not through scripts/run-tests.js): tap's own 30 s default would end it.
t.setTimeout(600_000 * LAB_TIMEOUT_SCALE + 60_000);
void runProxyE2E(t, 'ipvs', ipvsOracle, { extra: extraChecks, timeoutMs: 600_000 });
