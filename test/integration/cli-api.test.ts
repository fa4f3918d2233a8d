// The `podwire` CLI's API commands end to end: the real control plane listening on a loopback
// port in this process, the built CLI run as a child process against it. execFile is async on
// purpose: a synchronous child would block the event loop that serves its requests.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { buildServer } from '../../src/controlplane/api/server.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import { ADMIN_TOKEN, eventually } from '../lib/controlplane.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const app = buildServer({ store: new MemoryStore(), adminTokens: [ADMIN_TOKEN] });
await app.listen({ host: '127.0.0.1', port: 0 });
const SERVER = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
// An empty HOME: the developer's own ~/.config/podwire/config.json must not leak into the tests.
const HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cli-api-'));
t.teardown(async () => {
  await app.close();
  fs.rmSync(HOME, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function env(token: string | undefined): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME, PODWIRE_SERVER: SERVER, ...(token !== undefined ? { PODWIRE_TOKEN: token } : {}) };
}

function cli(args: string[], opts: { token?: string; stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: opts.env ?? env(opts.token ?? ADMIN_TOKEN), timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(opts.stdin ?? '');
  });
}

/** A Kubernetes-style manifest: a NodePort Service and its Pod, a selector-less Service with manual Endpoints. */
function appYaml(targetPort: number | string = 8080, extraLabel = ''): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web${extraLabel}}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: ${targetPort}}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec:
  nodeName: n1
  containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 8080}]}]
status:
  phase: Running
  podIP: 10.244.1.5
  podIPs: [{ip: 10.244.1.5}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  ports: [{port: 5432}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 10.0.0.5}, {ip: 10.0.0.6}]
  ports: [{port: 5432}]
`;
}

function writeManifest(name: string, text: string): string {
  const file = path.join(HOME, name);
  fs.writeFileSync(file, text);
  return file;
}

const CREATED = ['service/web created', 'pod/web-1 created', 'service/db created', 'endpoints/db created'].join('\n') + '\n';

t.test('apply creates from Kubernetes YAML; get prints kubectl-style tables', async (t) => {
  const file = writeManifest('tables.yaml', appYaml());
  const applied = await cli(['apply', '-f', file, '-n', 'tables']);
  t.same(applied, { code: 0, stdout: CREATED, stderr: '' });

  const svc = await cli(['get', 'services', '-n', 'tables']);
  t.equal(svc.code, 0, svc.stderr);
  const [header, db, web] = svc.stdout.trimEnd().split('\n');
  t.match(header, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+ENDPOINTS\s+AGE$/);
  t.match(web, /^web\s+NodePort\s+10\.(9[6-9]|1[01]\d)\.\d+\.\d+\s+<none>\s+80:3\d{4}\/TCP,53:3\d{4}\/UDP\s+[01]\s+\d+s$/);
  t.match(db, /^db\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+5432\/TCP\s+2\s+\d+s$/, 'the manual Endpoints count');
  // The endpoints controller picks up the ready pod asynchronously.
  await eventually(async () => /\s1\s+\d+s$/.test((await cli(['get', 'svc', 'web', '-n', 'tables'])).stdout.trimEnd()), 'web has 1 endpoint');

  const eps = await cli(['get', 'ep', '-n', 'tables']);
  t.match(eps.stdout, /^db\s+10\.0\.0\.5:5432,10\.0\.0\.6:5432\s+\d+s$/m);
  const pods = await cli(['get', 'po', '-A', '-o', 'wide']);
  t.match(pods.stdout, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+IP\s+NODE\s+AGE\s+LABELS$/m);
  t.match(pods.stdout, /^tables\s+web-1\s+1\/1\s+Running\s+10\.244\.1\.5\s+n1\s+\d+s\s+app=web$/m);
  const none = await cli(['get', 'pods', '-n', 'empty']);
  t.same(none, { code: 0, stdout: '', stderr: 'No resources found in empty namespace.\n' });
  const config = await cli(['get', 'clusterconfig']);
  t.match(config.stdout, /^cluster\s+10\.244\.0\.0\/16\s+\/24\s+10\.96\.0\.0\/12\s+30000-32767\s+vxlan\s+\d+s$/m);
});

t.test('get -o json / -o yaml parse back: the object by name, a List otherwise', async (t) => {
  t.equal((await cli(['apply', '-f', writeManifest('formats.yaml', appYaml()), '-n', 'formats'])).code, 0);
  const one = await cli(['get', 'svc', 'web', '-n', 'formats', '-o', 'json']);
  const svc = JSON.parse(one.stdout);
  t.match(svc, { kind: 'Service', metadata: { name: 'web', namespace: 'formats' }, spec: { type: 'NodePort', clusterIP: /^10\./ } });
  t.ok(svc.spec.ports.every((p: { nodePort?: number }) => p.nodePort! >= 30000), 'node ports allocated');
  const list = YAML.parse((await cli(['get', 'services', '-n', 'formats', '-oyaml'])).stdout);
  t.equal(list.kind, 'List');
  t.same(list.items.map((i: { metadata: { name: string } }) => i.metadata.name).sort(), ['db', 'web']);
  const selected = JSON.parse((await cli(['get', 'pods', '-A', '-l', 'app=web', '-o', 'json'])).stdout);
  t.ok(selected.items.length >= 1 && selected.items.every((p: { metadata: { labels: Record<string, string> } }) => p.metadata.labels.app === 'web'));
  const config = YAML.parse((await cli(['get', 'cc', '-o', 'yaml'])).stdout);
  t.match(config, { apiVersion: 'podwire.io/v1', kind: 'ClusterConfig', spec: { backend: 'vxlan' } });
});

t.test('apply again: unchanged; edited: configured, ClusterIP and NodePorts kept; stdin', async (t) => {
  const file = writeManifest('edit.yaml', appYaml());
  t.equal((await cli(['apply', '-f', file, '-n', 'edit'])).code, 0);
  const before = JSON.parse((await cli(['get', 'svc', 'web', '-n', 'edit', '-o', 'json'])).stdout);
  const again = await cli(['apply', '-f', file, '-n', 'edit']);
  t.same(again, { code: 0, stdout: 'service/web unchanged\npod/web-1 unchanged\nservice/db unchanged\nendpoints/db unchanged\n', stderr: '' });

  const edited = await cli(['apply', '-f', '-', '-n', 'edit'], { stdin: appYaml('http', ', tier: fe') });
  t.same(edited, { code: 0, stdout: 'service/web configured\npod/web-1 unchanged\nservice/db unchanged\nendpoints/db unchanged\n', stderr: '' });
  const after = JSON.parse((await cli(['get', 'svc', 'web', '-n', 'edit', '-o', 'json'])).stdout);
  t.equal(after.spec.clusterIP, before.spec.clusterIP, 'ClusterIP kept');
  t.same(after.spec.ports.map((p: { nodePort: number }) => p.nodePort), before.spec.ports.map((p: { nodePort: number }) => p.nodePort), 'NodePorts kept');
  t.equal(after.spec.ports[0].targetPort, 'http');
  t.same(after.metadata.labels, { app: 'web', tier: 'fe' });
  t.equal(after.metadata.uid, before.metadata.uid);

  const cc = await cli(['apply', '-f', '-'], { stdin: 'apiVersion: podwire.io/v1\nkind: ClusterConfig\nmetadata: {name: cluster}\nspec: {vni: 0}\n' });
  t.equal(cc.code, 1);
  t.match(cc.stderr, /^podwire: Error from server \(Invalid\): error when applying stdin document 1 \(ClusterConfig cluster\): .*spec\.vni/);
  const ns = await cli(['apply', '-f', '-', '-n', 'other'], { stdin: 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: edit}\nspec: {}\n' });
  t.match(ns, { code: 1, stderr: /does not match the namespace "other"/ });
});

t.test('delete -f and delete TYPE NAME; get after delete fails with NotFound', async (t) => {
  const file = writeManifest('delete.yaml', appYaml());
  t.equal((await cli(['apply', '-f', file, '-n', 'del'])).code, 0);
  const deleted = await cli(['delete', '-f', file, '-n', 'del']);
  t.same(deleted, { code: 0, stdout: 'service/web deleted\npod/web-1 deleted\nservice/db deleted\nendpoints/db deleted\n', stderr: '' });
  const gone = await cli(['get', 'svc', 'web', '-n', 'del']);
  t.equal(gone.code, 1);
  t.equal(gone.stderr, 'podwire: Error from server (NotFound): services "web" not found\n');
  const again = await cli(['delete', 'svc', 'web', '-n', 'del']);
  t.match(again, { code: 1, stderr: /Error from server \(NotFound\)/ });
  t.same(await cli(['delete', 'svc', 'web', '-n', 'del', '--ignore-not-found']), { code: 0, stdout: '', stderr: '' });

  t.equal((await cli(['apply', '-f', file, '-n', 'del'])).code, 0);
  const byName = await cli(['delete', 'po', 'web-1', '-n', 'del']);
  t.same(byName, { code: 0, stdout: 'pod/web-1 deleted\n', stderr: '' });
});

t.test('credentials and usage: wrong token exits 1 with Unauthorized, no server or a bad flag exits 2', async (t) => {
  const wrong = await cli(['get', 'nodes'], { token: 'pwa_wrong' });
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /^podwire: Error from server \(Unauthorized\): /);
  const noServer = await cli(['get', 'nodes'], { env: { PATH: process.env.PATH, HOME } });
  t.equal(noServer.code, 2);
  t.match(noServer.stderr, /no API server configured/);
  t.match(await cli(['get', 'deployments']), { code: 2, stderr: /unknown resource type "deployments"/ });
  t.match(await cli(['get', 'pods', '-o', 'xml']), { code: 2 });
  t.match(await cli(['apply']), { code: 2, stderr: /apply needs -f FILE/ });
  const unreachable = await cli(['get', 'nodes'], { env: { PATH: process.env.PATH, HOME, PODWIRE_SERVER: 'http://127.0.0.1:1' } });
  t.match(unreachable, { code: 1, stderr: /cannot reach the API server http:\/\/127\.0\.0\.1:1 \(from PODWIRE_SERVER\)/ });
});

t.test('token create prints a node token that works until token revoke', async (t) => {
  const created = await cli(['token', 'create', 'n7']);
  t.equal(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  t.match(token, /^\S{20,}$/, 'only the token on stdout');
  t.equal((await cli(['get', 'nodes'], { token })).code, 0, 'the node token authenticates');
  const revoked = await cli(['token', 'revoke', 'n7']);
  t.same(revoked, { code: 0, stdout: 'revoked 1 token(s) of node n7\n', stderr: '' });
  t.match(await cli(['get', 'nodes'], { token }), { code: 1, stderr: /Unauthorized/ });
  t.match(await cli(['token', 'revoke', 'n7']), { code: 1, stderr: /Error from server \(NotFound\)/ });
  t.match(await cli(['token', 'list']), { code: 2 });
});

t.test('get -w prints a row per change', async (t) => {
  const child = spawn(process.execPath, [CLI, 'get', 'pods', '-n', 'watch', '-w'], { env: env(ADMIN_TOKEN), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill());
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  await eventually(async () => err.includes('No resources found'), 'the initial (empty) listing', 10_000);
  const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: w1}\nspec: {nodeName: n1}\n';
  t.equal((await cli(['apply', '-f', '-', '-n', 'watch'], { stdin: pod })).code, 0);
  await eventually(async () => /^w1\s+0\/1\s+Pending\s+<none>\s+n1\s+\d+s$/m.test(out), 'a row for the new pod', 10_000);
  t.match(out, /^NAME\s+READY/, 'a header before the first row');
});
