// Generic create/read/update/delete of API objects over the Store: identity and metadata
// (uid, creationTimestamp, resourceVersion = the store's modRevision), optimistic concurrency,
// validation before anything is written, and the resource's allocation hooks in the same txn.
import { randomUUID } from 'node:crypto';
import type { KubeObject, ObjectList } from '../../api/objects.js';
import { isStoreError, type ListResult, type Store, type StoredObject, type Txn } from '../store/types.js';
import { matchesFields, matchesLabels, type FieldSelector, type LabelSelector } from '../selectors.js';
import { ApiError, alreadyExists, conflict, invalidError, notFound } from './status.js';
import type { ResourceDef } from './resources.js';
import { bodyName, storeKey, storePrefix, type Namespace, type ObjectName } from './keys.js';
import { applyMergePatch } from './merge-patch.js';
import { decode } from '../decode.js';

/**
 * What a write check may read: `get` sees the write's own txn (so a check on, say, the writer's
 * Node is consistent with the write); `list` reads the store outside it (best effort, for
 * uniqueness checks across many objects).
 */
export interface WriteCheckContext {
  get: Txn['get'];
  list(prefix: string): Promise<ListResult<KubeObject>>;
}

/**
 * Authorization that needs the objects themselves (e.g. a node may only write its own pods), run
 * inside the write's txn; it may run more than once (txn retries), so it must not have side effects.
 */
export type WriteCheck = (next: KubeObject | undefined, old: KubeObject | undefined, ctx: WriteCheckContext) => void | Promise<void>;

export interface ListOptions {
  labelSelector?: LabelSelector;
  fieldSelector?: FieldSelector;
}

/** kube-apiserver's ?fieldValidation: what to do with fields the kind does not have (they are never stored). */
export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';
export const FIELD_VALIDATIONS: readonly FieldValidation[] = ['Ignore', 'Warn', 'Strict'];

export interface DecodeOptions {
  /** Default Warn, as kube-apiserver's. */
  fieldValidation?: FieldValidation;
  /** Collects the Warn mode's warnings (a Set: a patch's txn may run more than once). */
  warnings?: Set<string>;
}

const MAX_REPORTED = 20;

function reportUnknown(paths: string[], opts: DecodeOptions, ref: { kind: string; name?: string }): void {
  const mode = opts.fieldValidation ?? 'Warn';
  if (paths.length === 0 || mode === 'Ignore') return;
  // A field name is the client's text: it may be long.
  const shown = paths.slice(0, MAX_REPORTED).map((p) => `unknown field ${JSON.stringify(p.length > 200 ? `${p.slice(0, 200)}...` : p)}`);
  if (paths.length > MAX_REPORTED) shown.push(`and ${paths.length - MAX_REPORTED} more unknown fields`);
  if (mode === 'Strict') throw new ApiError('BadRequest', `strict decoding error: ${shown.join(', ')}`, ref);
  shown.forEach((w) => opts.warnings?.add(w));
}

export interface DeleteOptions {
  /** Preconditions, as in a Kubernetes DeleteOptions body. */
  resourceVersion?: string;
  uid?: string;
}

export function toApiObject<T extends KubeObject>(o: StoredObject<T>): T {
  return { ...o.value, metadata: { ...o.value.metadata, resourceVersion: String(o.modRevision) } };
}

function forStore<T extends KubeObject>(obj: T): T {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Store failures the handlers do not expect become 500/503 Status errors. */
function storeFailure(e: unknown, def: ResourceDef, name: string): never {
  if (e instanceof ApiError) throw e;
  if (isStoreError(e, 'Conflict')) throw conflict(def.plural, name, 'too many concurrent writers; retry');
  if (isStoreError(e, 'Closed')) throw new ApiError('ServiceUnavailable', 'the control plane is shutting down; retry against another instance', { kind: def.plural, name });
  throw new ApiError('InternalError', `${def.plural} ${JSON.stringify(name)}: store error: ${(e as Error).message}`, { kind: def.plural, name });
}

export class Registry {
  constructor(readonly store: Store) {}

  private checkContext(tx: Txn): WriteCheckContext {
    return { get: tx.get.bind(tx), list: (prefix) => this.store.list<KubeObject>(prefix) };
  }

  async get(def: ResourceDef, namespace: Namespace | undefined, name: ObjectName): Promise<KubeObject> {
    const o = await this.store.get<KubeObject>(storeKey(def, namespace, name)).catch((e) => storeFailure(e, def, name));
    if (!o) throw notFound(def.plural, name);
    return toApiObject(o);
  }

  async list(def: ResourceDef, namespace: Namespace | undefined, opts: ListOptions = {}): Promise<ObjectList<KubeObject>> {
    const r = await this.store.list<KubeObject>(storePrefix(def, namespace)).catch((e) => storeFailure(e, def, ''));
    const items = r.items.map(toApiObject).filter((o) => selected(o, opts));
    return { apiVersion: 'v1', kind: def.listKind, metadata: { resourceVersion: String(r.revision) }, items };
  }

  /** Decodes the body into the kind's fields, validates it (400 naming every bad field) and checks it against the URL. */
  private prepare(def: ResourceDef, namespace: Namespace | undefined, body: unknown, urlName: ObjectName | undefined, opts: DecodeOptions): KubeObject {
    const decoded = decode(body, def.shape);
    const obj = decoded.value as KubeObject;
    const name = typeof obj?.metadata?.name === 'string' ? obj.metadata.name : urlName;
    reportUnknown(decoded.unknown, opts, { kind: def.plural, ...(name !== undefined ? { name } : {}) });
    const errors = def.validate(obj);
    if (errors.length > 0) throw invalidError(def.kind, { kind: def.plural, name }, errors);
    if (obj.kind !== undefined && obj.kind !== def.kind) throw new ApiError('BadRequest', `kind ${JSON.stringify(obj.kind)} sent to the ${def.plural} endpoint; expected ${def.kind}`, { kind: def.plural, name });
    if (obj.apiVersion !== undefined && obj.apiVersion !== 'v1') throw new ApiError('BadRequest', `apiVersion ${JSON.stringify(obj.apiVersion)} is not served; use v1`, { kind: def.plural, name });
    if (def.namespaced && obj.metadata.namespace && obj.metadata.namespace !== namespace) {
      throw new ApiError('BadRequest', `the namespace of the provided object (${obj.metadata.namespace}) does not match the namespace sent on the request (${namespace})`, { kind: def.plural, name });
    }
    if (urlName !== undefined && obj.metadata.name !== urlName) {
      throw new ApiError('BadRequest', `the name of the object (${obj.metadata.name}) does not match the name on the URL (${urlName})`, { kind: def.plural, name: urlName });
    }
    const metadata = { ...obj.metadata, ...(def.namespaced ? { namespace } : {}) };
    if (!def.namespaced) delete metadata.namespace;
    return def.defaults({ ...obj, apiVersion: 'v1', kind: def.kind, metadata });
  }

  async create(def: ResourceDef, namespace: Namespace | undefined, body: unknown, check?: WriteCheck, opts: DecodeOptions = {}): Promise<KubeObject> {
    const prepared = this.prepare(def, namespace, body, undefined, opts);
    const name = bodyName(def, prepared.metadata.name);
    const key = storeKey(def, namespace, name);
    try {
      const { result, revision } = await this.store.txn(async (tx) => {
        await check?.(prepared, undefined, this.checkContext(tx));
        if (await tx.get(key)) throw alreadyExists(def.plural, name);
        const metadata = { ...prepared.metadata, uid: randomUUID(), creationTimestamp: now() };
        const obj = forStore(await (def.onCreate?.(tx, { ...prepared, metadata }) ?? { ...prepared, metadata }));
        tx.put(key, obj);
        return obj;
      });
      return { ...result, metadata: { ...result.metadata, resourceVersion: String(revision) } };
    } catch (e) {
      return storeFailure(e, def, name);
    }
  }

  async update(def: ResourceDef, namespace: Namespace | undefined, name: ObjectName, body: unknown, check?: WriteCheck, opts: DecodeOptions = {}): Promise<KubeObject> {
    const prepared = this.prepare(def, namespace, body, name, opts);
    return this.replace(def, namespace, name, () => prepared, check);
  }

  /** JSON merge patch (RFC 7386) on the current object, then an update guarded by its revision. */
  async patch(def: ResourceDef, namespace: Namespace | undefined, name: ObjectName, patch: unknown, check?: WriteCheck, opts: DecodeOptions = {}): Promise<KubeObject> {
    return this.replace(def, namespace, name, (current) => this.prepare(def, namespace, applyMergePatch(current, patch), name, opts), check);
  }

  private async replace(def: ResourceDef, namespace: Namespace | undefined, name: ObjectName, build: (current: KubeObject) => KubeObject, check?: WriteCheck): Promise<KubeObject> {
    const key = storeKey(def, namespace, name);
    try {
      const { result, revision } = await this.store.txn(async (tx) => {
        const old = await tx.get<KubeObject>(key);
        if (!old) throw notFound(def.plural, name);
        const current = toApiObject(old);
        const next = build(current);
        const wantRv = next.metadata.resourceVersion;
        if (wantRv !== undefined && wantRv !== '' && wantRv !== current.metadata.resourceVersion) throw conflict(def.plural, name);
        if (next.metadata.uid !== undefined && next.metadata.uid !== current.metadata.uid) {
          throw invalidError(def.kind, { kind: def.plural, name }, [{ field: 'metadata.uid', message: `Invalid value: ${JSON.stringify(next.metadata.uid)}: field is immutable` }]);
        }
        await check?.(next, current, this.checkContext(tx));
        const metadata = { ...next.metadata, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp };
        const obj = forStore(await (def.onUpdate?.(tx, { ...next, metadata }, current) ?? { ...next, metadata }));
        tx.put(key, obj);
        return obj;
      });
      return { ...result, metadata: { ...result.metadata, resourceVersion: String(revision) } };
    } catch (e) {
      return storeFailure(e, def, name);
    }
  }

  async delete(def: ResourceDef, namespace: Namespace | undefined, name: ObjectName, opts: DeleteOptions = {}, check?: WriteCheck): Promise<KubeObject> {
    const key = storeKey(def, namespace, name);
    try {
      const { result } = await this.store.txn(async (tx) => {
        const old = await tx.get<KubeObject>(key);
        if (!old) throw notFound(def.plural, name);
        const current = toApiObject(old);
        if (opts.resourceVersion && opts.resourceVersion !== current.metadata.resourceVersion) throw conflict(def.plural, name, `precondition failed: resourceVersion is ${current.metadata.resourceVersion}, not ${opts.resourceVersion}`);
        if (opts.uid && opts.uid !== current.metadata.uid) throw conflict(def.plural, name, `precondition failed: uid is ${current.metadata.uid}, not ${opts.uid}`);
        await check?.(undefined, current, this.checkContext(tx));
        await def.onDelete?.(tx, current);
        tx.delete(key);
        return current;
      });
      return result;
    } catch (e) {
      return storeFailure(e, def, name);
    }
  }
}

export function selected(o: KubeObject, opts: ListOptions): boolean {
  if (opts.labelSelector && !matchesLabels(opts.labelSelector, o.metadata.labels)) return false;
  if (opts.fieldSelector && !matchesFields(opts.fieldSelector, o as never)) return false;
  return true;
}
