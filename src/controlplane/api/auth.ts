// Bearer-token authentication and authorization.
//
// Two kinds of token:
// - admin tokens (podwire-controlplane init writes one to DATA_DIR/admin.token): everything;
// - node tokens (issued by an admin with POST /api/v1/nodes/NAME/token): what Kubernetes' node
//   authorizer lets a kubelet do, and no more: read the cluster's desired state (nodes, services,
//   endpoints, pods, cluster config: an agent needs its peers and the services it proxies), and
//   write only its own Node and the Pods bound to it (spec.nodeName).
// Node tokens are stored hashed (sha256) under /nodetokens/<hex>, so a store dump does not leak them.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KubeObject, Pod } from '../objects.js';
import type { Store } from '../store/types.js';
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
const NODE_WRITABLE = new Set(['nodes', 'pods']);
const READ_VERBS = new Set<Verb>(['get', 'list', 'watch']);

/** Coarse check on (verb, resource): 403 for what a node token can never do. */
export function authorize(actor: Actor, verb: Verb, resource: string): void {
  if (actor.kind === 'admin') return;
  const ok = READ_VERBS.has(verb) ? NODE_READABLE.has(resource) : NODE_WRITABLE.has(resource);
  if (!ok) throw forbidden(actor, verb, resource, 'node tokens may read nodes, pods, services, endpoints and the cluster config, and write only their own Node and Pods');
}

/** Fine check on the objects themselves, run inside the write (with the stored object). */
export function writeCheckFor(actor: Actor, verb: Verb, resource: string): WriteCheck | undefined {
  if (actor.kind === 'admin') return undefined;
  const self = actor.nodeName;
  if (resource === 'nodes') {
    return (next, old) => {
      const name = (next ?? old)!.metadata.name;
      if (name !== self) throw forbidden(actor, verb, resource, `node ${JSON.stringify(self)} may only write its own Node object, not ${JSON.stringify(name)}`);
    };
  }
  if (resource === 'pods') {
    return (next, old) => {
      for (const o of [next, old]) {
        if (o && (o as Pod).spec?.nodeName !== self) {
          throw forbidden(actor, verb, resource, `node ${JSON.stringify(self)} may only write Pods with spec.nodeName ${JSON.stringify(self)}; ${describe(o)} has ${JSON.stringify((o as Pod).spec?.nodeName ?? '')}`);
        }
      }
    };
  }
  return undefined;
}

const describe = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function forbidden(actor: Actor, verb: Verb, resource: string, why: string): ApiError {
  const who = actor.kind === 'admin' ? 'admin' : `system:node:${actor.nodeName}`;
  return new ApiError('Forbidden', `${resource} is forbidden: User "${who}" cannot ${verb} resource "${resource}": ${why}`, { kind: resource });
}
