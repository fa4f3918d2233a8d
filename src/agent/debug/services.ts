// GET /v1/debug/services[?namespace=NS&name=NAME]: the services this node proxies, their ports and
// endpoints, and each endpoint's DNAT counters from the live ruleset in the node's netns (the
// proxy mode's counters(): for one service only its own chains and elements, for all one listing
// of the table). Read-only. An unknown name is a 404 that lists the services there are.
import type { FastifyInstance } from 'fastify';
import type { ServiceProxy } from '../service-proxy.js';
import { selectPorts, serviceNames, servicesBody, type ServicesQuery } from './services-view.js';
import { collectGarbage } from '../runtime.js';

/**
 * An answer for this many service ports (the listing, its counters and the body: ~100 MB of
 * transient heap at 10,000 × 5) is followed by a full GC once sent, as after a large full sync, so
 * the agent's RSS goes back down (src/agent/runtime.ts).
 */
export const GC_AFTER_PORTS = 1000;

/** What the route needs of routes.ts DebugDeps (not imported: routes.ts imports this file). */
export interface ServiceRouteDeps {
  nodeName: string;
  proxy: () => Pick<ServiceProxy, 'model' | 'counters' | 'status'> | undefined;
  proxyMode: string;
}

const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The query, validated: a string is what is wrong with it. */
export function servicesQuery(q: unknown): ServicesQuery | string {
  const out: ServicesQuery = {};
  const query = (q ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(query)) {
    if (k !== 'namespace' && k !== 'name') return `unknown query parameter ${JSON.stringify(k)} (namespace, name)`;
    if (typeof v !== 'string' || !NAME_RE.test(v)) return `${k} ${JSON.stringify(v)} is not a Kubernetes object name (lowercase letters, digits, '-' and '.')`;
    out[k] = v;
  }
  return out;
}

const failure = (code: number, message: string, extra: Record<string, unknown> = {}) => ({ kind: 'Status', status: 'Failure', code, message, ...extra });

export function registerServiceRoutes(app: FastifyInstance, deps: ServiceRouteDeps): void {
  app.get('/v1/debug/services', async (req, reply) => {
    const q = servicesQuery(req.query);
    if (typeof q === 'string') return reply.code(400).send(failure(400, q));
    const proxy = deps.proxy();
    if (deps.proxyMode === 'none' || !proxy) {
      return reply.code(503).send(failure(503, deps.proxyMode === 'none' ? `node ${deps.nodeName} runs no service proxy (--proxy-mode none)` : `node ${deps.nodeName}'s service proxy is not running yet (the node has not registered); see its agent log`));
    }
    const model = proxy.model();
    const ports = selectPorts(model, q);
    if (q.name !== undefined && ports.length === 0) {
      const what = `${q.namespace ?? '*'}/${q.name}`;
      return reply.code(404).send(failure(404, `no service ${what} in node ${deps.nodeName}'s proxy (a headless or ExternalName service has no rules; an IPv6-only one is skipped)`, { services: serviceNames(model) }));
    }
    try {
      const counters = proxy.counters(q.name === undefined && q.namespace === undefined ? undefined : new Set(ports.map((p) => p.svc.key)));
      if (ports.length >= GC_AFTER_PORTS) reply.raw.once('finish', () => setImmediate(() => collectGarbage()));
      return servicesBody(deps.nodeName, proxy.status.mode, model, ports, counters);
    } catch (e) {
      return reply.code(500).send(failure(500, `reading the service counters on node ${deps.nodeName}: ${(e as Error).message}`));
    }
  });
}
