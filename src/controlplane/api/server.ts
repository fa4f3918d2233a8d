// buildServer(deps): the control plane's fastify app, separate from listen() so tests drive it
// with inject(). Every error leaves as a Kubernetes Status object.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Store } from '../store/types.js';
import { CLUSTER_DNS_SERVICE, type ClusterConfigSpec, type StatusReason } from '../../api/objects.js';
import { clusterConfigSpecWithDefaults } from '../validate-objects.js';
import { ensureClusterDnsService } from './cluster-dns.js';
import { EndpointsController } from '../endpoints/controller.js';
import { Authenticator, type Actor } from './auth.js';
import { registerAdminRoutes, seedClusterConfig } from './admin-routes.js';
import { registerTokenReview } from './token-review.js';
import { registerDiscovery } from './discovery.js';
import { createMetrics } from './metrics.js';
import { Registry } from './registry.js';
import { registerResourceRoutes } from './routes.js';
import { ApiError, statusOf } from './status.js';
import { checkCharset } from './content-type.js';
import { boundCloseTime } from '../../http/close.js';
import { bodyTooLarge, checkBodyDepth, MAX_BODY_BYTES } from './body-limits.js';

export interface ServerDeps {
  store: Store;
  /** Bearer tokens with full access (DATA_DIR/admin.token). */
  adminTokens: string[];
  /** pino options or false (tests). */
  logger?: FastifyServerOptions['logger'];
  /** Seeds the stored ClusterConfig when the store has none (absent fields get their defaults). */
  clusterConfig?: Partial<ClusterConfigSpec>;
  /** Create kube-system/kube-dns at start when it is missing (cluster-dns.ts). The binary always does; off by default so tests start from an empty store. */
  clusterDnsService?: boolean;
  /** BOOKMARK period on watches that ask for them (default 60 s, as kube-apiserver's ~1 min). */
  bookmarkIntervalMs?: number;
  /** Run the endpoints controller in this process (default true). */
  endpointsController?: boolean;
  https?: { key: Buffer; cert: Buffer };
}

const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);

export interface ControlPlaneServer extends FastifyInstance {
  endpointsController?: EndpointsController;
}

export function buildServer(deps: ServerDeps): ControlPlaneServer {
  const app = createApp(deps);
  const auth = new Authenticator(deps.store, deps.adminTokens);
  const metrics = createMetrics(deps.store);
  const registry = new Registry(deps.store);
  const watches: OpenWatches = { open: new Set<() => void>(), closed: false };
  const controller = deps.endpointsController === false ? undefined : new EndpointsController(deps.store, app.log);
  app.endpointsController = controller;

  registerPatchParsers(app);
  registerRequestHooks(app, auth, metrics);
  app.setErrorHandler(sendError);
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(statusOf(404, 'NotFound', `the server could not find the requested resource (${req.method} ${req.url.split('?')[0]})`));
  });

  registerDiscovery(app);
  registerResourceRoutes(app, {
    registry,
    store: deps.store,
    bookmarkIntervalMs: deps.bookmarkIntervalMs ?? 60_000,
    watches,
    onWatchOpen: () => metrics.watches.inc(),
    onWatchClose: () => metrics.watches.dec(),
    onWatchEvent: (type) => metrics.watchEvents.inc({ type }),
  });
  registerAdminRoutes(app, deps.store, auth);
  registerTokenReview(app, auth);
  registerOperationRoutes(app, deps.store, controller, metrics);
  registerLifecycle(app, deps, controller, watches, registry);
  return app;
}

/** The watches the server has open, ended when it closes. */
interface OpenWatches {
  open: Set<() => void>;
  closed: boolean;
}

type Metrics = ReturnType<typeof createMetrics>;

function createApp(deps: ServerDeps): ControlPlaneServer {
  return Fastify({
    logger: deps.logger ?? false,
    bodyLimit: MAX_BODY_BYTES,
    ...(deps.https ? { https: deps.https } : {}),
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: true } },
    // A path that does not decode (e.g. "%zz") is the client's fault, and gets a Status like every error.
    frameworkErrors: (err, _req, reply) => {
      const code = err.statusCode ?? 500;
      void (reply as FastifyReply).code(code).send(statusOf(code, code === 400 ? 'BadRequest' : 'InternalError', err.message));
    },
  }) as unknown as ControlPlaneServer;
}

/** kubectl's merge and strategic merge patches are JSON under their own media types. */
function registerPatchParsers(app: FastifyInstance): void {
  for (const type of ['application/merge-patch+json', 'application/strategic-merge-patch+json']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch (e) {
        done(new ApiError('BadRequest', `the patch body is not valid JSON: ${(e as Error).message}`), undefined);
      }
    });
  }
}

function registerRequestHooks(app: FastifyInstance, auth: Authenticator, metrics: Metrics): void {
  app.decorateRequest('actor', null);
  app.addHook('onRequest', async (req) => {
    (req as unknown as { startedAt: bigint }).startedAt = process.hrtime.bigint();
    const path = req.url.split('?')[0]!;
    if (PUBLIC_PATHS.has(path)) return;
    (req as unknown as { actor: Actor }).actor = await auth.authenticate(req.headers.authorization);
  });
  // After authentication, before any body is read: only UTF-8 bodies are parsed (415 otherwise).
  app.addHook('preParsing', async (req) => checkCharset(req.headers['content-type']));
  // Right after parsing, before schema validation and handlers walk the body.
  app.addHook('preValidation', async (req) => {
    if (req.body !== undefined) checkBodyDepth(req.body);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: req.method, route, code: String(reply.statusCode) });
    const started = (req as unknown as { startedAt?: bigint }).startedAt;
    if (started) metrics.duration.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
  });
}

/** Every error leaves as a Status; only a server fault is a 5xx (and is logged). */
function sendError(this: FastifyInstance, err: FastifyError | ApiError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof ApiError) return reply.code(err.code).send(err.toStatus());
  if ('validation' in err && err.validation) {
    const where = err.validationContext ?? 'body';
    const causes = err.validation.map((v) => ({ reason: 'FieldValueInvalid', field: fieldOf(where, v.instancePath, v.params), message: v.message ?? 'invalid' }));
    const message = `${where} is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}`;
    return reply.code(400).send(statusOf(400, 'Invalid', message, {}, causes));
  }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(bodyTooLarge().toStatus());
  const code = err.statusCode ?? 500;
  if (code === 415) return reply.code(415).send(statusOf(415, 'UnsupportedMediaType', `${err.message}; send application/json`));
  if (code >= 400 && code < 500) return reply.code(code).send(statusOf(code, CLIENT_REASONS[code] ?? 'BadRequest', err.message));
  req.log.error({ err }, 'request failed');
  return reply.code(500).send(statusOf(500, 'InternalError', `internal error: ${err.message}`));
}

/** Health and metrics: what a load balancer, a supervisor and Prometheus ask. */
function registerOperationRoutes(app: FastifyInstance, store: Store, controller: EndpointsController | undefined, metrics: Metrics): void {
  app.get('/healthz', async () => 'ok');
  app.get('/livez', async () => 'ok');
  app.get('/readyz', async (_req, reply) => {
    try {
      await store.revision();
    } catch (e) {
      return reply.code(503).send(`store: ${(e as Error).message}`);
    }
    if (controller && !controller.synced) return reply.code(503).send('endpoints controller: initial sync not done');
    return 'ok';
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

function registerLifecycle(app: FastifyInstance, deps: ServerDeps, controller: EndpointsController | undefined, watches: OpenWatches, registry: Registry): void {
  app.addHook('onReady', async () => {
    await seedClusterConfig(deps.store, clusterConfigSpecWithDefaults(deps.clusterConfig ?? {}));
    if (deps.clusterDnsService) await startClusterDns(app, deps.store, registry);
    if (controller) await controller.start();
  });
  // Open watches would hold the HTTP server open: end them first (clients reconnect elsewhere);
  // a client that sent half a request would too: its connection ends after a grace period.
  boundCloseTime(app);
  app.addHook('preClose', async () => {
    watches.closed = true;
    [...watches.open].forEach((stop) => stop());
    await controller?.stop();
  });
}

/** The cluster DNS Service at every start; a failure is logged (what to do included), not fatal: only DNS needs it. */
async function startClusterDns(app: FastifyInstance, store: Store, registry: Registry): Promise<void> {
  const service = `${CLUSTER_DNS_SERVICE.namespace}/${CLUSTER_DNS_SERVICE.name}`;
  try {
    const outcome = await ensureClusterDnsService(store, registry);
    if (outcome.result === 'mismatch') app.log.warn({ service, clusterIP: outcome.clusterIP, clusterDNS: outcome.clusterDNS }, 'the cluster DNS Service has another ClusterIP than the cluster config\'s clusterDNS: pods are told clusterDNS; delete the Service and restart the control plane to recreate it there');
    else if (outcome.result === 'created') app.log.info({ service, clusterIP: outcome.clusterIP }, 'created the cluster DNS Service');
  } catch (e) {
    app.log.error({ service, err: (e as Error).message }, 'cluster DNS Service missing');
  }
}

/** Client errors fastify raises itself (FST_ERR_*), by code; any other 4xx is BadRequest. */
const CLIENT_REASONS: Partial<Record<number, StatusReason>> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 413: 'RequestEntityTooLarge' };

/** "body" + "/spec/ports/0/port" → "spec.ports[0].port" (required props name the missing one). */
function fieldOf(where: string, instancePath: string, params: Record<string, unknown>): string {
  const parts = instancePath.split('/').filter(Boolean);
  if (typeof params.missingProperty === 'string') parts.push(params.missingProperty);
  const path = parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
  return where === 'body' ? path || '(body)' : `${where}.${path}`;
}
