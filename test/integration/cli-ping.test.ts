// `podwire ping` and `podwire lab exec` against a real 2-node lab: the real CLI binary run from the
// root netns. Cross-node pod → pod ping -c 3 → 3 replies, exit 0 (text and JSON); a destination pod
// made unreachable by a blackhole route in its own netns → loss, exit 1; an unknown pod → exit 2
// with the close match; SRC's agent killed by its recorded PID → exit 3. lab exec runs a command
// in a pod's netns (it prints the pod's address) and exits with the command's code. The agent's
// route without a netns hint finds the pod among all netns, not a decoy holding the same IP (as
// another lab running at the same time has) nor another node's pod.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { clusterFiles, waitFor } from '../../src/lab/cluster.js';
import { ApiClient, ApiClientError } from '../../src/client/api-client.js';
import { withCluster } from '../lib/lab-cluster.js';
import { isAlive } from '../../src/lab/procs.js';
import { readLabStates } from '../../src/lab/lab.js';
import type { PingReport } from '../../src/cli/debug/ping.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';
import { randomBytes } from 'node:crypto';
import { createNetns, deleteNetns } from '../../src/netns/netns.js';

const podwire = cliRunner(60_000);

/** pw-0-<hex>-pod (eth0 with `ip`, its veth peer in pw-0-<hex>-host), removed when the test ends. */
function decoyPod(t: Test, ip: string): string {
  const id = randomBytes(3).toString('hex');
  const [pod, host] = [`pw-0-${id}-pod`, `pw-0-${id}-host`];
  createNetns(pod);
  t.teardown(() => deleteNetns(pod));
  createNetns(host);
  t.teardown(() => deleteNetns(host));
  const ip4 = (ns: string, ...args: string[]) => {
    const r = spawnSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip -n ${ns} ${args.join(' ')}: ${r.stderr}`);
  };
  ip4(host, 'link', 'add', 'decoy0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod);
  ip4(host, 'link', 'set', 'decoy0', 'up');
  ip4(pod, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
  ip4(pod, 'link', 'set', 'eth0', 'up');
  return pod;
}

t.test('podwire ping and lab exec --lab', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 2 });
  const prefix = c.lab.prefix;
  const [a, b, isolated] = [c.pods.find((p) => p.node === 'node1')!, c.pods.find((p) => p.node === 'node2')!, c.pods.filter((p) => p.node === 'node2')[1]!];
  t.not(b.name, isolated.name);

  // The overlay may need a moment after the cluster is up (neighbour/FDB entries).
  const ok = await waitFor('ping answered', () => {
    const r = podwire(['ping', a.name, b.name, '-c', '3', '--lab', prefix, '-o', 'json']);
    return r.code === 0 ? r : undefined;
  }, 20_000);
  const report = JSON.parse(ok.stdout) as PingReport;
  t.same(Object.keys(report).sort(), ['destination', 'dst', 'lossPct', 'node', 'received', 'replies', 'rttMs', 'sent', 'source', 'src']);
  t.equal(report.source, `pod default/${a.name}`);
  t.equal(report.destination, `pod default/${b.name}`);
  t.equal(report.node, 'node1');
  t.equal(report.src, a.ip);
  t.equal(report.dst, b.ip);
  t.equal(report.sent, 3);
  t.equal(report.received, 3);
  t.equal(report.lossPct, 0);
  t.same(report.replies.map((r) => r.seq), [1, 2, 3]);
  t.ok(report.rttMs!.min > 0 && report.rttMs!.min <= report.rttMs!.avg && report.rttMs!.avg <= report.rttMs!.max, `rtt ${JSON.stringify(report.rttMs)}`);

  const text = podwire(['ping', a.name, b.ip, '-c', '3', '--interval-ms', '50', '--lab', prefix]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /^3 packets transmitted, 3 received, 0% packet loss; rtt min\/avg\/max = [\d.]+\/[\d.]+\/[\d.]+ ms$/m);
  t.match(text.stdout, new RegExp(`^PING pod default/${b.name} \\(${b.ip.replace(/\./g, '\\.')}\\)`, 'm'), 'an IP of a pod is named as the pod');

  // The isolated pod drops its replies to a: a blackhole route inside its own netns (pw- lab netns).
  const nsName = path.basename(isolated.netns);
  t.ok(nsName.startsWith('pw-'), `pod netns ${nsName}`);
  const add = spawnSync('ip', ['-n', nsName, 'route', 'add', 'blackhole', `${a.ip}/32`], { encoding: 'utf8' });
  t.equal(add.status, 0, add.stderr);
  const lost = podwire(['ping', a.name, isolated.name, '-c', '2', '--interval-ms', '50', '--timeout-ms', '500', '--lab', prefix, '-o', 'json']);
  t.equal(lost.code, 1, `loss: exit 1 (${lost.stderr})`);
  const lr = JSON.parse(lost.stdout) as PingReport;
  t.equal(lr.sent, 2);
  t.equal(lr.received, 0);
  t.equal(lr.lossPct, 100);
  t.equal(lr.rttMs, null);
  const lostText = podwire(['ping', a.name, isolated.name, '-c', '1', '--timeout-ms', '300', '--lab', prefix]);
  t.equal(lostText.code, 1);
  t.match(lostText.stdout, /^1 packets transmitted, 0 received, 100% packet loss$/m);

  const unknown = podwire(['ping', a.name.slice(0, -1) + 'x', b.name, '--lab', prefix]);
  t.equal(unknown.code, 2, 'an unknown pod is a usage error');
  t.match(unknown.stderr, new RegExp(`did you mean [^\\n]*${a.name}`));
  const notPod = podwire(['ping', 'node1', b.name, '--lab', prefix]);
  t.equal(notPod.code, 2, 'SRC must be a pod');
  const badCount = podwire(['ping', a.name, b.name, '-c', '0', '--lab', prefix]);
  t.equal(badCount.code, 2);

  // lab exec: the command runs in the pod's netns, with its exit code.
  const ex = podwire(['lab', 'exec', '--lab', prefix, b.name, '--', 'ip', '-4', 'addr', 'show', 'eth0']);
  t.equal(ex.code, 0, ex.stderr);
  t.match(ex.stdout, new RegExp(`inet ${b.ip.replace(/\./g, '\\.')}/`));
  const exCode = podwire(['lab', 'exec', '--lab', prefix, b.name, '--', 'sh', '-c', 'exit 7']);
  t.equal(exCode.code, 7, 'the command\'s exit code');
  const exUnknown = podwire(['lab', 'exec', '--lab', prefix, b.name + 'x', '--', 'true']);
  t.equal(exUnknown.code, 2);
  t.match(exUnknown.stderr, new RegExp(`did you mean [^\\n]*${b.name}`));

  // A decoy, as another lab running at the same time has (same cluster CIDR, same pod IPs): a
  // netns with b's IP on an eth0 whose veth peer is in a netns of its own, named to sort before
  // every lab netns (the scan goes in name order). node2's agent must not ping from it.
  const decoy = decoyPod(t, b.ip);
  t.ok(decoy < path.basename(b.netns), `${decoy} sorts first`);

  // The agent's route itself: an address no pod here has is a 404 naming it, a bad body a 400;
  // another node's pod (its netns is visible here too) is not this node's: 404.
  const agent2 = new ApiClient({ server: 'http://podwire-agent', socketPath: clusterFiles(prefix).agentSocket('node2'), timeoutMs: 10_000 });
  t.teardown(() => agent2.close());
  const notHere = await agent2.request('POST', '/v1/debug/ping', { srcIp: '10.244.250.9', dst: b.ip, count: 1, intervalMs: 10, timeoutMs: 100 }).catch((e: unknown) => e);
  t.ok(notHere instanceof ApiClientError && notHere.code === 404, 'no such pod on this node: 404');
  t.match((notHere as Error).message, /no pod with IP 10\.244\.250\.9 on node node2/);
  const otherNode = await agent2.request('POST', '/v1/debug/ping', { srcIp: a.ip, dst: b.ip, count: 1, intervalMs: 10, timeoutMs: 100 }).catch((e: unknown) => e);
  t.ok(otherNode instanceof ApiClientError && otherNode.code === 404, `node1's pod is not node2's: 404 (${(otherNode as Error).message})`);
  t.match((otherNode as Error).message, /is not in its podCIDR 10\.244\.\d+\.0\/24; is the pod on another node\?/, 'the 404 says why');
  const badBody = await agent2.request('POST', '/v1/debug/ping', { srcIp: b.ip, dst: a.ip, count: 1000, intervalMs: 10, timeoutMs: 100 }).catch((e: unknown) => e);
  t.ok(badBody instanceof ApiClientError && badBody.code === 400, 'count 1000: 400');
  t.match((badBody as Error).message, /count 1000 must be an integer 1-100/);
  const fromB = await agent2.request<PingReport>('POST', '/v1/debug/ping', { srcIp: b.ip, dst: a.ip, count: 2, intervalMs: 10, timeoutMs: 1000 });
  t.equal(fromB.received, 2, 'node2\'s agent pings from its pod without a netns hint');

  // SRC's agent down: exit 3.
  const recorded = readLabStates().find((s) => s.prefix === prefix)!.procs.find((p) => p.what.startsWith(`${c.nodes[0]!.netns}: `) && p.what.includes('/src/agent/main.js'))!;
  t.equal(recorded.pid, c.nodes[0]!.agent.pid, 'the lab recorded node1\'s agent');
  process.kill(recorded.pid, 'SIGKILL');
  await waitFor('node1 agent gone', () => !isAlive(recorded));
  const down = podwire(['ping', a.name, b.name, '-c', '1', '--lab', prefix]);
  t.equal(down.code, 3, 'SRC\'s agent unreachable: exit 3');
  t.match(down.stderr, /cannot reach the agent of node1/);
});
