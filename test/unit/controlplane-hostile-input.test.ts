// The control plane API against hostile input (issue 21, items 2 and 3): namespaces and names in
// paths are checked before the store is touched, and no client error is ever a 5xx.
import t from 'tap';
import net from 'node:net';
import { ADMIN_TOKEN, node, pod, service, testServer, type TestServer } from '../lib/controlplane.js';

const MERGE = { 'content-type': 'application/merge-patch+json' };


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
