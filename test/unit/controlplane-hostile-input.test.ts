// The control plane API against hostile input (issue 21, items 2 and 3): namespaces and names in
// paths are checked before the store is touched, bodies are bounded in depth and size, fields a
// kind does not have are dropped (or refused with ?fieldValidation=Strict), and no client error
// is ever a 5xx.
import t from 'tap';
import net from 'node:net';
import { ADMIN_TOKEN, node, pod, service, testServer, type TestServer } from '../lib/controlplane.js';

const MERGE = { 'content-type': 'application/merge-patch+json' };
const STRATEGIC = { 'content-type': 'application/strategic-merge-patch+json' };

/** `{"a":{"a":...inner...}}`, `depth` objects deep, as text (JSON.stringify would recurse). */
function nested(depth: number, inner = '"x"'): string {
  return '{"a":'.repeat(depth) + inner + '}'.repeat(depth);
}

function endpoints(name: string, extra: Record<string, unknown> = {}): object {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name }, subsets: [{ addresses: [{ ip: '10.244.1.5' }], ports: [{ port: 80 }] }], ...extra };
}

const KINDS = [
  { plural: 'services', base: '/api/v1/namespaces/default/services', body: (n: string) => service(n) },
  { plural: 'pods', base: '/api/v1/namespaces/default/pods', body: (n: string) => pod(n, 'node-a', '10.244.1.5', { app: 'web' }) },
  { plural: 'endpoints', base: '/api/v1/namespaces/default/endpoints', body: (n: string) => endpoints(n) },
  { plural: 'nodes', base: '/api/v1/nodes', body: (n: string) => node(n) },
];

async function server(t: { teardown(fn: () => unknown): void }): Promise<TestServer> {
  const s = await testServer({ endpointsController: false });
  t.teardown(() => s.close());
  return s;
}

// What a client can put in a path segment: each decodes to something that is no DNS label.
const BAD_SEGMENTS = ['UPPER', 'a_b', '%20', '%00', '%0A', 'caf%C3%A9', '%252e%252e', 'a%2Fb', 'default%2Fsub', `${'a'.repeat(64)}`, '-a', 'a-'];

t.test('item 2: a namespace in the path must be a DNS-1123 label, checked before the store is touched', async (t) => {
  const s = await server(t);
  const created = await s.call('POST', '/api/v1/namespaces/default%2Fsub/services', service('web'));
  t.equal(created.statusCode, 400, `default%2Fsub is refused: ${created.body}`);
  t.match(created.json, { kind: 'Status', reason: 'BadRequest', message: /namespace "default\/sub".*RFC 1123 label/ });
  t.same((await s.call('GET', '/api/v1/namespaces/default/services')).json.items, [], 'nothing shows up in "default"');

  for (const ns of BAD_SEGMENTS) {
    const calls: [string, string, unknown?, Record<string, string>?][] = [
      ['POST', `/api/v1/namespaces/${ns}/services`, service('web')],
      ['GET', `/api/v1/namespaces/${ns}/services`],
      ['GET', `/api/v1/namespaces/${ns}/services?watch=1&timeoutSeconds=1`],
      ['GET', `/api/v1/namespaces/${ns}/pods/web`],
      ['PUT', `/api/v1/namespaces/${ns}/services/web`, service('web')],
      ['PATCH', `/api/v1/namespaces/${ns}/endpoints/web`, { metadata: { labels: { a: 'b' } } }, MERGE],
      ['DELETE', `/api/v1/namespaces/${ns}/services/web`],
    ];
    for (const [method, url, body, headers] of calls) {
      const r = await s.call(method, url, body, ADMIN_TOKEN, headers);
      t.equal(r.statusCode, 400, `${method} ${url}: ${r.body}`);
      t.equal(r.json?.kind, 'Status');
    }
  }
  // The body's namespace is checked too (and must match the path's).
  const inBody = await s.call('POST', '/api/v1/namespaces/default/services', service('web', {}, { namespace: 'default/sub' }));
  t.equal(inBody.statusCode, 400, inBody.body);
  const everything = await s.store.list('/');
  t.same(everything.items.map((o) => o.key).filter((k) => !k.startsWith('/config/')), [], 'no object was stored');
});

t.test('item 2: "..", "..." and "." over a raw connection (inject() would normalize them away)', async (t) => {
  const s = await server(t);
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = s.app.server.address() as net.AddressInfo;
  const raw = (method: string, path: string, body = ''): Promise<{ code: number; body: string }> =>
    new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => {
        const head = `${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n`;
        c.end(body ? `${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` : `${head}\r\n`);
      });
      let text = '';
      c.on('data', (d) => (text += d));
      c.on('error', reject);
      c.on('end', () => resolve({ code: Number(text.split(' ')[1]), body: text.split('\r\n\r\n').slice(1).join('') }));
    });
  for (const ns of ['..', '...', '.']) {
    const post = await raw('POST', `/api/v1/namespaces/${ns}/services`, JSON.stringify(service('web')));
    t.equal(post.code, 400, `POST into namespace ${ns}: ${post.body}`);
    const list = await raw('GET', `/api/v1/namespaces/${ns}/services`);
    t.equal(list.code, 400, `GET namespace ${ns}: ${list.body}`);
  }
  const name = await raw('GET', '/api/v1/namespaces/default/services/..');
  t.equal(name.code, 404, `a name ".." names nothing: ${name.body}`);
  t.same((await s.store.list('/services')).items, [], 'no object was stored');
});

t.test('item 3: a name its kind cannot have is 404 on GET/PUT/PATCH/DELETE, never 500', async (t) => {
  const s = await server(t);
  for (const kind of KINDS) {
    // 64 characters is too long for a label (services, endpoints), fine for a subdomain (pods, nodes).
    const labelOnly = kind.plural === 'services' || kind.plural === 'endpoints';
    for (const name of [...BAD_SEGMENTS.filter((n) => labelOnly || n.length < 64), 'x'.repeat(254)]) {
      const url = `${kind.base}/${name}`;
      for (const [method, body, headers] of [['GET'], ['DELETE'], ['PUT', kind.body('web')], ['PATCH', { metadata: { labels: { a: 'b' } } }, MERGE]] as [string, unknown?, Record<string, string>?][]) {
        const r = await s.call(method, url, body, ADMIN_TOKEN, headers);
        // kube-apiserver answers 404 (no such object); a name that fails the params schema is a 400.
        t.ok(r.statusCode === 404 || (r.statusCode === 400 && name.length > 253), `${method} ${kind.plural}/${name}: ${r.statusCode} ${r.body}`);
        t.equal(r.json?.kind, 'Status');
      }
    }
  }
  const svc = await s.call('GET', '/api/v1/namespaces/default/services/UPPER');
  t.match(svc.json, { reason: 'NotFound', message: 'services "UPPER" not found', code: 404 });
  // Names a kind's rule refuses are 404 even where another kind's rule allows them: a.b is a fine pod name, not a service name.
  t.equal((await s.call('GET', '/api/v1/namespaces/default/services/a.b')).statusCode, 404);
  const badCreate = await s.call('POST', '/api/v1/namespaces/default/services', service('UPPER'));
  t.equal(badCreate.statusCode, 400, 'creating one is 400 Invalid');
  t.match(badCreate.json.details.causes, [{ field: 'metadata.name', message: /DNS-1035 label/ }]);
  const badUrl = await s.call('GET', '/api/v1/namespaces/default/services/%zz');
  t.equal(badUrl.statusCode, 400, 'a path that does not decode');
  t.match(badUrl.json, { kind: 'Status', reason: 'BadRequest', code: 400 });
});

t.test('item 3: bodies nested deeper than 64 levels are 400 before any handler walks them', async (t) => {
  const s = await server(t);
  t.equal((await s.call('POST', '/api/v1/namespaces/default/services', service('web'))).statusCode, 201);
  t.equal((await s.call('POST', '/api/v1/nodes', node('n1'))).statusCode, 201);
  const deep = nested(10_000);
  const bodies: [string, string, string, Record<string, string>?][] = [
    ['POST', '/api/v1/namespaces/default/services', `{"metadata":{"name":"d1","labels":${deep}},"spec":{"ports":[{"port":80}]}}`],
    ['POST', '/api/v1/namespaces/default/services', `{"metadata":{"name":"d2","annotations":${deep}},"spec":{"ports":[{"port":80}]}}`],
    ['PATCH', '/api/v1/namespaces/default/services/web', `{"metadata":{"labels":${deep}}}`, MERGE],
    ['PATCH', '/api/v1/namespaces/default/services/web', `{"metadata":{"annotations":${deep}}}`, STRATEGIC],
    ['PATCH', '/api/v1/namespaces/default/services/web', `{"spec":${deep}}`, STRATEGIC],
    ['POST', '/api/v1/namespaces/default/endpoints', `{"metadata":{"name":"e"},"subsets":[{"addresses":[${deep}]}]}`],
    ['POST', '/api/v1/namespaces/default/pods', `{"metadata":{"name":"p"},"spec":${deep}}`],
    ['POST', '/api/v1/namespaces/default/pods', `{"metadata":{"name":"p"},"spec":{},"status":{"x":${deep}}}`],
    ['POST', '/api/v1/nodes', `{"metadata":{"name":"n2"},"spec":${deep}}`],
    ['POST', '/api/v1/nodes', `{"metadata":{"name":"n3"},"extra":${nested(3000)}}`],
    ['PUT', '/api/v1/nodes/n1', `{"metadata":{"name":"n1"},"extra":${deep}}`],
    ['POST', '/api/v1/namespaces/default/services', '['.repeat(1_000_000) + ']'.repeat(1_000_000)],
  ];
  for (const [method, url, body, headers] of bodies) {
    const r = await s.call(method, url, body, ADMIN_TOKEN, headers);
    t.equal(r.statusCode, 400, `${method} ${url} ${body.slice(0, 40)}...: ${r.body.slice(0, 200)}`);
    t.match(r.json, { kind: 'Status', reason: 'BadRequest', message: 'request body nests deeper than 64 levels of objects and lists' });
  }
  // 64 levels is still a body (the unknown field is then dropped).
  const atLimit = await s.call('POST', '/api/v1/nodes', `{"metadata":{"name":"n4"},"extra":${nested(63, '1')}}`);
  t.equal(atLimit.statusCode, 201, atLimit.body);
  t.notOk('extra' in atLimit.json, 'dropped');
  const got = await s.call('GET', '/api/v1/nodes');
  t.equal(got.statusCode, 200, 'the nodes still list (podwire get nodes -o yaml)');
  t.same(got.json.items.map((n: { metadata: { name: string } }) => n.metadata.name).sort(), ['n1', 'n4']);
});

t.test('item 3: bodies over 3 MiB are 413 with a clear message', async (t) => {
  const s = await server(t);
  const r = await s.call('POST', '/api/v1/namespaces/default/services', JSON.stringify({ ...service('big'), pad: 'x'.repeat(3 * 1024 * 1024) }));
  t.equal(r.statusCode, 413);
  t.match(r.json, { kind: 'Status', reason: 'RequestEntityTooLarge', message: /larger than the limit of 3145728 bytes/, code: 413 });
});

t.test('item 3: unknown fields are dropped with a warning, refused with fieldValidation=Strict', async (t) => {
  const s = await server(t);
  const withExtra = { ...(node('n1') as Record<string, unknown>), extra: { deep: { er: [1, 2, { x: 'y' }] } }, spec: { podCIDR: '10.244.7.0/24', bogus: true } };
  const strict = await s.app.inject({ method: 'POST', url: '/api/v1/nodes?fieldValidation=Strict', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: withExtra });
  t.equal(strict.statusCode, 400, strict.body);
  t.match(strict.json(), { reason: 'BadRequest', message: 'strict decoding error: unknown field "spec.bogus", unknown field "extra"' });
  t.equal((await s.call('GET', '/api/v1/nodes/n1')).statusCode, 404, 'nothing stored');

  const warned = await s.app.inject({ method: 'POST', url: '/api/v1/nodes', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: withExtra });
  t.equal(warned.statusCode, 201, warned.body);
  t.same(warned.headers.warning, ['299 - "unknown field \\"spec.bogus\\""', '299 - "unknown field \\"extra\\""'], 'Warn (the default) says what was dropped');
  const stored = (await s.store.get<Record<string, any>>('/nodes/n1'))!.value;
  t.notOk('extra' in stored, 'extra is not stored');
  t.same(stored.spec, { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] });

  const ignored = await s.app.inject({ method: 'POST', url: '/api/v1/nodes?fieldValidation=Ignore', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: { ...withExtra, metadata: { name: 'n2' }, spec: {} } });
  t.equal(ignored.statusCode, 201);
  t.equal(ignored.headers.warning, undefined, 'Ignore: no warning');
  const badMode = await s.call('POST', '/api/v1/nodes?fieldValidation=strict', node('n3'));
  t.equal(badMode.statusCode, 400, 'fieldValidation values are case-sensitive, as in Kubernetes');

  // Kubernetes fields podwire does not model are dropped without a word, even under Strict: kubectl
  // sends Strict by default, and a real manifest must still create.
  const manifest: Record<string, any> = {
    ...(pod('web-1', 'node-a', '10.244.1.5', { app: 'web' }) as Record<string, any>),
    metadata: { name: 'web-1', labels: { app: 'web' }, finalizers: ['x/y'], managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:metadata': {} } }], ownerReferences: [] },
  };
  manifest.spec = { ...manifest.spec, restartPolicy: 'Always', volumes: [{ name: 'v', emptyDir: {} }] };
  manifest.spec.containers = [{ name: 'c', image: 'busybox', env: [{ name: 'A', value: 'b' }], ports: [{ containerPort: 8080, hostPort: 80 }] }];
  manifest.status = { ...manifest.status, startTime: '2024-01-01T00:00:00Z', containerStatuses: [] };
  const real = await s.app.inject({ method: 'POST', url: '/api/v1/namespaces/default/pods?fieldValidation=Strict', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: manifest });
  t.equal(real.statusCode, 201, real.body);
  t.equal(real.headers.warning, undefined);
  const created = real.json();
  t.same(Object.keys(created.metadata).sort(), ['creationTimestamp', 'labels', 'name', 'namespace', 'resourceVersion', 'uid']);
  t.same(created.spec, { nodeName: 'node-a', containers: [{ name: 'c', image: 'busybox', ports: [{ containerPort: 8080 }] }] });
  // null is "unset", as a Go decoder reads it (kubectl's dry-run output carries creationTimestamp: null).
  const nulls = await s.call('POST', '/api/v1/namespaces/default/services', { ...service('nulls'), metadata: { name: 'nulls', creationTimestamp: null }, status: null });
  t.equal(nulls.statusCode, 201, nulls.body);

  // Patches: the merged object is decoded the same way.
  const patched = await s.app.inject({ method: 'PATCH', url: '/api/v1/nodes/n1', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...MERGE }, payload: { extra: 1, metadata: { labels: { a: 'b' } } } });
  t.equal(patched.statusCode, 200, patched.body);
  t.same(patched.headers.warning, ['299 - "unknown field \\"extra\\""']);
  t.same(patched.json().metadata.labels, { a: 'b' });
  const strictPatch = await s.app.inject({ method: 'PATCH', url: '/api/v1/nodes/n1?fieldValidation=Strict', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...MERGE }, payload: { spec: { nope: 1 } } });
  t.equal(strictPatch.statusCode, 400);
  t.match(strictPatch.json(), { message: 'strict decoding error: unknown field "spec.nope"' });
  // A field name is client text: the warning header stays ASCII.
  const odd = await s.app.inject({ method: 'PATCH', url: '/api/v1/nodes/n1', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...MERGE }, payload: { 'é\n\u0000': 1 } });
  t.equal(odd.statusCode, 200, odd.body);
  t.same(odd.headers.warning, ['299 - "unknown field \\"\\u00e9\\\\n\\\\u0000\\""']);
});

type Json = Record<string, unknown> | unknown[];

/** Sets "spec.ports[0].name" in obj, creating objects and one-element lists on the way. */
function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(/\.|(?=\[)/).map((p) => (p.startsWith('[') ? Number(p.slice(1, -1)) : p));
  let at: Json = obj;
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    const container = at as Record<string | number, unknown>;
    if (last) container[part] = value;
    else {
      const nextIsIndex = typeof parts[i + 1] === 'number';
      const existing = container[part];
      if (typeof existing !== 'object' || existing === null) container[part] = nextIsIndex ? [{}] : {};
      at = container[part] as Json;
    }
  });
}

t.test('item 3: every field a kind keeps is validated: an object where a scalar belongs is 400, never stored', async (t) => {
  const { NODE_SHAPE, POD_SHAPE, SERVICE_SHAPE, ENDPOINTS_SHAPE, leafPaths } = await import('../../src/controlplane/decode.js');
  const s = await server(t);
  const fullNode = () => ({ ...(node('n1') as object), status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], conditions: [{ type: 'Ready', status: 'True' }] } });
  const fullService = () => service('web', { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10 } } });
  const fullEndpoints = () => endpoints('web', { subsets: [{ addresses: [{ ip: '10.244.1.5', targetRef: { kind: 'Pod', name: 'p' } }], notReadyAddresses: [{ ip: '10.244.1.6' }], ports: [{ name: 'http', port: 80 }] }] });
  const cases = [
    { shape: NODE_SHAPE, base: '/api/v1/nodes', body: fullNode },
    { shape: POD_SHAPE, base: '/api/v1/namespaces/default/pods', body: () => pod('p', 'node-a', '10.244.1.5', { app: 'web' }) },
    { shape: SERVICE_SHAPE, base: '/api/v1/namespaces/default/services', body: fullService },
    { shape: ENDPOINTS_SHAPE, base: '/api/v1/namespaces/default/endpoints', body: fullEndpoints },
  ];
  const hostile = { a: { b: [1, { c: 'd' }] } };
  for (const { shape, base, body } of cases) {
    t.equal((await s.call('POST', base, body())).statusCode, 201, `${base}: the base object is valid`);
    await s.call('DELETE', `${base}/${(body() as { metadata: { name: string } }).metadata.name}`);
    for (const leaf of leafPaths(shape)) {
      const bad = structuredClone(body()) as Record<string, unknown>;
      setPath(bad, leaf, hostile);
      const r = await s.call('POST', base, bad);
      const causes: { field?: string }[] = r.json?.details?.causes ?? [];
      const named = causes.some((c) => c.field?.startsWith(leaf)) || String(r.json?.message).includes(leaf);
      t.ok(r.statusCode === 400 && named, `${base} with an object at ${leaf}: ${r.statusCode} ${r.body.slice(0, 300)}`);
    }
  }
});

t.test('item 3: labels and annotations are strings, annotations at most 256 KiB in all', async (t) => {
  const s = await server(t);
  const labels = await s.call('POST', '/api/v1/namespaces/default/services', service('web', {}, { labels: { app: { deep: 'x' } } }));
  t.equal(labels.statusCode, 400);
  t.match(labels.json.details.causes, [{ field: 'metadata.labels[app]', message: /must be a string/ }]);
  const big = await s.call('POST', '/api/v1/namespaces/default/services', service('web', {}, { annotations: { a: 'x'.repeat(200 * 1024), b: 'y'.repeat(60 * 1024) } }));
  t.equal(big.statusCode, 400, big.body.slice(0, 300));
  t.match(big.json.details.causes, [{ field: 'metadata.annotations', message: 'Too long: must have at most 262144 bytes' }]);
  t.ok(big.body.length < 4096, `the message quotes no megabytes of client text (${big.body.length} bytes)`);
  const kubectlApply = await s.call('POST', '/api/v1/namespaces/default/services', service('web', {}, { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(service('web')) } }));
  t.equal(kubectlApply.statusCode, 201, 'kubectl apply annotation: ' + kubectlApply.body);
});

t.test('item 3: hostile bodies on every write are 4xx Status objects, never 5xx', async (t) => {
  const s = await server(t);
  for (const kind of KINDS) t.equal((await s.call('POST', kind.base, kind.body('web'))).statusCode, 201);
  const bodies = [
    '', 'null', '1', '"x"', '[]', '{}', 'true', '{"metadata":[]}', '{"metadata":{"name":{}}}', '{"metadata":{"name":"web","labels":[]}}',
    '{"metadata":{"name":"web","annotations":{"a":null}}}', '{"metadata":{"name":"web","namespace":7}}', `{"metadata":{"name":"web"},"${'k'.repeat(100_000)}":1}`,
    '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '{"metadata":{"name":"web","labels":{"__proto__":"x"}}}',
    '{"metadata":{"name":"web","resourceVersion":{}}}', '{"metadata":{"name":"web","uid":[]}}', '{"metadata":{"name":"web"},"spec":[],"status":"x"}',
    '{"metadata":{"name":"web"},"subsets":{}}', '{"kind":{},"apiVersion":[],"metadata":{"name":"web"}}', '{"metadata":{"name":"web"},"spec":{"ports":[null]}}',
    `{"metadata":{"name":"web","labels":{"${'a'.repeat(70)}":"b"}}}`, '{bad json', '{"metadata":{"name":"web"}', nested(65),
    `{"metadata":{"name":"web","labels":${nested(10_000)}}}`, `{"metadata":{"name":"web"},"spec":${nested(10_000)},"subsets":${nested(10_000)}}`,
  ];
  const failures: string[] = [];
  for (const kind of KINDS) {
    for (const body of bodies) {
      for (const [method, url, headers] of [['POST', kind.base, {}], ['PUT', `${kind.base}/web`, {}], ['PATCH', `${kind.base}/web`, MERGE], ['PATCH', `${kind.base}/web`, STRATEGIC]] as [string, string, Record<string, string>][]) {
        const r = await s.call(method, url, body, ADMIN_TOKEN, { 'content-type': 'application/json', ...headers });
        if (r.statusCode >= 500 || (r.statusCode >= 400 && r.json?.kind !== 'Status')) failures.push(`${method} ${url} ${body.slice(0, 60)}: ${r.statusCode} ${r.body.slice(0, 200)}`);
      }
    }
  }
  t.same(failures, [], 'every answer is below 500 and errors are Status objects');
});

t.test('the store key builder takes only checked names (a cast cannot smuggle a "/" in)', async (t) => {
  const { storeKey, storePrefix, pathNamespace, pathName } = await import('../../src/controlplane/api/keys.js');
  const { resource } = await import('../../src/controlplane/api/resources.js');
  const services = resource('services');
  t.equal(storeKey(services, pathNamespace('default'), pathName(services, 'web')), '/services/default/web');
  t.equal(storePrefix(services, pathNamespace('kube-system')), '/services/kube-system');
  t.throws(() => pathNamespace('default/sub'), { code: 400, reason: 'BadRequest' });
  t.throws(() => pathName(services, 'a.b'), { code: 404, reason: 'NotFound' });
  type Checked = Parameters<typeof storeKey>;
  t.throws(() => storeKey(services, 'a/b' as Checked[1], 'web' as Checked[2]), /unchecked text/);
  t.throws(() => storeKey(services, 'default' as Checked[1], '..' as Checked[2]), /unchecked text/);
  t.throws(() => storeKey(services, undefined, 'web' as Checked[2]), /unchecked text/, 'a namespaced kind needs a namespace');
  t.throws(() => storePrefix(services, '../x' as Checked[1]), /unchecked text/);
});

t.test('spec.publishNotReadyAddresses is kept (cluster DNS reads it), not dropped like the fields podwire does not model', async (t) => {
  const s = await server(t);
  const created = await s.call('POST', '/api/v1/namespaces/default/services', service('db', { clusterIP: 'None', publishNotReadyAddresses: true }));
  t.equal(created.statusCode, 201, created.body.slice(0, 300));
  const got = await s.call('GET', '/api/v1/namespaces/default/services/db');
  t.equal(got.json?.spec?.publishNotReadyAddresses, true);
});
