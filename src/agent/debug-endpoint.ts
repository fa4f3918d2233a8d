// The agent's authenticated HTTPS debug endpoint (--debug-listen HOST:PORT, off by default;
// recommended :10262, the underlay address): the same read-only routes as the local socket
// (GET /v1/status and /v1/debug/*, registered by debug/routes.ts), for the CLI on other machines.
// Every request needs "Authorization: Bearer T" where the control plane's TokenReview says T is an
// admin's (debug-access.ts): 401 without a token or with an unknown one, 403 for other users
// (a node token), 503 when the control plane cannot be asked. The pod routes of the local socket
// (the CNI plugin's) are not served here.
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { boundCloseTime } from '../http/close.js';
import { isIp } from '../net/index.js';
import { accessVerdict, bearerToken, NO_TOKEN_MESSAGE, type TokenReviewer } from './debug-access.js';
import { registerDebugRoutes, type DebugDeps } from './debug/routes.js';

export const DEFAULT_DEBUG_PORT = 10262;

export interface DebugEndpointDeps {
  listen: { host: string; port: number };
  tls: { cert: Buffer; key: Buffer };
  reviewer: Pick<TokenReviewer, 'review'>;
  /** /v1/status, as on the local socket. */
  state: () => unknown;
  /** Absent in tests that only check the access rules. */
  debug?: DebugDeps;
}

export interface DebugEndpoint {
  app: FastifyInstance;
  /** Where it listens (the port resolved when 0 was asked for). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

const status = (code: number, reason: string, message: string) => ({ apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', reason, message, code });

export async function startDebugEndpoint(deps: DebugEndpointDeps): Promise<DebugEndpoint> {
  const app = Fastify({ logger: false, https: { cert: deps.tls.cert, key: deps.tls.key } });
  boundCloseTime(app);
  app.addHook('onRequest', async (req, reply) => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return reply.code(401).send(status(401, 'Unauthorized', NO_TOKEN_MESSAGE));
    let verdict;
    try {
      verdict = accessVerdict(await deps.reviewer.review(token));
    } catch (e) {
      return reply.code(503).send(status(503, 'ServiceUnavailable', `the agent cannot check the token with the control plane: ${(e as Error).message}`));
    }
    if (!verdict.ok) return reply.code(verdict.code).send(status(verdict.code, verdict.code === 401 ? 'Unauthorized' : 'Forbidden', verdict.message));
  });
  app.get('/v1/status', async () => deps.state());
  if (deps.debug) registerDebugRoutes(app, deps.debug);
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const code = err.statusCode ?? 500;
    reply.code(code).send(status(code, code === 400 ? 'BadRequest' : 'InternalError', err.message));
  });
  await app.listen({ host: deps.listen.host, port: deps.listen.port });
  const port = (app.server.address() as AddressInfo).port;
  return { app, address: { host: deps.listen.host, port }, close: () => app.close() };
}

/** "HOST:PORT" or ":PORT" (host: the node's underlay address); undefined for "off" or "". */
export function parseDebugListen(text: string, underlayIp: string): { host: string; port: number } | undefined {
  if (text === '' || text === 'off') return undefined;
  const m = /^([0-9.]*):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535 || (m[1] !== '' && !isIp(m[1], 4))) throw new Error(`--debug-listen: expected IPV4:PORT or :PORT (the underlay address, e.g. :${DEFAULT_DEBUG_PORT}) or off, got ${JSON.stringify(text)}`);
  return { host: m[1] === '' ? underlayIp : m[1]!, port };
}

/** The URL the Node publishes: the listening address, or the underlay address for 0.0.0.0. */
export function debugEndpointUrl(address: { host: string; port: number }, underlayIp: string): string {
  return `https://${address.host === '0.0.0.0' ? underlayIp : address.host}:${address.port}`;
}
