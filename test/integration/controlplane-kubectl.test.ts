// A stock kubectl against podwire-controlplane (HTTPS with a self-signed certificate: kubectl sends
// bearer tokens only over TLS): create -f, get (table, -o json, jsonpath), get -w, label, delete,
// for Services, Endpoints, Pods and Nodes; a node token is refused what it may not do.
import t from 'tap';
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { CONTROLPLANE_MAIN, initDataDir, selfSignedCert, startControlPlane } from '../lib/controlplane-process.js';
import { eventually } from '../lib/controlplane.js';

const haveKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

function kubeconfig(file: string, server: string, ca: string, token: string): void {
  const text = `apiVersion: v1
kind: Config
clusters:
- name: podwire
  cluster: {server: "${server}", certificate-authority: "${ca}"}
users:
- name: user
  user: {token: "${token}"}
contexts:
- name: podwire
  context: {cluster: podwire, user: user, namespace: default}
current-context: podwire
`;
  fs.writeFileSync(file, text, { mode: 0o600 });
}

function kubectl(config: string, args: string[], input?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['--kubeconfig', config, ...args], { timeout: 30_000, env: { ...process.env, KUBECONFIG: '' } }, (err, out, errOut) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: errOut });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

const MANIFESTS = `apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
  annotations: {podwire.io/public-ip: 192.168.50.2}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels: {app: web}
spec:
  nodeName: node-a
  containers: [{name: web, image: busybox}]
status:
  phase: Running
  podIP: 10.244.0.5
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: external-db
subsets:
- addresses: [{ip: 192.168.50.10}]
  ports: [{port: 5432}]
`;

t.test('kubectl create/get/get -w/label/delete against podwire', { skip: haveKubectl ? false : 'kubectl not installed' }, async (t) => {
  const dir = initDataDir();
  const tls = selfSignedCert(dir);
  const cp = await startControlPlane({ dir, tls });
  t.teardown(async () => {
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const admin = path.join(dir, 'admin.kubeconfig');
  kubeconfig(admin, cp.url, tls.cert, cp.token);

  const created = await kubectl(admin, ['create', '-f', '-'], MANIFESTS);
  t.equal(created.code, 0, created.err);
  t.match(created.out, /service\/web created[\s\S]*node\/node-a created[\s\S]*pod\/web-1 created[\s\S]*endpoints\/external-db created/);

  const svc = JSON.parse((await kubectl(admin, ['get', 'svc', 'web', '-o', 'json'])).out);
  t.match(svc.spec, { type: 'NodePort', clusterIP: /^10\.\d+\.\d+\.\d+$/, ports: [{ port: 80, nodePort: Number }] });
  const podCidr = await kubectl(admin, ['get', 'nodes', 'node-a', '-o', 'jsonpath={.spec.podCIDR}']);
  t.match(podCidr.out, /^10\.244\.\d+\.0\/24$/, 'the node got a podCIDR');
  const table = await kubectl(admin, ['get', 'services']);
  t.match(table.out, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/m, 'server-side table columns, as kube-apiserver prints services');
  t.match(table.out, new RegExp(`^web\\s+NodePort\\s+${svc.spec.clusterIP.replace(/\./g, '\\.')}\\s+<none>\\s+80:${svc.spec.ports[0].nodePort}/TCP\\s`, 'm'), 'get services shows web\'s type, ClusterIP and ports');
  t.match((await kubectl(admin, ['get', 'services', '-o', 'wide'])).out, /^NAME\s+TYPE\s+.*\s+SELECTOR$/m, '-o wide adds the wide columns');
  const ep = await eventually(async () => {
    const r = await kubectl(admin, ['get', 'endpoints', 'web', '-o', 'jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}']);
    return r.out === '10.244.0.5:8080' ? r.out : undefined;
  }, 'endpoints of web through kubectl', 10_000);
  t.equal(ep, '10.244.0.5:8080', 'endpoints derived from the pod');
  t.equal((await kubectl(admin, ['get', 'ep', 'external-db', '-o', 'jsonpath={.subsets[0].addresses[0].ip}'])).out, '192.168.50.10');

  // get -w: events for a create, a label change and a delete made meanwhile.
  const watch = spawn('kubectl', ['--kubeconfig', admin, 'get', 'services', '-w', '-o', 'name'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let watched = '';
  watch.stdout.setEncoding('utf8').on('data', (s: string) => (watched += s));
  const watchExit = new Promise((r) => watch.on('close', r));
  t.teardown(async () => {
    if (watch.exitCode === null) watch.kill('SIGTERM');
    await watchExit;
  });
  await eventually(async () => watched.includes('service/web'), 'the watch lists web first');
  t.equal((await kubectl(admin, ['create', 'service', 'clusterip', 'db', '--tcp=5432:5432'])).code, 0, 'kubectl create service clusterip');
  const labelled = await kubectl(admin, ['label', 'service', 'web', 'tier=front']);
  t.equal(labelled.code, 0, labelled.err);
  t.equal((await kubectl(admin, ['delete', 'service', 'db'])).code, 0);
  await eventually(async () => (watched.match(/service\/db/g) ?? []).length >= 2 && (watched.match(/service\/web/g) ?? []).length >= 2, 'watch events for db (added, deleted) and web (labelled)');
  watch.kill('SIGTERM');
  t.equal((await kubectl(admin, ['get', 'svc', 'web', '-o', 'jsonpath={.metadata.labels.tier}'])).out, 'front', 'kubectl label went through');

  const invalid = await kubectl(admin, ['create', '-f', '-'], 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 70000}]}\n');
  t.not(invalid.code, 0);
  t.match(invalid.err, /spec\.ports\[0\]\.port/, 'kubectl shows the field the server refused');
  // kubectl asks for fieldValidation=Strict: a field no Kubernetes Service has is refused, one podwire
  // does not model (ipFamilies, appProtocol) is dropped quietly.
  const unknown = await kubectl(admin, ['create', '-f', '-'], 'apiVersion: v1\nkind: Service\nmetadata: {name: typo}\nspec: {ports: [{port: 80}], selectr: {app: x}}\n');
  t.not(unknown.code, 0);
  t.match(unknown.err, /strict decoding error: unknown field "spec.selectr"/);
  const known = await kubectl(admin, ['create', '-f', '-'], 'apiVersion: v1\nkind: Service\nmetadata: {name: dual, creationTimestamp: null}\nspec: {ipFamilies: [IPv4], ports: [{port: 80, appProtocol: http}]}\nstatus: {loadBalancer: {}}\n');
  t.equal(known.code, 0, known.err);
  t.equal((await kubectl(admin, ['annotate', 'service', 'dual', 'note=hi'])).code, 0, 'kubectl annotate');
  const patched = await kubectl(admin, ['patch', 'service', 'dual', '--type', 'merge', '-p', '{"metadata":{"labels":{"x":"y"}}}']);
  t.equal(patched.code, 0, patched.err);
  t.equal((await kubectl(admin, ['get', 'svc', 'dual', '-o', 'jsonpath={.metadata.annotations.note}/{.metadata.labels.x}'])).out, 'hi/y');
  t.equal((await kubectl(admin, ['delete', 'service', 'dual'])).code, 0);
  const badNs = await kubectl(admin, ['get', 'services', '-n', 'Not_A_Namespace']);
  t.not(badNs.code, 0);
  t.match(badNs.err, /BadRequest|invalid namespace/, 'an impossible namespace is a clear 400');
  t.match((await kubectl(admin, ['get', 'service', 'UPPER'])).err, /NotFound/, 'an impossible name is NotFound');

  const nodeToken = (await fetchJson(cp.url, tls.cert, cp.token, 'POST', '/api/v1/nodes/node-a/token')).token as string;
  const nodeConfig = path.join(dir, 'node.kubeconfig');
  kubeconfig(nodeConfig, cp.url, tls.cert, nodeToken);
  t.equal((await kubectl(nodeConfig, ['get', 'services', '-o', 'name'])).out.trim(), 'service/web', 'a node token reads services');
  const refused = await kubectl(nodeConfig, ['delete', 'service', 'web']);
  t.not(refused.code, 0);
  t.match(refused.err, /Forbidden/, 'a node token may not delete services');

  const deleted = await kubectl(admin, ['delete', '-f', '-'], MANIFESTS);
  t.equal(deleted.code, 0, deleted.err);
  t.match(deleted.out, /service "web" deleted/);
  const gone = await kubectl(admin, ['get', 'svc', 'web']);
  t.not(gone.code, 0);
  t.match(gone.err, /NotFound/);
});

async function fetchJson(server: string, ca: string, token: string, method: string, urlPath: string): Promise<Record<string, unknown>> {
  const { ApiClient } = await import('../../src/client/api-client.js');
  const c = new ApiClient({ server, token, ca: fs.readFileSync(ca) });
  try {
    return await c.request(method, urlPath);
  } finally {
    c.close();
  }
}

t.test('kubectl get svc -n kube-system kube-dns: the cluster DNS Service the control plane made at init', { skip: haveKubectl ? false : 'kubectl not installed' }, async (t) => {
  const dir = initDataDir(['--service-cidr', '10.100.0.0/16', '--cluster-domain', 'corp.example']);
  const tls = selfSignedCert(dir);
  const cp = await startControlPlane({ dir, tls });
  t.teardown(async () => {
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const admin = path.join(dir, 'admin.kubeconfig');
  kubeconfig(admin, cp.url, tls.cert, cp.token);
  const table = await kubectl(admin, ['get', 'svc', '-n', 'kube-system', 'kube-dns']);
  t.equal(table.code, 0, table.err);
  t.match(table.out, /^kube-dns\s+ClusterIP\s+10\.100\.0\.10\s+<none>\s+53\/UDP,53\/TCP\s/m, `the 10th address of the service CIDR, ports 53/UDP and 53/TCP:\n${table.out}`);
  t.equal((await kubectl(admin, ['get', 'svc', '-n', 'kube-system', '-l', 'k8s-app=kube-dns', '-o', 'name'])).out.trim(), 'service/kube-dns', 'labelled k8s-app=kube-dns');
  const ports = await kubectl(admin, ['get', 'svc', '-n', 'kube-system', 'kube-dns', '-o', 'jsonpath={range .spec.ports[*]}{.name}={.port}/{.protocol} {end}']);
  t.equal(ports.out.trim(), 'dns=53/UDP dns-tcp=53/TCP');
  const config = JSON.parse((await kubectl(admin, ['get', '--raw', '/api/v1/clusterconfig'])).out);
  t.match(config.spec, { clusterDNS: '10.100.0.10', clusterDomain: 'corp.example' }, 'what agents read');
  const taken = await kubectl(admin, ['create', 'service', 'clusterip', 'thief', '--tcp=53:53', '--clusterip=10.100.0.10']);
  t.not(taken.code, 0);
  t.match(taken.err, /reserved for the cluster DNS Service kube-system\/kube-dns/, 'no other Service gets its address');
});

t.test('init --cluster-dns / --cluster-domain are validated (exit 2, nothing written)', async (t) => {
  for (const [args, message] of [
    [['--cluster-dns', '10.244.0.10'], /spec\.clusterDNS: Invalid value: "10\.244\.0\.10": clusterDNS "10\.244\.0\.10": not an IPv4 address in the service CIDR 10\.96\.0\.0\/12/],
    [['--cluster-dns', 'dns'], /spec\.clusterDNS/],
    [['--cluster-domain', 'Cluster.Local'], /spec\.clusterDomain/],
  ] as const) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cp-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const r = spawnSync('node', [CONTROLPLANE_MAIN, 'init', '--data-dir', path.join(dir, 'd'), ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.match(r.stderr, message);
    t.notOk(fs.existsSync(path.join(dir, 'd')), 'nothing written');
  }
  const dir = initDataDir(['--cluster-dns', '10.96.0.53']);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.match(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).spec, { clusterDNS: '10.96.0.53', clusterDomain: 'cluster.local' });
});
