// Bearer-token authentication and authorization.
//
// Two kinds of token:
// - admin tokens (podwire-controlplane init writes one to DATA_DIR/admin.token): everything;
// - node tokens (issued by an admin with POST /api/v1/nodes/NAME/token): what Kubernetes' node
//   authorizer and NodeRestriction admission let a kubelet do, cut to what podwire's agent and CNI
//   plugin use: read nodes, services, endpoints and the cluster config (an agent needs its peers
//   and the services it proxies); read only the Pods bound to it (get: spec.nodeName; list/watch:
//   with fieldSelector spec.nodeName=NAME, as Kubernetes' AuthorizeNodeWithSelectors); create and
//   update its own Node (never delete it); create, update and delete the Pods bound to it.
//   node-restriction.ts checks the objects (pod IPs, podCIDR, addresses, VTEP MAC).
// Node tokens are stored hashed (sha256) under /nodetokens/<hex>, so a store dump does not leak them.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KubeObject, Node, Pod } from '../../api/objects.js';
import type { FieldSelector } from '../selectors.js';
import type { Store } from '../store/types.js';
import { checkNodeNodeWrite, checkNodePodWrite, forbidden as nodeForbidden } from './node-restriction.js';
import { ApiError } from './status.js';
import type { WriteCheck } from './registry.js';

export type Actor = { kind: 'admin' } | { kind: 'node'; nodeName: string };
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export const NODE_TOKEN_PREFIX = '/nodetokens';
const CACHE_MS = 10_000;

export interface NodeTokenRecord {
  nodeName: string;
  createdAt: string;
}

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export function newToken(kind: 'admin' | 'node'): string {
  return `pw${kind === 'admin' ? 'a' : 'n'}_${randomBytes(32).toString('base64url')}`;
}

export class Authenticator {
  private readonly adminHashes: Buffer[];
  private readonly cache = new Map<string, { nodeName: string; until: number }>();

  constructor(
    private readonly store: Store,
    adminTokens: readonly string[],
  ) {
    this.adminHashes = adminTokens.map((t) => createHash('sha256').update(t).digest());
  }

  /** The actor behind an Authorization header; 401 when there is no valid bearer token. */
  async authenticate(header: string | undefined): Promise<Actor> {
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) throw new ApiError('Unauthorized', 'Unauthorized: send "Authorization: Bearer TOKEN" (an admin token from DATA_DIR/admin.token, or a node token)');
    const token = m[1]!;
    const digest = createHash('sha256').update(token).digest();
    // Compare digests (fixed length) in constant time: the token itself never meets a variable-time compare.
    if (this.adminHashes.some((h) => timingSafeEqual(h, digest))) return { kind: 'admin' };
    const hex = digest.toString('hex');
    const cached = this.cache.get(hex);
    if (cached && cached.until > Date.now()) return { kind: 'node', nodeName: cached.nodeName };
    const rec = await this.store.get<NodeTokenRecord>(`${NODE_TOKEN_PREFIX}/${hex}`);
    if (!rec) throw new ApiError('Unauthorized', 'Unauthorized: the bearer token is not valid (revoked, or from another cluster)');
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hex, { nodeName: rec.value.nodeName, until: Date.now() + CACHE_MS });
    return { kind: 'node', nodeName: rec.value.nodeName };
  }

  /** Revocation takes effect at once on this instance (other instances: within CACHE_MS). */
  forget(hex: string): void {
    this.cache.delete(hex);
  }
}

const NODE_READABLE = new Set(['nodes', 'pods', 'services', 'endpoints', 'clusterconfig']);
/** Writes per resource; a node never deletes its Node (NodeRestriction: only an admin removes it). */
const NODE_WRITABLE: Record<string, ReadonlySet<Verb>> = {
  nodes: new Set<Verb>(['create', 'update', 'patch']),
  pods: new Set<Verb>(['create', 'update', 'patch', 'delete']),
};
const READ_VERBS = new Set<Verb>(['get', 'list', 'watch']);
const NODE_SUMMARY = 'node tokens may read nodes, services, endpoints, the cluster config and their own Pods, create and update their own Node, and write their own Pods';

/**
 * Coarse check on (verb, resource[, the list's field selector]): 403 for what a node token can
 * never do. A node lists and watches Pods only with fieldSelector spec.nodeName=<itself>.
 */
export function authorize(actor: Actor, verb: Verb, resource: string, fieldSelector?: FieldSelector): void {
  if (actor.kind === 'admin') return;
  const ok = READ_VERBS.has(verb) ? NODE_READABLE.has(resource) : (NODE_WRITABLE[resource]?.has(verb) ?? false);
  if (!ok) {
    const why = resource === 'nodes' && verb === 'delete' ? `a node may not delete Node objects, not even its own (an admin removes Nodes); ${NODE_SUMMARY}` : NODE_SUMMARY;
    throw forbidden(actor, verb, resource, why);
  }
  if (resource === 'pods' && (verb === 'list' || verb === 'watch') && !selectsNode(fieldSelector, actor.nodeName)) {
    throw forbidden(actor, verb, resource, `node tokens may ${verb} only the Pods bound to them: add fieldSelector=spec.nodeName=${actor.nodeName}`);
  }
}

const selectsNode = (s: FieldSelector | undefined, nodeName: string): boolean =>
  s?.requirements.some((r) => r.field === 'spec.nodeName' && r.operator === 'equals' && r.value === nodeName) ?? false;

/** Fine check on an object read by name (GET): a node reads only the Pods bound to it. */
export function readCheckFor(actor: Actor, resource: string): ((obj: KubeObject) => void) | undefined {
  if (actor.kind === 'admin' || resource !== 'pods') return undefined;
  return (obj) => {
    const bound = (obj as Pod).spec?.nodeName ?? '';
    if (bound !== actor.nodeName) throw forbidden(actor, 'get', resource, `node ${JSON.stringify(actor.nodeName)} may only read Pods with spec.nodeName ${JSON.stringify(actor.nodeName)}; ${describe(obj)} has ${JSON.stringify(bound)}`);
  };
}

/** Fine check on the objects themselves, run inside the write (with the stored object). */
export function writeCheckFor(actor: Actor, verb: Verb, resource: string): WriteCheck | undefined {
  if (actor.kind === 'admin') return undefined;
  const self = actor.nodeName;
  if (resource === 'nodes') return (next, old, ctx) => checkNodeNodeWrite(self, verb, next as Node | undefined, old as Node | undefined, ctx);
  if (resource === 'pods') return (next, old, ctx) => checkNodePodWrite(self, verb, next as Pod | undefined, old as Pod | undefined, ctx);
  return undefined;
}

const describe = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function forbidden(actor: Actor, verb: Verb, resource: string, why: string): ApiError {
  if (actor.kind === 'node') return nodeForbidden(actor.nodeName, verb, resource, why);
  return new ApiError('Forbidden', `${resource} is forbidden: User "admin" cannot ${verb} resource "${resource}": ${why}`, { kind: resource });
}
