// Watch over real HTTP (loopback): event order, selector transitions, bookmarks, 410 for a
// revision the store no longer holds, and the list+watch informer relisting after it and riding
// out a server restart.
import t from 'tap';
import { ApiClient, ApiClientError } from '../../src/client/api-client.js';
import { Informer } from '../../src/client/informer.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import type { KubeObject, Pod, WatchEventBody } from '../../src/api/objects.js';
import { ADMIN_TOKEN, eventually, listening, pod } from '../lib/controlplane.js';

t.test('events arrive in revision order, with ADDED for the current state when no resourceVersion is given', async (t) => {
  const store = new MemoryStore();
  const { app, client } = await listening(store);
  t.teardown(async () => {
    client.close();
    await app.close();
    await store.close();
  });
  await client.create({ plural: 'pods', namespace: 'default' }, pod('pre', 'n1', '10.244.0.2', { app: 'a' }));
  const events: WatchEventBody[] = [];
  const stream = await client.watch({ plural: 'pods', namespace: 'default' }, {}, (ev) => events.push(ev));
  for (let i = 0; i < 50; i++) await client.create({ plural: 'pods', namespace: 'default' }, pod(`p${i}`, 'n1', `10.244.0.${10 + i}`, { app: 'a' }));
  const p3 = await client.get<Pod>({ plural: 'pods', namespace: 'default', name: 'p3' });
  await client.update({ plural: 'pods', namespace: 'default', name: 'p3' }, { ...p3, metadata: { ...p3.metadata, labels: { app: 'b' } } });
  await client.delete({ plural: 'pods', namespace: 'default', name: 'p4' });
  await eventually(async () => events.length >= 53, 'all events');
  stream.close();
  t.same(events[0], { type: 'ADDED', object: events[0]!.object }, 'the existing pod first');
  t.equal((events[0]!.object as KubeObject).metadata.name, 'pre');
  t.same(events.slice(1, 51).map((e) => [e.type, (e.object as KubeObject).metadata.name]), Array.from({ length: 50 }, (_, i) => ['ADDED', `p${i}`]), 'creates in order');
  t.same(events.slice(51).map((e) => [e.type, (e.object as KubeObject).metadata.name]), [['MODIFIED', 'p3'], ['DELETED', 'p4']]);
  const rvs = events.map((e) => Number((e.object as KubeObject).metadata.resourceVersion));
  t.ok(rvs.slice(1).every((rv, i) => rv > rvs[i]!), 'resourceVersions strictly increase');

  // Resuming from a known revision replays exactly what came after it.
  const after: WatchEventBody[] = [];
  const resumed = await client.watch({ plural: 'pods', namespace: 'default' }, { resourceVersion: String(rvs[50]) }, (ev) => after.push(ev));
  await eventually(async () => after.length >= 2, 'replayed events');
  resumed.close();
  t.same(after.map((e) => e.type), ['MODIFIED', 'DELETED']);
});

t.test('a label-selected watch turns objects leaving or entering the selection into DELETED / ADDED', async (t) => {
  const store = new MemoryStore();
  const { app, client } = await listening(store);
  t.teardown(async () => {
    client.close();
    await app.close();
    await store.close();
  });
  const ns = { plural: 'pods', namespace: 'default' };
  await client.create(ns, pod('a', 'n1', '10.244.0.2', { app: 'web' }));
  await client.create(ns, pod('b', 'n1', '10.244.0.3', { app: 'db' }));
  const events: WatchEventBody[] = [];
  const stream = await client.watch(ns, { labelSelector: 'app=web' }, (ev) => events.push(ev));
  const a = await client.get<Pod>({ ...ns, name: 'a' });
  const b = await client.get<Pod>({ ...ns, name: 'b' });
  await client.update({ ...ns, name: 'a' }, { ...a, metadata: { ...a.metadata, labels: { app: 'old' } } });
  await client.update({ ...ns, name: 'b' }, { ...b, metadata: { ...b.metadata, labels: { app: 'web' } } });
  await eventually(async () => events.length >= 3, 'events');
  stream.close();
  t.same(events.map((e) => [e.type, (e.object as KubeObject).metadata.name]), [['ADDED', 'a'], ['DELETED', 'a'], ['ADDED', 'b']]);
});

t.test('bookmarks carry the reached revision; a revision older than the history is 410 Expired', async (t) => {
  const store = new MemoryStore({ maxEvents: 5 });
  const { app, client } = await listening(store, 0, 100);
  t.teardown(async () => {
    client.close();
    await app.close();
    await store.close();
  });
  const ns = { plural: 'pods', namespace: 'default' };
  const first = await client.create<Pod>(ns, pod('p0', 'n1', '10.244.0.2', {}));
  const events: WatchEventBody[] = [];
  const stream = await client.watch(ns, { resourceVersion: first.metadata.resourceVersion!, allowWatchBookmarks: 'true' }, (ev) => events.push(ev));
  const second = await client.create<Pod>(ns, pod('p1', 'n1', '10.244.0.3', {}));
  const bookmark = await eventually(async () => events.find((e) => e.type === 'BOOKMARK'), 'a bookmark');
  stream.close();
  t.equal((bookmark.object as KubeObject).metadata.resourceVersion, second.metadata.resourceVersion, 'the bookmark names the last delivered revision');
  for (let i = 2; i < 12; i++) await client.create(ns, pod(`p${i}`, 'n1', `10.244.0.${i + 2}`, {}));
  const err = await client.watch(ns, { resourceVersion: first.metadata.resourceVersion! }, () => undefined).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ApiClientError, 'the watch is refused');
  t.equal((err as ApiClientError).code, 410);
  t.equal((err as ApiClientError).reason, 'Expired');
  t.match((err as ApiClientError).message, /too old resource version/);
  const bad = await client.watch(ns, { resourceVersion: 'abc' }, () => undefined).catch((e: ApiClientError) => e);
  t.equal((bad as ApiClientError).code, 400, 'a non-numeric resourceVersion is a 400');
});

t.test('the informer relists after 410 and rides out a server restart with its cache intact', async (t) => {
  const store = new MemoryStore({ maxEvents: 5 });
  let server = await listening(store);
  const port = Number(new URL(server.url).port);
  const client = new ApiClient({ server: server.url, token: ADMIN_TOKEN });
  const seen: string[] = [];
  const errors: string[] = [];
  const informer = new Informer<Pod>(client, { plural: 'pods' }, { onAdd: (p) => seen.push(`+${p.metadata.name}`), onDelete: (p) => seen.push(`-${p.metadata.name}`), onError: (e) => errors.push(e.message) }, { initialBackoffMs: 20, maxBackoffMs: 200 });
  t.teardown(async () => {
    await informer.stop();
    client.close();
    await server.app.close();
    await store.close();
  });
  const ns = { plural: 'pods', namespace: 'default' };
  await client.create(ns, pod('a', 'n1', '10.244.0.2', {}));
  informer.start();
  await informer.waitForSync(5000);
  t.same([...informer.cache.keys()], ['default/a']);

  // Server goes away: the cache stays; writes made while it is down show up after it returns.
  await server.app.close();
  await eventually(async () => errors.length > 0, 'the informer notices the outage');
  t.same([...informer.cache.keys()], ['default/a'], 'cache kept while the server is down');
  await store.create('/pods/default/b', { ...pod('b', 'n1', '10.244.0.3', {}), metadata: { name: 'b', namespace: 'default' } });
  server = await listening(store, port);
  await eventually(async () => informer.cache.has('default/b'), 'the informer resumes after the restart');

  // Push the informer's revision out of the history while it is disconnected: it must relist.
  const lists = informer.lists;
  await server.app.close();
  for (let i = 0; i < 10; i++) await store.create(`/pods/default/c${i}`, { ...pod(`c${i}`, 'n1', `10.244.1.${i + 2}`, {}), metadata: { name: `c${i}`, namespace: 'default' } });
  await store.delete('/pods/default/a');
  server = await listening(store, port);
  await eventually(async () => informer.cache.size === 11 && !informer.cache.has('default/a'), 'relisted state');
  t.ok(informer.lists > lists, 'it relisted after 410');
  t.ok(seen.includes('-a'), 'the pod deleted during the outage was reported deleted');
});

t.test('an informer with a transform caches and hands on the transformed objects, listed and watched', async (t) => {
  const store = new MemoryStore();
  const server = await listening(store);
  const ns = { plural: 'pods', namespace: 'default' };
  const seen: string[] = [];
  const slim = (p: Pod): Pod => ({ ...p, metadata: { name: p.metadata.name, namespace: p.metadata.namespace, resourceVersion: p.metadata.resourceVersion } });
  const informer = new Informer<Pod>(server.client, { plural: 'pods' }, {
    onAdd: (p) => seen.push(`+${p.metadata.name} uid=${p.metadata.uid ?? '-'}`),
    onUpdate: (old, p) => seen.push(`~${p.metadata.name} ${old.metadata.resourceVersion}→${p.metadata.resourceVersion} labels=${JSON.stringify(p.metadata.labels ?? null)}`),
  }, { transform: slim });
  t.teardown(async () => {
    await informer.stop();
    server.client.close();
    await server.app.close();
    await store.close();
  });
  await server.client.create(ns, pod('a', 'n1', '10.244.0.2', { app: 'x' }));
  informer.start();
  await informer.waitForSync(5000);
  const created = await server.client.create<Pod>(ns, pod('b', 'n1', '10.244.0.3', { app: 'y' }));
  await eventually(async () => informer.cache.has('default/b'), 'b arrives by watch');
  await server.client.update({ ...ns, name: 'b' }, { ...created, metadata: { ...created.metadata, labels: { app: 'z' } } });
  await eventually(async () => seen.length === 3, 'the update arrives');
  t.same(seen.slice(0, 2), ['+a uid=-', '+b uid=-'], 'handlers get the transformed objects (no uid)');
  t.match(seen[2], /^~b \d+→\d+ labels=null$/, 'updates too, told apart by resourceVersion');
  t.same(Object.keys(informer.cache.get('default/b')!.metadata).sort(), ['name', 'namespace', 'resourceVersion'], 'the cache holds the transformed object');
});

t.test('a watch whose client went away while the initial list was read is closed at once', async (t) => {
  // The store's list is held until the client has disconnected: the 'close' of its connection
  // comes before the watch stream exists, and must still end the watch (and its store watcher).
  const store = new MemoryStore();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let listing!: () => void;
  const listed = new Promise<void>((r) => (listing = r));
  const list = store.list.bind(store);
  store.list = (async (prefix: string) => {
    if (prefix.startsWith('/pods')) {
      listing();
      await gate;
    }
    return list(prefix);
  }) as typeof store.list;
  let open = 0;
  let opened = 0;
  const watch = store.watch.bind(store);
  store.watch = (async (...args: Parameters<typeof store.watch>) => {
    const handle = await watch(...args);
    open++;
    opened++;
    return { close: () => (open--, handle.close()) };
  }) as typeof store.watch;
  const { app, url } = await listening(store);
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  const port = Number(new URL(url).port);
  const socket = (await import('node:net')).connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(`GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`);
  await listed;
  socket.destroy();
  await new Promise((r) => setTimeout(r, 100)); // the server has seen the close
  release();
  await eventually(async () => opened === 1 && open === 0, 'the store watcher of the abandoned watch is opened, then closed', 2000);
  t.equal(open, 0);
});
