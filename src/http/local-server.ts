// The HTTP server behind a podwire unix socket (the control plane's --unix-socket, the agent's
// local API): 0600 from the moment it exists (private-socket.ts), and idle keep-alive connections
// kept as long as fastify keeps its TCP ones (72 s), not Node's 5 s. With 5 s, a client whose
// event loop was blocked past that (a test or script in spawnSync) found its pooled connection
// already closed by the server and its next request failed with ECONNRESET.
import http from 'node:http';
import { privateListen } from './private-socket.js';

/** fastify's own default keepAliveTimeout, which its TCP listener uses. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export function localHttpServer(handler: http.RequestListener): http.Server {
  const server = privateListen(http.createServer(handler));
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  return server;
}
