// podwire-controlplane as a process: init, the auth matrix over HTTP, TLS with a self-signed
// certificate, kill -9 in the middle of a burst of writes (every acknowledged write survives), and
// graceful shutdown on SIGTERM with open watches.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiClient, ApiClientError } from '../../src/client/api-client.js';
import type { Service } from '../../src/api/objects.js';
import { CONTROLPLANE_MAIN, initDataDir, selfSignedCert, startControlPlane } from '../lib/controlplane-process.js';
import { node, pod, service } from '../lib/controlplane.js';

const cleanup = (dir: string) => fs.rmSync(dir, { recursive: true, force: true });

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof ApiClientError) return e.code;
    throw e;
  }
}

t.test('init writes a 0600 admin token and the cluster config once; serve refuses a dir without them', async (t) => {
  const dir = initDataDir(['--cluster-cidr', '10.10.0.0/16', '--node-mask', '24']);
  t.teardown(() => cleanup(dir));
  const token = fs.readFileSync(path.join(dir, 'admin.token'), 'utf8');
  t.equal(fs.statSync(path.join(dir, 'admin.token')).mode & 0o777, 0o600, 'admin.token is 0600');
  t.match(token, /^pwa_[A-Za-z0-9_-]{43}\n$/);
  t.match(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), { kind: 'ClusterConfig', spec: { clusterCIDR: '10.10.0.0/16', nodeMask: 24 } });
  const again = spawnSync('node', [CONTROLPLANE_MAIN, 'init', '--data-dir', dir], { encoding: 'utf8' });
  t.equal(again.status, 0);
  t.match(again.stdout, /kept existing .*admin\.token/);
  t.equal(fs.readFileSync(path.join(dir, 'admin.token'), 'utf8'), token, 'a second init keeps the token');
  const bad = spawnSync('node', [CONTROLPLANE_MAIN, 'init', '--data-dir', dir + '-x', '--cluster-cidr', '10.0.0.0/33'], { encoding: 'utf8' });
  t.equal(bad.status, 2, 'a bad cluster CIDR is a usage error');
  t.match(bad.stderr, /spec\.clusterCIDR/);
  t.notOk(fs.existsSync(dir + '-x'), 'nothing written for a bad init');
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cp-empty-'));
  t.teardown(() => cleanup(empty));
  const noInit = spawnSync('node', [CONTROLPLANE_MAIN, '--data-dir', empty, '--listen', '127.0.0.1:1'], { encoding: 'utf8' });
  t.equal(noInit.status, 2);
  t.match(noInit.stderr, /admin\.token.*run podwire-controlplane init/);
});

t.test('auth: 401 without a valid token; node tokens read the cluster and their own Pods, write only their own Node and Pods', async (t) => {
  const cp = await startControlPlane();
  const admin = new ApiClient({ server: cp.url, token: cp.token });
  t.teardown(async () => {
    admin.close();
    await cp.stop();
    cleanup(cp.dir);
  });
  const anon = new ApiClient({ server: cp.url });
  const wrong = new ApiClient({ server: cp.url, token: 'pwn_not-a-token' });
  t.teardown(() => (anon.close(), wrong.close()));
  t.equal(await status(anon.list({ plural: 'nodes' })), 401, 'no token: 401');
  t.equal(await status(wrong.list({ plural: 'nodes' })), 401, 'unknown token: 401');
  t.equal(await status(anon.request('GET', '/healthz')), 200, '/healthz is public');

  const issued = await admin.request<{ token: string }>('POST', '/api/v1/nodes/node-a/token');
  const a = new ApiClient({ server: cp.url, token: issued.token });
  t.teardown(() => a.close());
  await admin.create({ plural: 'nodes' }, node('node-b'));
  await admin.create({ plural: 'services', namespace: 'default' }, service('web'));
  const matrix: [string, () => Promise<unknown>, number][] = [
    ['register its own Node', () => a.create({ plural: 'nodes' }, node('node-a')), 200],
    ['read all nodes', () => a.list({ plural: 'nodes' }), 200],
    ['read services', () => a.list({ plural: 'services' }), 200],
    ['read endpoints', () => a.list({ plural: 'endpoints' }), 200],
    ['read the cluster config', () => a.request('GET', '/api/v1/clusterconfig'), 200],
    ['update another Node', async () => a.update({ plural: 'nodes', name: 'node-b' }, await admin.get({ plural: 'nodes', name: 'node-b' })), 403],
    ['delete another Node', () => a.delete({ plural: 'nodes', name: 'node-b' }), 403],
    // node-b (created first) holds 10.244.0.0/24, node-a 10.244.1.0/24: a node reports pod IPs from its own podCIDR only.
    ['create a Pod on itself', () => a.create({ plural: 'pods', namespace: 'default' }, pod('mine', 'node-a', '10.244.1.5', {})), 200],
    ['create a Pod on itself with a pod IP of another node', () => a.create({ plural: 'pods', namespace: 'default' }, pod('spoof', 'node-a', '10.244.0.5', {})), 403],
    ['list its own Pods', () => a.list({ plural: 'pods' }, { fieldSelector: 'spec.nodeName=node-a' }), 200],
    ['list all Pods', () => a.list({ plural: 'pods' }), 403],
    ['delete its own Node', () => a.delete({ plural: 'nodes', name: 'node-a' }), 403],
    ['create a Pod on another node', () => a.create({ plural: 'pods', namespace: 'default' }, pod('theirs', 'node-b', '10.244.0.5', {})), 403],
    ['create a Service', () => a.create({ plural: 'services', namespace: 'default' }, service('evil')), 403],
    ['delete a Service', () => a.delete({ plural: 'services', namespace: 'default', name: 'web' }), 403],
    ['write the cluster config', () => a.request('PUT', '/api/v1/clusterconfig', { metadata: { name: 'cluster' }, spec: {} }), 403],
    ['issue tokens', () => a.request('POST', '/api/v1/nodes/node-b/token'), 403],
  ];
  for (const [what, call, want] of matrix) t.equal(await status(call()), want, `node token may${want === 200 ? '' : ' not'} ${what}`);
  // A pod moved to another node by its own node is refused too (checked against the stored object).
  await admin.create({ plural: 'pods', namespace: 'default' }, pod('b-pod', 'node-b', '10.244.0.6', {}));
  const bPod = await admin.get({ plural: 'pods', namespace: 'default', name: 'b-pod' });
  t.equal(await status(a.update({ plural: 'pods', namespace: 'default', name: 'b-pod' }, { ...bPod, spec: { nodeName: 'node-a' } })), 403, 'a node cannot take over another node\'s pod');
  const forbidden = await a.create({ plural: 'services', namespace: 'default' }, service('x')).catch((e: ApiClientError) => e);
  t.match((forbidden as ApiClientError).status, { kind: 'Status', reason: 'Forbidden', message: /system:node:node-a/ });
  await admin.request('DELETE', '/api/v1/nodes/node-a/token');
  t.equal(await status(a.list({ plural: 'nodes' })), 401, 'a revoked token is refused at once');
});

t.test('TLS with a self-signed certificate: clients that trust the CA connect, others are refused', async (t) => {
  const dir = initDataDir();
  const tls = selfSignedCert(dir);
  const cp = await startControlPlane({ dir, tls });
  t.teardown(async () => {
    await cp.stop();
    cleanup(dir);
  });
  t.match(cp.url, /^https:/);
  const trusted = new ApiClient({ server: cp.url, token: cp.token, ca: fs.readFileSync(tls.cert) });
  const untrusted = new ApiClient({ server: cp.url, token: cp.token });
  t.teardown(() => (trusted.close(), untrusted.close()));
  t.equal((await trusted.list({ plural: 'nodes' })).kind, 'NodeList');
  const err = await untrusted.list({ plural: 'nodes' }).catch((e: ApiClientError) => e);
  t.equal((err as ApiClientError).code, 0, 'not reached');
  t.match((err as Error).message, /self.signed|certificate/i);
});

t.test('kill -9 during a burst of writes: every acknowledged write is there after restart, allocations consistent', async (t) => {
  const cp = await startControlPlane();
  const dir = cp.dir;
  t.teardown(() => cleanup(dir));
  const client = new ApiClient({ server: cp.url, token: cp.token, timeoutMs: 5000 });
  const acked: string[] = [];
  let n = 0;
  let killed = false;
  const writer = async () => {
    while (!killed) {
      const name = `svc-${n++}`;
      try {
        await client.create({ plural: 'services', namespace: 'default' }, service(name, { type: 'NodePort' }));
        acked.push(name);
      } catch {
        return; // the server is gone
      }
    }
  };
  const writers = Array.from({ length: 8 }, writer);
  // Kill once the burst is well under way (not after a fixed time: on a loaded CI machine 700 ms
  // saw only 2 writes), with the 8 writers still going.
  const started = Date.now();
  while (acked.length < 20 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 20));
  const ackedAtKill = acked.length;
  killed = true;
  await cp.stop('SIGKILL');
  await Promise.all(writers);
  client.close();
  t.ok(ackedAtKill >= 20, `${ackedAtKill} writes acknowledged when the kill came (${Date.now() - started} ms in; 20 wanted within 20 s), ${acked.length} in all`);

  const again = await startControlPlane({ dir });
  const c2 = new ApiClient({ server: again.url, token: again.token });
  t.teardown(async () => {
    c2.close();
    await again.stop();
  });
  const list = await c2.list<Service>({ plural: 'services', namespace: 'default' });
  const names = new Set(list.items.map((s) => s.metadata.name));
  const missing = acked.filter((name) => !names.has(name));
  t.same(missing, [], 'no acknowledged write lost');
  const ips = list.items.map((s) => s.spec.clusterIP);
  const ports = list.items.flatMap((s) => (s.spec.ports ?? []).map((p) => p.nodePort));
  t.equal(new Set(ips).size, ips.length, 'ClusterIPs unique');
  t.equal(new Set(ports).size, ports.length, 'nodePorts unique');
  const metrics = await c2.request<string>('GET', '/metrics');
  const used = (allocator: string) => Number(new RegExp(`podwire_controlplane_allocated\\{allocator="${allocator}",of="used"\\} (\\d+)`).exec(metrics)?.[1]);
  // Every namespace's: kube-system/kube-dns holds the cluster DNS address too.
  const everywhere = await c2.list<Service>({ plural: 'services' });
  t.equal(used('clusterip'), everywhere.items.length, 'the ClusterIP allocator holds exactly the stored services\' IPs');
  t.equal(used('nodeport'), ports.length, 'the NodePort allocator holds exactly the stored nodePorts');
  const fresh = await c2.create<Service>({ plural: 'services', namespace: 'default' }, service('after-restart', { type: 'NodePort' }));
  t.notOk(ips.includes(fresh.spec.clusterIP), 'a new service after the restart gets an unused IP');
});

t.test('SIGTERM: open watches end, the process exits 0', async (t) => {
  const cp = await startControlPlane();
  t.teardown(() => cleanup(cp.dir));
  const client = new ApiClient({ server: cp.url, token: cp.token });
  const stream = await client.watch({ plural: 'pods' }, {}, () => undefined);
  const started = Date.now();
  const code = await cp.stop('SIGTERM');
  await stream.done;
  client.close();
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms with a watch open`);
});
