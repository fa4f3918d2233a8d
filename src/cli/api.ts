// The kubectl-like commands that talk to the control plane: get, apply, delete, token.
import os from 'node:os';
import { ApiClient, ApiClientError, type ResourceRef } from '../client/api-client.js';
import type { Endpoints, KubeObject, Status } from '../api/objects.js';
import { flagHelp, parseArgs, UsageError, type Flags, type FlagSpecs } from '../flags/flags.js';
import { CONNECTION_FLAGS, resolveClientConfig, type ConnectionFlags } from './client-config.js';
import { KINDS, kindForType, readManifests, updateBody, isSubset, type KindInfo, type Manifest } from './manifests.js';
import { formatObjects, formatTable, parseOutputFormat, tableFor, type OutputFormat } from './output.js';

const NAMESPACE_FLAG: FlagSpecs = { namespace: { type: 'string', alias: 'n', help: 'namespace (default "default")' } };
const GET_FLAGS: FlagSpecs = {
  ...NAMESPACE_FLAG,
  'all-namespaces': { type: 'bool', alias: 'A', help: 'list across all namespaces' },
  selector: { type: 'string', alias: 'l', help: 'label selector, e.g. app=web,tier!=db' },
  output: { type: 'string', alias: 'o', help: 'wide, json or yaml (default: a table)' },
  watch: { type: 'bool', alias: 'w', help: 'after listing, print changes as they happen (until interrupted)' },
  ...CONNECTION_FLAGS,
};
const APPLY_FLAGS: FlagSpecs = { filename: { type: 'string', alias: 'f', help: 'manifest file (YAML or JSON; - for stdin)' }, ...NAMESPACE_FLAG, ...CONNECTION_FLAGS };
const DELETE_FLAGS: FlagSpecs = { ...APPLY_FLAGS, 'ignore-not-found': { type: 'bool', help: '(delete) a missing object is not an error' } };

const TYPES_HELP = KINDS.map((k) => k.plural + (k.shortNames.length ? ` (${k.shortNames.join(', ')})` : '')).join(', ');

const without = (specs: FlagSpecs, drop: FlagSpecs): FlagSpecs => Object.fromEntries(Object.entries(specs).filter(([k]) => !(k in drop)));

export const API_USAGE = `usage:
  podwire get TYPE [NAME...] [-n NS | -A] [-l SELECTOR] [-o wide|json|yaml] [-w]
  podwire apply -f FILE [-n NS]
  podwire delete TYPE NAME... [-n NS] [--ignore-not-found]
  podwire delete -f FILE [-n NS] [--ignore-not-found]
  podwire token create NODE | token revoke NODE
TYPE: ${TYPES_HELP}

get flags:
${flagHelp(without(GET_FLAGS, CONNECTION_FLAGS))}
apply / delete flags:
${flagHelp(without(DELETE_FLAGS, { ...CONNECTION_FLAGS, ...NAMESPACE_FLAG }))}
connection flags (every API command):
${flagHelp(CONNECTION_FLAGS)}`;

/** kubectl's wording for server errors, so messages read the same as against kube-apiserver. */
export function describeError(err: Error, context = ''): string {
  if (err instanceof ApiClientError && err.status) return `Error from server (${err.status.reason ?? 'Unknown'}): ${context}${err.status.message}`;
  return `${context}${err.message}`;
}

/** Errors that every following request would hit too: stop instead of repeating them per object. */
function isFatal(e: unknown): boolean {
  return e instanceof ApiClientError && (e.code === 0 || e.code === 401);
}

async function withClient<T>(flags: Flags, fn: (client: ApiClient) => Promise<T>): Promise<T> {
  const cfg = resolveClientConfig({ flags: flags as ConnectionFlags, env: process.env, home: os.homedir() });
  const client = new ApiClient(cfg);
  try {
    return await fn(client);
  } catch (e) {
    if (e instanceof ApiClientError && e.code === 0) throw new Error(`cannot reach the API server ${cfg.server} (from ${cfg.serverSource}): ${e.message}`);
    throw e;
  } finally {
    client.close();
  }
}

function resourceKind(word: string | undefined): KindInfo {
  if (word === undefined) throw new UsageError(`name a resource type: ${TYPES_HELP}`);
  const info = kindForType(word);
  if (!info) throw new UsageError(`unknown resource type ${JSON.stringify(word)}; known: ${TYPES_HELP}`);
  return info;
}

/** ClusterConfig is a singleton at /api/v1/clusterconfig: a ref with no name maps to exactly that path. */
function refOf(info: KindInfo, namespace: string | undefined, name?: string): ResourceRef {
  if (info.kind === 'ClusterConfig') return { plural: 'clusterconfig' };
  return { plural: info.plural, ...(info.namespaced && namespace ? { namespace } : {}), ...(name !== undefined ? { name } : {}) };
}

const isNotFound = (e: unknown): boolean => e instanceof ApiClientError && e.code === 404;
const typeName = (info: KindInfo, name: string) => `${info.singular}/${name}`;

// ---- get -----------------------------------------------------------------------------------------

interface GetRequest {
  info: KindInfo;
  names: string[];
  namespace: string | undefined; // undefined: all namespaces (or cluster-scoped)
  selector: string | undefined;
  format: OutputFormat;
}

async function fetchObjects(client: ApiClient, r: GetRequest): Promise<{ objects: KubeObject[]; resourceVersion?: string }> {
  if (r.info.kind === 'ClusterConfig') {
    const bad = r.names.find((n) => n !== 'cluster');
    if (bad !== undefined) throw new UsageError(`the ClusterConfig is a singleton named "cluster", not ${JSON.stringify(bad)}`);
    return { objects: [await client.get(refOf(r.info, undefined))] };
  }
  if (r.names.length > 0) {
    const objects = await Promise.all(r.names.map((n) => client.get(refOf(r.info, r.namespace, n))));
    // For -w on one object: its own version is a fine starting point (the watch filters by name).
    return { objects, resourceVersion: objects[0]?.metadata.resourceVersion };
  }
  const list = await client.list(refOf(r.info, r.namespace), r.selector ? { labelSelector: r.selector } : {});
  return { objects: list.items, resourceVersion: list.metadata.resourceVersion };
}

/** The Endpoints for the ENDPOINTS column of `get services` (a missing one just counts 0). */
async function endpointsFor(client: ApiClient, r: GetRequest, services: KubeObject[]): Promise<Endpoints[]> {
  const ref = refOf(KINDS.find((k) => k.kind === 'Endpoints')!, r.namespace);
  if (r.names.length === 0) return (await client.list<Endpoints>(ref)).items;
  const found = await Promise.all(services.map((s) => client.get<Endpoints>({ ...ref, name: s.metadata.name }).catch((e) => (isNotFound(e) ? undefined : Promise.reject(e)))));
  return found.filter((e): e is Endpoints => e !== undefined);
}

function render(r: GetRequest, objects: KubeObject[], endpoints: Endpoints[] | undefined): string {
  if (r.format === 'json' || r.format === 'yaml') return formatObjects(objects, r.format, r.names.length === 1 || r.info.kind === 'ClusterConfig');
  return formatTable(tableFor(r.info.kind, objects, { wide: r.format === 'wide', allNamespaces: r.info.namespaced && r.namespace === undefined, now: Date.now(), endpoints }));
}

/** -w: one line (or document) per change after the initial listing, until the stream ends or Ctrl-C. */
async function watchChanges(client: ApiClient, r: GetRequest, resourceVersion: string | undefined, endpoints: Endpoints[] | undefined, headerShown: boolean): Promise<void> {
  const query: Record<string, string> = { ...(resourceVersion ? { resourceVersion } : {}), ...(r.selector ? { labelSelector: r.selector } : {}) };
  if (r.names.length === 1) query.fieldSelector = `metadata.name=${r.names[0]}`;
  let failure: Status | undefined;
  const stream = await client.watch(refOf(r.info, r.namespace), query, (ev) => {
    if (ev.type === 'BOOKMARK' || failure) return;
    if (ev.type === 'ERROR') {
      failure = ev.object as Status;
      return stream.close();
    }
    const text = render(r, [ev.object as KubeObject], endpoints);
    // Tables: one row per event; the header only if the initial listing had none to print.
    const table = r.format === 'table' || r.format === 'wide';
    console.log(table && headerShown ? text.split('\n').slice(1).join('\n') : text);
    headerShown = true;
  });
  await stream.done;
  if (failure) throw new ApiClientError(failure.message, failure.code, failure);
}

async function getCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, GET_FLAGS);
  const [word, ...names] = positional;
  const info = resourceKind(word);
  const all = flags['all-namespaces'] === true;
  if (all && names.length > 0) throw new UsageError('a name cannot be combined with -A (--all-namespaces)');
  if (all && flags.namespace !== undefined) throw new UsageError('-n and -A are mutually exclusive');
  if (flags.watch && (info.kind === 'ClusterConfig' || names.length > 1)) throw new UsageError('-w watches a whole list or one named object (not the clusterconfig)');
  const r: GetRequest = {
    info,
    names,
    namespace: info.namespaced && !all ? ((flags.namespace as string | undefined) ?? 'default') : undefined,
    selector: flags.selector as string | undefined,
    format: parseOutputFormat(flags.output as string | undefined),
  };
  return withClient(flags, async (client) => {
    const { objects, resourceVersion } = await fetchObjects(client, r);
    const endpoints = info.kind === 'Service' && (r.format === 'table' || r.format === 'wide') ? await endpointsFor(client, r, objects) : undefined;
    if (objects.length === 0 && (r.format === 'table' || r.format === 'wide')) {
      // stderr, as kubectl: scripts reading stdout see an empty result, people see why.
      process.stderr.write(r.namespace ? `No resources found in ${r.namespace} namespace.\n` : 'No resources found\n');
    } else console.log(render(r, objects, endpoints));
    if (flags.watch) await watchChanges(client, r, resourceVersion, endpoints, objects.length > 0);
    return 0;
  });
}

// ---- apply / delete ----------------------------------------------------------------------------------

/** The namespace a manifest goes to: its own, else -n, else "default"; both and different is an error (as kubectl). */
function namespaceOf(m: Manifest, flag: string | undefined): string | undefined {
  if (!m.info.namespaced) return undefined;
  const own = m.object.metadata.namespace;
  if (own && flag && own !== flag) throw new Error(`${m.where}: the namespace from the provided object ${JSON.stringify(own)} does not match the namespace ${JSON.stringify(flag)}; pass -n ${own} or remove the flag`);
  return own || flag || 'default';
}

async function applyAttempt(client: ApiClient, m: Manifest, ref: ResourceRef): Promise<'created' | 'configured' | 'unchanged'> {
  let live: KubeObject | undefined;
  try {
    live = await client.get(ref);
  } catch (e) {
    // The ClusterConfig always exists; a 404 for it means a wrong server, not "create it".
    if (!isNotFound(e) || m.info.kind === 'ClusterConfig') throw e;
  }
  if (!live) {
    await client.create(ref, m.object);
    return 'created';
  }
  const body = updateBody(m.object, live);
  if (isSubset(body, live)) return 'unchanged';
  await client.update(ref, body);
  return 'configured';
}

/**
 * GET, then POST or PUT. A 409 means someone else wrote in between (Conflict on the PUT, or
 * AlreadyExists when a create raced another): read again and retry, a few times.
 */
async function applyOne(client: ApiClient, m: Manifest, namespaceFlag: string | undefined): Promise<string> {
  const ref = refOf(m.info, namespaceOf(m, namespaceFlag), m.object.metadata.name);
  for (let attempt = 1; ; attempt++) {
    try {
      return await applyAttempt(client, m, ref);
    } catch (e) {
      if (attempt >= 5 || !(e instanceof ApiClientError) || e.code !== 409) throw e;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

/**
 * Runs `fn` for every manifest, printing "kind/name <result>"; a failed object is reported and the
 * rest still run (as kubectl), except for errors every object would hit (unreachable, bad token).
 */
async function forEachManifest(manifests: Manifest[], verb: string, fn: (m: Manifest) => Promise<string | undefined>): Promise<number> {
  let failed = 0;
  for (const m of manifests) {
    try {
      const result = await fn(m);
      if (result !== undefined) console.log(`${typeName(m.info, m.object.metadata.name)} ${result}`);
    } catch (e) {
      if (isFatal(e)) throw e;
      failed++;
      process.stderr.write(`podwire: ${describeError(e as Error, `error when ${verb} ${m.where}: `)}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

function manifestsFrom(flags: Flags, positional: string[], command: string): Manifest[] {
  const file = flags.filename as string | undefined;
  if (file === undefined) throw new UsageError(`${command} needs -f FILE (a YAML or JSON manifest, - for stdin)`);
  if (positional.length > 0) throw new UsageError(`${command} -f takes no other arguments (got ${positional.join(' ')})`);
  return readManifests(file);
}

async function applyCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, APPLY_FLAGS);
  const manifests = manifestsFrom(flags, positional, 'apply');
  return withClient(flags, (client) => forEachManifest(manifests, 'applying', (m) => applyOne(client, m, flags.namespace as string | undefined)));
}

async function deleteOne(client: ApiClient, info: KindInfo, namespace: string | undefined, name: string, ignoreNotFound: boolean): Promise<string | undefined> {
  if (info.kind === 'ClusterConfig') throw new Error('the ClusterConfig cannot be deleted; change it with apply');
  try {
    await client.delete(refOf(info, namespace, name));
    return 'deleted';
  } catch (e) {
    if (ignoreNotFound && isNotFound(e)) return undefined;
    throw e;
  }
}

async function deleteCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, DELETE_FLAGS);
  const ns = flags.namespace as string | undefined;
  const ignore = flags['ignore-not-found'] === true;
  let manifests: Manifest[];
  if (flags.filename !== undefined) manifests = manifestsFrom(flags, positional, 'delete');
  else {
    const [word, ...names] = positional;
    const info = resourceKind(word);
    if (names.length === 0) throw new UsageError(`delete ${word} needs at least one NAME (or use -f FILE)`);
    // Name-only stand-ins, so both forms share the per-object loop and its messages.
    manifests = names.map((name) => ({ info, object: { apiVersion: info.apiVersion, kind: info.kind, metadata: { name } }, where: `${info.kind} ${name}` }));
  }
  return withClient(flags, (client) => forEachManifest(manifests, 'deleting', (m) => deleteOne(client, m.info, namespaceOf(m, ns), m.object.metadata.name, ignore)));
}

// ---- token ---------------------------------------------------------------------------------------

async function tokenCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, CONNECTION_FLAGS);
  const [action, node, ...extra] = positional;
  if ((action !== 'create' && action !== 'revoke') || node === undefined || extra.length > 0) throw new UsageError('usage: podwire token create NODE | podwire token revoke NODE');
  const path = `/api/v1/nodes/${encodeURIComponent(node)}/token`;
  return withClient(flags, async (client) => {
    if (action === 'create') {
      const res = await client.request<{ token: string }>('POST', path);
      // Only the token on stdout, so `TOKEN=$(podwire token create n1)` works.
      console.log(res.token);
    } else {
      const res = await client.request<Status>('DELETE', path);
      console.log(res.message || `revoked the tokens of node ${node}`);
    }
    return 0;
  });
}

export const API_COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  get: getCommand,
  apply: applyCommand,
  delete: deleteCommand,
  token: tokenCommand,
};
