// Informer.stop() and ApiClient.close() leave nothing running: a list or watch still connecting or
// waiting for its answer is ended, not awaited. Before this, a stop() that met a watch being opened
// waited for the server to end the stream, and the server's close waited for the informer: CI hung
// in the teardown of the informer's restart test (issue 21, item 1).
import t, { type Test } from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiClientError } from '../../src/client/api-client.js';
import { Informer, type InformerHandlers } from '../../src/client/informer.js';
import { buildServer } from '../../src/controlplane/api/server.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import type { Pod } from '../../src/api/objects.js';
import { ADMIN_TOKEN, eventually, pod } from '../lib/controlplane.js';

/** Rejects when p has not settled within ms: a hang becomes a failure that names itself. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const EMPTY_LIST = JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '7' }, items: [] });

/**
 * A raw HTTP server under the test's control: `answerList` decides whether a list is answered,
 * `answerWatch` whether a watch gets its 200 (its stream never ends). It records request lines.
 */
async function rawServer(answerList: boolean, answerWatch: boolean) {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let head = '';
    s.on('data', (chunk) => {
      head += chunk.toString('latin1');
      while (head.includes('\r\n\r\n')) {
        const end = head.indexOf('\r\n\r\n');
        const line = head.slice(0, head.indexOf('\r\n'));
        head = head.slice(end + 4);
        seen.push(line);
        const isWatch = /[?&]watch=1/.test(line);
        if (!isWatch && answerList) s.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${EMPTY_LIST.length}\r\n\r\n${EMPTY_LIST}`);
        if (isWatch && answerWatch) s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    sockets,
    async close() {
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** An informer on pods against a rawServer, both ended in the test's teardown. */
async function informerOn(t: Test, answerList: boolean, answerWatch: boolean, handlers: InformerHandlers<Pod> = {}) {
  const raw = await rawServer(answerList, answerWatch);
  const client = new ApiClient({ server: raw.url, token: ADMIN_TOKEN });
  const informer = new Informer<Pod>(client, { plural: 'pods' }, handlers);
  t.teardown(async () => {
    client.close();
    await raw.close();
  });
  return { raw, client, informer };
}

t.test('stop() ends a list that the server never answers', async (t) => {
  const { raw, client, informer } = await informerOn(t, false, false);
  informer.start();
  const synced = informer.waitForSync(60_000);
  await eventually(async () => raw.seen.length > 0, 'the list request reaches the server');
  await within(informer.stop(), 2000, 'informer.stop() during a list');
  t.equal(client.inFlight, 0, 'no request of the informer is left');
  await t.rejects(synced, /stopped before it synced/, 'a pending waitForSync learns of the stop (its timer is gone)');
  await eventually(async () => raw.sockets.size === 0, 'the connection is closed', 2000);
  t.pass('the server saw the connection close');
});

t.test('stop() ends a watch whose answer has not come yet', async (t) => {
  const { raw, client, informer } = await informerOn(t, true, false);
  informer.start();
  await informer.waitForSync(5000);
  await eventually(async () => raw.seen.some((l) => l.includes('watch=1')), 'the watch request reaches the server');
  await within(informer.stop(), 2000, 'informer.stop() while the watch waits for its answer');
  t.equal(client.inFlight, 0);
});

t.test('stop() ends an open watch stream, and one that opens while stop() runs', async (t) => {
  let watching = 0;
  const { client, informer } = await informerOn(t, true, true, { onWatching: () => watching++ });
  informer.start();
  await eventually(async () => watching > 0, 'the watch is open');
  await within(informer.stop(), 2000, 'informer.stop() on an open watch');
  t.equal(client.inFlight, 0);
});

t.test('ApiClient.close() ends its requests, streams included, and refuses new ones', async (t) => {
  const raw = await rawServer(false, true);
  const client = new ApiClient({ server: raw.url, token: ADMIN_TOKEN });
  t.teardown(() => raw.close());
  const pending = client.list({ plural: 'pods' });
  const stream = await client.watch({ plural: 'pods' }, {}, () => undefined);
  await eventually(async () => raw.seen.length >= 2, 'both requests reach the server');
  t.equal(client.inFlight, 2);
  client.close();
  const err = await within(pending.then(() => undefined, (e: unknown) => e), 2000, 'the pending list after close()');
  t.ok(err instanceof ApiClientError && err.code === 0, 'the pending request rejects');
  await within(stream.done.catch(() => undefined), 2000, 'the watch stream after close()');
  t.equal(client.inFlight, 0);
  await t.rejects(client.list({ plural: 'pods' }), /this client was closed/);
  await eventually(async () => raw.sockets.size === 0, 'the sockets are closed', 2000);
});

t.test('looped: restart the control plane and stop the informer at once, 30 times', async (t) => {
  const store = new MemoryStore({ maxEvents: 5 });
  await store.create('/pods/default/a', { ...pod('a', 'n1', '10.244.0.2', {}), metadata: { name: 'a', namespace: 'default' } });
  const start = async (port = 0) => {
    const app = buildServer({ store, adminTokens: [ADMIN_TOKEN], endpointsController: false });
    await app.listen({ host: '127.0.0.1', port });
    return app;
  };
  let app = await start();
  const port = (app.server.address() as AddressInfo).port;
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  for (let i = 0; i < 30; i++) {
    const client = new ApiClient({ server: `http://127.0.0.1:${port}`, token: ADMIN_TOKEN });
    let watching = 0;
    const informer = new Informer<Pod>(client, { plural: 'pods' }, { onWatching: () => watching++ }, { initialBackoffMs: 1, maxBackoffMs: 5 });
    informer.start();
    await informer.waitForSync(5000);
    await eventually(async () => watching > 0, 'watching');
    // The server goes and comes back; the informer reconnects (backoff, connect, list or watch)
    // and is stopped somewhere in that: each stop must end it, wherever it was.
    await within(app.close(), 2000, `iteration ${i}: the control plane's close with an informer watching`);
    app = await start(port);
    await new Promise((r) => setTimeout(r, i % 10));
    await within(informer.stop(), 2000, `iteration ${i}: informer.stop() ${i % 10} ms after the restart`);
    t.equal(client.inFlight, 0, `iteration ${i}: nothing of the informer is in flight`);
    client.close();
  }
  await within(app.close(), 2000, "the last control plane's close");
  app = await start(port); // for the teardown's close
});
