// Shutdown is bounded whatever the clients do: a client that sent half its headers or half its
// body, a watch opened while the server is closing. The control plane (in-process and as a
// process on SIGTERM, with its unix socket) and the agent's local API each close within 2 s.
// Before, half a request held the control plane until its 10 s force-exit timer (exit code 1).
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApiClient } from '../../src/client/api-client.js';
import { startLocalApi } from '../../src/agent/local-api.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import { startControlPlane } from '../lib/controlplane-process.js';
import { ADMIN_TOKEN, listening } from '../lib/controlplane.js';

const PARTIAL_HEADERS = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ';
const PARTIAL_BODY = `POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"apiVersion":"v1",`;

/** Connects, sends a partial request and goes quiet; resolves once the bytes are written. */
async function halfRequest(where: net.NetConnectOpts, text: string): Promise<net.Socket> {
  const s = net.connect(where);
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  await new Promise<void>((resolve) => s.write(text, () => resolve()));
  await new Promise((r) => setTimeout(r, 100)); // the server has read it
  return s;
}

async function timed(p: Promise<unknown>): Promise<number> {
  const started = Date.now();
  await p;
  return Date.now() - started;
}

t.test('the control plane app closes within 2 s with half-sent requests and a watch open', async (t) => {
  const store = new MemoryStore();
  const { app, port, client } = await listening(store);
  t.teardown(async () => {
    client.close();
    await store.close();
  });
  const a = await halfRequest({ host: '127.0.0.1', port }, PARTIAL_HEADERS);
  const b = await halfRequest({ host: '127.0.0.1', port }, PARTIAL_BODY);
  const stream = await client.watch({ plural: 'pods' }, {}, () => undefined);
  const ms = await timed(app.close());
  t.ok(ms < 2000, `closed in ${ms} ms`);
  await stream.done;
  t.ok(a.destroyed || a.readableEnded || (await new Promise((r) => a.once('close', () => r(true)))), 'the half-headers connection was ended');
  b.destroy();
});

t.test('a watch whose request arrives while the control plane is closing is ended too', async (t) => {
  const store = new MemoryStore();
  // Hold watch requests in an async hook so that close() begins while one is on its way in.
  let held: (() => void) | undefined;
  const arrived = new Promise<void>((r) => (held = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { app, client } = await listening(store, 0, 60_000, (app) =>
    app.addHook('preHandler', async (req) => {
      if (!req.url.includes('watch=1')) return;
      held?.();
      await gate;
    }),
  );
  t.teardown(async () => {
    client.close();
    await store.close();
  });
  const opening = client.watch({ plural: 'pods' }, {}, () => undefined);
  await arrived;
  const closing = timed(app.close());
  await new Promise((r) => setTimeout(r, 50));
  release();
  const stream = await opening.catch(() => undefined);
  const ms = await closing;
  // Well inside the grace period: the watch ended itself and its connection, nothing was cut off.
  t.ok(ms < 800, `closed in ${ms} ms with a watch opened during close`);
  if (stream) await stream.done.catch(() => undefined);
  t.equal(client.inFlight, 0, 'the watch has ended');
});

t.test('podwire-controlplane exits 0 within 2 s of SIGTERM with half-sent requests on TCP and its unix socket', async (t) => {
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cp-sock-'));
  const socketPath = path.join(sockDir, 'cp.sock');
  const cp = await startControlPlane({ args: ['--unix-socket', socketPath] });
  t.teardown(() => {
    fs.rmSync(cp.dir, { recursive: true, force: true });
    fs.rmSync(sockDir, { recursive: true, force: true });
  });
  const sockets = [
    await halfRequest({ host: '127.0.0.1', port: cp.port }, PARTIAL_HEADERS),
    await halfRequest({ host: '127.0.0.1', port: cp.port }, PARTIAL_BODY),
    await halfRequest({ path: socketPath }, PARTIAL_HEADERS),
  ];
  const started = Date.now();
  const code = await cp.stop('SIGTERM');
  const ms = Date.now() - started;
  sockets.forEach((s) => s.destroy());
  t.equal(code, 0, 'exit code 0');
  t.ok(ms < 2000, `exited ${ms} ms after SIGTERM`);
});

t.test("the agent's local API closes within 2 s with a half-sent request", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-agent-sock-'));
  const socketPath = path.join(dir, 'agent.sock');
  const client = new ApiClient({ server: 'http://127.0.0.1:1', token: ADMIN_TOKEN });
  const api = await startLocalApi({ socketPath, client, state: () => ({}) as never });
  t.teardown(() => {
    client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const a = await halfRequest({ path: socketPath }, PARTIAL_HEADERS);
  const b = await halfRequest({ path: socketPath }, 'PUT /api/v1/namespaces/default/pods/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 90\r\n\r\n{');
  const ms = await timed(api.close());
  t.ok(ms < 2000, `closed in ${ms} ms`);
  a.destroy();
  b.destroy();
});
