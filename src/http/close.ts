// Bounded shutdown for HTTP servers. A server's close() waits for every connection that is in the
// middle of a request, and a client that sent half its headers (or half its body) and then went
// quiet holds one open until headersTimeout (60 s): a SIGTERM would wait for it, or be cut off by
// a force-exit timer with status 1. Here close() gives running requests a grace period, then ends
// whatever connections are left.
import type http from 'node:http';
import type { FastifyInstance } from 'fastify';

/** How long close() lets requests that are still running finish before their connections end. */
export const CLOSE_GRACE_MS = 1000;

/** Ends the server's remaining connections graceMs after a close began (cleared once closed). */
export function endConnectionsAfter(server: http.Server, graceMs = CLOSE_GRACE_MS): void {
  if (!server.listening) return;
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  timer.unref();
  server.once('close', () => clearTimeout(timer));
}

/** Makes app.close() end in about graceMs at most, whatever its clients do. */
export function boundCloseTime(app: FastifyInstance, graceMs = CLOSE_GRACE_MS): void {
  app.addHook('preClose', async () => endConnectionsAfter(app.server, graceMs));
}

/** close() for a plain http.Server, bounded the same way; resolves when it has closed. */
export function closeServer(server: http.Server, graceMs = CLOSE_GRACE_MS): Promise<void> {
  if (!server.listening) return Promise.resolve();
  endConnectionsAfter(server, graceMs);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  return closed;
}
