// The agents' authenticated HTTPS debug endpoint in a lab (src/agent/debug-endpoint.ts): every lab
// agent runs with --debug-listen NODEIP:10262 and publishes it on its Node; the CLI with --lab
// reaches it through the lab's underlay forwarder (one unix socket per node). Checked: no token
// 401, a node token 403, the admin token 200; `podwire status --lab` through HTTPS; a wrong pinned
// fingerprint refused by the CLI with a clear message (exit 3); and the real-cluster path without
// --lab (run from the underlay netns, which routes to the nodes): this node over its unix socket,
// the other one at its published https://IP:10262 with the admin token.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { Node } from '../../src/api/objects.js';
import { clusterFiles, waitFor } from '../../src/lab/cluster.js';
import { certSha256 } from '../../src/agent/debug-cert.js';
import { netnsPath } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { withCluster } from '../lib/lab-cluster.js';
import { CLI, cliRunner } from '../lib/cli.js';

const podwire = cliRunner(30_000);

/** GET over the lab forwarder's unix socket to a node's HTTPS endpoint, trusting its own certificate. */
function get(socketPath: string, ca: Buffer, p: string, token?: string): Promise<{ code: number; body: any }> {
  return new Promise((resolve, reject) => {
    https.get({ socketPath, path: p, ca, checkServerIdentity: () => undefined, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve({ code: res.statusCode!, body: JSON.parse(b) }));
    }).on('error', reject);
  });
}

t.test('agent HTTPS debug endpoint: access rules, the lab path, pinning, the real-cluster path', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 1 });
  const prefix = c.lab.prefix;
  const files = clusterFiles(prefix);
  const adminToken = fs.readFileSync(files.adminTokenFile, 'utf8').trim();
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];

  // The Nodes publish the endpoint and the fingerprint of the certificate in the node's run dir.
  const node1 = await waitFor('node1 publishes its endpoint', async () => {
    const n = await c.admin.get<Node>({ plural: 'nodes', name: 'node1' });
    return n.metadata.annotations?.['podwire.io/agent-endpoint'] ? n : undefined;
  });
  const cert1 = fs.readFileSync(path.join(n1.dir, 'debug-tls.crt'));
  t.equal(node1.metadata.annotations!['podwire.io/agent-endpoint'], `https://${n1.underlayIp}:10262`);
  t.equal(node1.metadata.annotations!['podwire.io/agent-cert-sha256'], certSha256(cert1), 'the certificate\'s SHA-256');
  t.equal(fs.statSync(path.join(n1.dir, 'debug-tls.key')).mode & 0o777, 0o600, 'the generated key is 0600');

  const sock1 = files.agentHttpsSocket('node1');
  const none = await get(sock1, cert1, '/v1/status');
  t.same([none.code, none.body.reason], [401, 'Unauthorized'], 'no token: 401');
  const nodeToken = fs.readFileSync(path.join(n2.dir, 'node.token'), 'utf8').trim();
  const asNode = await get(sock1, cert1, '/v1/status', nodeToken);
  t.same([asNode.code, asNode.body.reason], [403, 'Forbidden'], 'a node token: 403');
  t.match(asNode.body.message, /system:node:node2/);
  const bad = await get(sock1, cert1, '/v1/debug/peers', 'pwa_not-a-token');
  t.equal(bad.code, 401, 'an unknown token: 401');
  const asAdmin = await get(sock1, cert1, '/v1/status', adminToken);
  t.equal(asAdmin.code, 200, 'the admin token: 200');
  t.equal(asAdmin.body.nodeName, 'node1');
  t.equal((await get(sock1, cert1, '/v1/debug/peers', adminToken)).code, 200, 'the debug routes too');

  const status = podwire(['status', '--lab', prefix, '-o', 'json']);
  t.equal(status.code, 0, `podwire status --lab through HTTPS (${status.stderr.trim()})`);
  t.same(JSON.parse(status.stdout).nodes.map((n: { agent: { state: string } }) => n.agent.state), ['up', 'up']);

  // Pin a wrong fingerprint on node1: the CLI refuses the agent's certificate (and sends no token).
  const wrong = '0'.repeat(64);
  const current = await c.admin.get<Node>({ plural: 'nodes', name: 'node1' });
  await c.admin.update<Node>({ plural: 'nodes', name: 'node1' }, { ...current, metadata: { ...current.metadata, annotations: { ...current.metadata.annotations, 'podwire.io/agent-cert-sha256': wrong } } });
  const refused = podwire(['peers', '--lab', prefix, '--node', 'node1']);
  t.equal(refused.code, 3, 'could not reach the agent: exit 3');
  t.match(refused.stdout + refused.stderr, new RegExp(`the agent of node node1 at https://${n1.underlayIp.replace(/\./g, '\\.')}:10262 presented a certificate with SHA-256 ${certSha256(cert1)}, but its Node publishes ${wrong}.*refusing it, no token sent`));
  const st = podwire(['status', '--lab', prefix, '-o', 'json']);
  t.equal(st.code, 1);
  t.match(JSON.parse(st.stdout).nodes[0].agent.error, /presented a certificate with SHA-256/);
  await c.admin.update<Node>({ plural: 'nodes', name: 'node1' }, await c.admin.get<Node>({ plural: 'nodes', name: 'node1' }).then((n) => ({ ...n, metadata: { ...n.metadata, annotations: { ...n.metadata.annotations, 'podwire.io/agent-cert-sha256': certSha256(cert1) } } })));
  t.equal(podwire(['status', '--lab', prefix]).code, 0, 'the right fingerprint again: healthy');

  // Without --lab, as on node1 of a real cluster: the CLI runs where the underlay is routed (the
  // lab's underlay netns), node1's agent over its socket, node2's at https://192.0.2.12:10262.
  const real = (args: string[]) => spawnSync('nsenter', [`--net=${netnsPath(c.lab.state.underlayNetns)}`, '--', process.execPath, CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NO_COLOR: '1', HOME: '/nonexistent' } });
  const conn = ['--server', 'http://192.0.2.2:6443', '--token-file', files.adminTokenFile, '--agent-socket', n1.socket];
  const r = real(['status', ...conn, '-o', 'json']);
  t.equal(r.status, 0, `status without --lab: both agents (${r.stderr.trim()})`);
  t.same(JSON.parse(r.stdout).nodes.map((n: { name: string; agent: { state: string } }) => [n.name, n.agent.state]), [['node1', 'up'], ['node2', 'up']]);
  const only2 = real(['status', ...conn, '--node', 'node2', '-o', 'json']);
  t.equal(only2.status, 0, `status --node node2: the other node, over HTTPS (${only2.stderr.trim()})`);
  t.equal(JSON.parse(only2.stdout).nodes[0].agent.nodeName ?? 'node2', 'node2');
  const explain = real(['explain', ...conn, 'echo-node1-1', 'echo-node2-1:8080', '-o', 'json']);
  t.equal(explain.status, 0, `explain across both nodes without --lab (${explain.stderr.trim()})`);
  const hops = JSON.parse(explain.stdout) as { verdict: string; hops: { node: string }[] };
  t.equal(hops.verdict, 'delivered');
  t.ok(hops.hops.some((h) => h.node === 'node2'), 'node2\'s hops came from its agent over HTTPS');
  const doctor2 = real(['doctor', ...conn, '--node', 'node2', '-o', 'json']);
  t.equal(doctor2.status, 0, `doctor --node node2 (the other node) without --lab (${doctor2.stderr.trim()})`);
  const matrix = real(['connectivity', ...conn, '-o', 'json']);
  t.equal(matrix.status, 0, `connectivity without --lab: each source pod's agent, node2's over HTTPS (${matrix.stderr.trim()})`);
  t.match(JSON.parse(matrix.stdout), { healthy: true });
  const peers2 = real(['peers', ...conn, '--node', 'node2', '-o', 'json']);
  t.equal(peers2.status, 0, `peers --node node2 over HTTPS without --lab (${peers2.stderr.trim()})`);
  t.same(JSON.parse(peers2.stdout).nodes.map((n: { node: string; agent: string }) => [n.node, n.agent]), [['node2', 'up']]);
  const peersLocal = real(['peers', '--agent-socket', n1.socket, '-o', 'json']);
  t.equal(peersLocal.status, 0, `peers without a client config: this machine's agent (${peersLocal.stderr.trim()})`);
  t.same(JSON.parse(peersLocal.stdout).nodes.map((n: { node: string }) => n.node), ['node1']);
  const noLocal = real(['status', '--server', 'http://192.0.2.2:6443', '--token-file', files.adminTokenFile, '--agent-socket', '/nonexistent/agent.sock', '-o', 'json']);
  t.equal(noLocal.status, 0, 'no agent on this machine: every node still asked, over HTTPS, all healthy');
  t.same(JSON.parse(noLocal.stdout).nodes.map((n: { agent: { state: string } }) => n.agent.state), ['up', 'up'], 'every node at its published endpoint when this machine has no agent');
});
