// core/v1 resource routes, kube-apiserver's paths:
//   /api/v1/nodes[/NAME]                              (cluster-scoped)
//   /api/v1/{pods,services,endpoints}                 (list/watch across namespaces)
//   /api/v1/namespaces/NS/{pods,services,endpoints}[/NAME]
// GET lists (or watches with ?watch=1), POST creates, GET/PUT/PATCH/DELETE on NAME.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { parseFieldSelector, parseLabelSelector, SelectorError } from '../selectors.js';
import { authorize, readCheckFor, writeCheckFor, type Actor, type Verb } from './auth.js';
import { findStrategicDirective } from './merge-patch.js';
import { RESOURCES, type ResourceDef } from './resources.js';
import { pathName, pathNamespace, storePrefix, type Namespace, type ObjectName } from './keys.js';
import { FIELD_VALIDATIONS, type DecodeOptions, type FieldValidation, type ListOptions, type Registry } from './registry.js';
import { ApiError } from './status.js';
import { startWatch } from './watch.js';
import { toTable, wantsTable } from './table.js';
import type { Store } from '../store/types.js';

const Name = Type.String({ minLength: 1, maxLength: 253 });
const Params = Type.Object({ namespace: Type.Optional(Name), name: Type.Optional(Name) });
type ParamsT = Static<typeof Params>;

const ListQuery = Type.Object(
  {
    watch: Type.Optional(Type.String()),
    resourceVersion: Type.Optional(Type.String({ maxLength: 32 })),
    labelSelector: Type.Optional(Type.String({ maxLength: 4096 })),
    fieldSelector: Type.Optional(Type.String({ maxLength: 4096 })),
    allowWatchBookmarks: Type.Optional(Type.String()),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400 })),
    includeObject: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
type ListQueryT = Static<typeof ListQuery>;

/** Writes take kube-apiserver's fieldValidation (kubectl sends Strict); other parameters are ignored, as there. */
const WriteQuery = Type.Object({ fieldValidation: Type.Optional(Type.Unsafe<FieldValidation>({ type: 'string', enum: [...FIELD_VALIDATIONS] })) }, { additionalProperties: true });
type WriteQueryT = Static<typeof WriteQuery>;

/** The envelope every object body has; the resource's validator checks the rest, field by field. */
export const ObjectBody = Type.Object(
  {
    apiVersion: Type.Optional(Type.String()),
    kind: Type.Optional(Type.String()),
    metadata: Type.Object({ name: Type.Optional(Type.String()), namespace: Type.Optional(Type.String()) }, { additionalProperties: true }),
  },
  { additionalProperties: true },
);

const DeleteBody = Type.Union([
  Type.Null(),
  Type.Object(
    {
      preconditions: Type.Optional(Type.Object({ uid: Type.Optional(Type.String()), resourceVersion: Type.Optional(Type.String()) }, { additionalProperties: false })),
    },
    { additionalProperties: true },
  ),
]);

export interface RouteDeps {
  registry: Registry;
  store: Store;
  bookmarkIntervalMs: number;
  /** Open watches' stop functions; closed (server shutting down) means a new watch is stopped at once. */
  watches: { open: Set<() => void>; closed: boolean };
  onWatchOpen(): void;
  onWatchClose(): void;
  onWatchEvent(type: string): void;
}

const isTrue = (v: string | undefined): boolean => v === '1' || v === 'true';

export function actorOf(req: FastifyRequest): Actor {
  return (req as FastifyRequest & { actor: Actor }).actor;
}

/** The path's namespace and name, checked before anything reaches the store (keys.ts). */
function namespaceOf(req: FastifyRequest<{ Params: ParamsT }>): Namespace | undefined {
  return req.params.namespace === undefined ? undefined : pathNamespace(req.params.namespace);
}

function nameOf(req: FastifyRequest<{ Params: ParamsT }>, def: ResourceDef): ObjectName {
  return pathName(def, req.params.name!);
}

function decodeOptions(req: FastifyRequest<{ Querystring: WriteQueryT }>): DecodeOptions {
  return { fieldValidation: req.query.fieldValidation, warnings: new Set() };
}

/** The decoder's warnings as kube-apiserver sends them (`Warning: 299 - "unknown field \"spec.x\""`), ASCII only. */
function sendWarnings<T>(reply: FastifyReply, opts: DecodeOptions, result: T): T {
  const quote = (text: string) => JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (opts.warnings?.size) reply.header('warning', [...opts.warnings].map((w) => `299 - ${quote(w)}`));
  return result;
}

function listOptions(q: ListQueryT): ListOptions {
  try {
    return {
      labelSelector: q.labelSelector ? parseLabelSelector(q.labelSelector) : undefined,
      fieldSelector: q.fieldSelector ? parseFieldSelector(q.fieldSelector) : undefined,
    };
  } catch (e) {
    if (e instanceof SelectorError) throw new ApiError('BadRequest', `unable to parse requirement: ${e.message}`);
    throw e;
  }
}

function check(req: FastifyRequest, verb: Verb, def: ResourceDef, select?: ListOptions) {
  const actor = actorOf(req);
  authorize(actor, verb, def.plural, select?.fieldSelector);
  return writeCheckFor(actor, verb, def.plural);
}

/** kubectl's `as=Table` requests (its default for `get`); includeObject=Object keeps whole objects in rows. */
function tableRequest(req: FastifyRequest, def: ResourceDef): { kind: string; includeObject: boolean } | undefined {
  if (!wantsTable(req.headers.accept)) return undefined;
  return { kind: def.kind, includeObject: (req.query as { includeObject?: string }).includeObject === 'Object' };
}

export function registerResourceRoutes(app: FastifyInstance, deps: RouteDeps): void {
  for (const def of RESOURCES.values()) {
    const base = def.namespaced ? `/api/v1/namespaces/:namespace/${def.plural}` : `/api/v1/${def.plural}`;
    const listHandler = async (req: FastifyRequest<{ Params: ParamsT; Querystring: ListQueryT }>, reply: FastifyReply) => {
      const ns = namespaceOf(req);
      const select = listOptions(req.query);
      if (isTrue(req.query.watch)) {
        check(req, 'watch', def, select);
        return watch(deps, def, ns, req, reply, select);
      }
      check(req, 'list', def, select);
      const list = await deps.registry.list(def, ns, select);
      const table = tableRequest(req, def);
      return table ? toTable(list.items, table, list.metadata.resourceVersion) : list;
    };
    const listSchema = { schema: { params: Params, querystring: ListQuery } };
    app.get(base, listSchema, listHandler);
    if (def.namespaced) app.get(`/api/v1/${def.plural}`, listSchema, listHandler);

    app.post<{ Params: ParamsT; Querystring: WriteQueryT }>(base, { schema: { params: Params, querystring: WriteQuery, body: ObjectBody } }, async (req, reply) => {
      const writeCheck = check(req, 'create', def);
      const opts = decodeOptions(req);
      const obj = await deps.registry.create(def, namespaceOf(req), req.body, writeCheck, opts);
      return reply.code(201).send(sendWarnings(reply, opts, obj));
    });
    app.get<{ Params: ParamsT }>(`${base}/:name`, { schema: { params: Params } }, async (req) => {
      check(req, 'get', def);
      const obj = await deps.registry.get(def, namespaceOf(req), nameOf(req, def));
      readCheckFor(actorOf(req), def.plural)?.(obj);
      const table = tableRequest(req, def);
      return table ? toTable([obj], table, obj.metadata.resourceVersion) : obj;
    });
    app.put<{ Params: ParamsT; Querystring: WriteQueryT }>(`${base}/:name`, { schema: { params: Params, querystring: WriteQuery, body: ObjectBody } }, async (req, reply) => {
      const writeCheck = check(req, 'update', def);
      const opts = decodeOptions(req);
      return sendWarnings(reply, opts, await deps.registry.update(def, namespaceOf(req), nameOf(req, def), req.body, writeCheck, opts));
    });
    app.patch<{ Params: ParamsT; Querystring: WriteQueryT }>(`${base}/:name`, { schema: { params: Params, querystring: WriteQuery } }, async (req, reply) => {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') {
        throw new ApiError('UnsupportedMediaType', `patch content type ${JSON.stringify(type)} is not supported: use application/merge-patch+json (kubectl patch --type merge) or a strategic merge patch without $ directives`);
      }
      const directive = findStrategicDirective(req.body);
      if (directive) throw new ApiError('UnsupportedMediaType', `strategic merge patch directive ${directive} is not supported; send a JSON merge patch (kubectl patch --type merge) or PUT the whole object`);
      const writeCheck = check(req, 'patch', def);
      const opts = decodeOptions(req);
      return sendWarnings(reply, opts, await deps.registry.patch(def, namespaceOf(req), nameOf(req, def), req.body, writeCheck, opts));
    });
    app.delete<{ Params: ParamsT; Body: Static<typeof DeleteBody> }>(`${base}/:name`, { schema: { params: Params, body: DeleteBody } }, async (req) => {
      const pre = req.body?.preconditions ?? {};
      const writeCheck = check(req, 'delete', def);
      return deps.registry.delete(def, namespaceOf(req), nameOf(req, def), pre, writeCheck);
    });
  }
}

async function watch(deps: RouteDeps, def: ResourceDef, ns: Namespace | undefined, req: FastifyRequest<{ Querystring: ListQueryT }>, reply: FastifyReply, select: ListOptions): Promise<FastifyReply> {
  const w = await startWatch(
    deps.store,
    {
      def,
      prefix: storePrefix(def, ns),
      resourceVersion: req.query.resourceVersion,
      select,
      allowBookmarks: isTrue(req.query.allowWatchBookmarks),
      bookmarkIntervalMs: deps.bookmarkIntervalMs,
      timeoutSeconds: req.query.timeoutSeconds,
      ...(tableRequest(req, def) ? { present: (obj) => toTable([obj], tableRequest(req, def)!) } : {}),
    },
    () => {
      reply.hijack();
      return reply.raw;
    },
    { onOpen: deps.onWatchOpen, onClose: deps.onWatchClose, onEvent: deps.onWatchEvent },
  );
  // On shutdown a watch ends and so does its connection: left idle, it would hold server.close()
  // (which closes idle connections only once, when it starts) until the close grace runs out.
  const endForShutdown = (): void => {
    w.stop();
    reply.raw.socket?.end();
  };
  // startWatch is async: the server may have begun closing meanwhile, after preClose ended the
  // open watches. This one would then hold its connection, and close() would wait for it.
  if (deps.watches.closed) endForShutdown();
  deps.watches.open.add(endForShutdown);
  void w.done.then(() => deps.watches.open.delete(endForShutdown));
  return reply;
}
