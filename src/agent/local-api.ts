// The agent's local API on a unix socket (0600, root only: the file mode is the authentication):
//   GET  /v1/status                                  what the agent knows and did last
//   POST/GET/PUT/DELETE /api/v1/namespaces/NS/pods…  passed to the control plane with the node's
//                                                    token, so the CNI plugin registers pods
//                                                    through the agent without a token of its own
//   GET/POST /v1/debug/…                             the debugging CLI's read-only API (debug/routes.ts)
//   POST /v1/cni                                     the CNI fast path: one plugin command run by the
//                                                    agent for the native client (cni-server.ts)
import fs from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { ApiClientError, isStatus, type ApiClient } from '../client/api-client.js';
import type { AgentState } from './agent.js';
import { localHttpServer } from '../http/local-server.js';
import { boundCloseTime } from '../http/close.js';
import { registerDebugRoutes, type DebugDeps } from './debug/routes.js';
import type { CniServer } from './cni-server.js';

export interface LocalApiDeps {
  socketPath: string;
  client: ApiClient;
  /** AgentState plus what main adds (the proxy's status, the process's memory). */
  state: () => AgentState & Record<string, unknown>;
  /** After each pod request passed to the control plane (metrics): the answer's code (503: unreachable). */
  onForwarded?: (request: { method: string; code: number; seconds: number }) => void;
  /** The debug API's view of the agent (absent in tests that only need the status and pod routes). */
  debug?: DebugDeps;
  /** The CNI fast path (absent: POST /v1/cni is 404 and the native client runs the Node plugin). */
  cni?: CniServer;
}

export async function startLocalApi(deps: LocalApiDeps): Promise<FastifyInstance> {
  // The socket is 0600 from the start, its keep-alive as fastify's TCP listeners' (src/http/local-server.ts).
  const app = Fastify({ logger: false, serverFactory: (handler) => localHttpServer(handler) });
  boundCloseTime(app); // a client that sent half a request must not hold the agent's shutdown
  app.get('/v1/status', async () => deps.state());
  if (deps.debug) registerDebugRoutes(app, deps.debug);
  deps.cni?.register(app);
  const forward = async (method: string, url: string, body: unknown, reply: import('fastify').FastifyReply) => {
    const t0 = performance.now();
    const done = (code: number) => {
      deps.onForwarded?.({ method, code, seconds: (performance.now() - t0) / 1000 });
      return reply.code(code);
    };
    try {
      const out = await deps.client.request(method, url, body);
      return done(method === 'POST' ? 201 : 200).send(out);
    } catch (e) {
      if (e instanceof ApiClientError && e.code > 0) return done(e.code).send(e.status ?? { kind: 'Status', status: 'Failure', message: e.message, code: e.code });
      return done(503).send({ apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', reason: 'ServiceUnavailable', message: `the agent cannot reach the control plane: ${(e as Error).message}`, code: 503 });
    }
  };
  app.post<{ Params: { ns: string } }>('/api/v1/namespaces/:ns/pods', async (req, reply) => forward('POST', req.url, req.body, reply));
  for (const method of ['GET', 'PUT', 'DELETE'] as const) {
    app.route<{ Params: { ns: string; name: string } }>({
      method,
      url: '/api/v1/namespaces/:ns/pods/:name',
      handler: async (req, reply) => forward(method, req.url, method === 'GET' ? undefined : (req.body ?? undefined), reply),
    });
  }
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const code = (err as { statusCode?: number }).statusCode ?? 500;
    reply.code(code).send(isStatus(err) ? err : { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', message: err.message, code });
  });
  fs.rmSync(deps.socketPath, { force: true }); // a stale socket of a previous run
  await app.listen({ path: deps.socketPath });
  fs.chmodSync(deps.socketPath, 0o600);
  return app;
}
