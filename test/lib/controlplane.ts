// Helpers for control plane API tests: a server over a given store with a known admin token,
// inject() wrappers that send the token, and node tokens.
import { buildServer, type ControlPlaneServer, type ServerDeps } from '../../src/controlplane/api/server.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import type { Store } from '../../src/controlplane/store/types.js';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../../src/client/api-client.js';

export const ADMIN_TOKEN = 'pwa_test-admin-token-0123456789';

export interface TestServer {
  app: ControlPlaneServer;
  store: Store;
  /** inject() as the admin; body JSON-encoded. */
  call(method: string, url: string, body?: unknown, token?: string | null, headers?: Record<string, string>): Promise<{ statusCode: number; json: any; body: string }>;
  nodeToken(nodeName: string): Promise<string>;
  close(): Promise<void>;
}

export async function testServer(opts: Partial<ServerDeps> = {}): Promise<TestServer> {
  const store = opts.store ?? new MemoryStore();
  const app = buildServer({ adminTokens: [ADMIN_TOKEN], ...opts, store });
  await app.ready();
  const call: TestServer['call'] = async (method, url, body, token = ADMIN_TOKEN, headers = {}) => {
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    let json: unknown;
    try {
      json = JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    return { statusCode: res.statusCode, json, body: res.body };
  };
  return {
    app,
    store,
    call,
    async nodeToken(nodeName) {
      const r = await call('POST', `/api/v1/nodes/${nodeName}/token`);
      if (r.statusCode !== 201) throw new Error(`node token for ${nodeName}: ${r.statusCode} ${r.body}`);
      return r.json.token as string;
    },
    async close() {
      await app.close();
      await store.close();
    },
  };
}

export function service(name: string, spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): object {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, ...meta }, spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec } };
}

export function node(name: string, extra: Record<string, unknown> = {}): object {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {}, ...extra };
}

export function pod(name: string, nodeName: string, ip: string | undefined, labels: Record<string, string>, ready = true): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: { nodeName, containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { phase: 'Running', ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}), conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

/** Polls fn until it returns a truthy value or the deadline passes (then throws with the last value). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    last = await fn();
    if (last) return last as T;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A control plane app listening on loopback (no endpoints controller), its URL and an admin client.
 * `beforeListen` adds hooks to the app before it serves (e.g. to hold requests).
 */
export async function listening(store: Store, port = 0, bookmarkIntervalMs = 60_000, beforeListen?: (app: ControlPlaneServer) => void) {
  const app = buildServer({ store, adminTokens: [ADMIN_TOKEN], bookmarkIntervalMs, endpointsController: false });
  beforeListen?.(app);
  await app.listen({ host: '127.0.0.1', port });
  const bound = (app.server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${bound}`;
  return { app, url, port: bound, client: new ApiClient({ server: url, token: ADMIN_TOKEN }) };
}
