// A client blocked longer than a server's keep-alive must not lose its next request: the lab's
// tests and scripts call the CLI with spawnSync, which blocks their event loop for seconds, and
// Node's 5 s keepAliveTimeout on the unix-socket listeners made the next admin request fail with
// ECONNRESET ("the connection closed before the answer was complete") now and then in CI.
import t from 'tap';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ApiClient } from '../../src/client/api-client.js';
import { KEEP_ALIVE_TIMEOUT_MS, localHttpServer } from '../../src/http/local-server.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-keepalive-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const listen = (server: http.Server, sock: string) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(sock, resolve));
const answer: http.RequestListener = (req, res) => {
  req.resume();
  req.on('end', () => res.setHeader('content-type', 'application/json').end(JSON.stringify({ ok: true })));
};

t.test('over a unix socket, a request after the event loop was blocked past the server keep-alive succeeds', async (t) => {
  const sock = path.join(dir, 'short.sock');
  const server = http.createServer(answer);
  server.keepAliveTimeout = 2000; // well under the block below (Node's server closes about 1 s after it), as its default 5 s was under a 6 s spawnSync; a hint under 2 s would make the client drop the connection itself
  await listen(server, sock);
  const client = new ApiClient({ server: 'http://podwire-controlplane', socketPath: sock });
  t.teardown(() => {
    client.close();
    server.close();
  });
  t.same(await client.request('POST', '/x', { a: 1 }), { ok: true });
  spawnSync('sleep', ['3.5']); // the server closes its idle connections meanwhile; the client cannot see it
  t.same(await client.request('POST', '/x', { a: 2 }), { ok: true }, 'no pooled connection the server closed is reused');
  t.same(await client.request('GET', '/x'), { ok: true });
});

t.test('podwire unix-socket servers keep idle connections as long as fastify keeps its TCP ones', async (t) => {
  const sock = path.join(dir, 'local.sock');
  const server = localHttpServer(answer);
  await listen(server, sock);
  t.teardown(() => server.close());
  t.equal(server.keepAliveTimeout, KEEP_ALIVE_TIMEOUT_MS);
  t.equal(KEEP_ALIVE_TIMEOUT_MS, 72_000, "fastify's default");
  t.equal(fs.statSync(sock).mode & 0o777, 0o600, 'still private from the start');
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.request({ socketPath: sock, path: '/', agent: new http.Agent({ keepAlive: true }) }, resolve).on('error', reject).end());
  res.resume();
  t.match(res.headers['keep-alive'], /^timeout=72\b/, 'the hint a pooling client reads');
  res.socket.destroy();
});
