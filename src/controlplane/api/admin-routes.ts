// podwire's own endpoints next to core/v1 (not announced in discovery):
//   GET/PUT /api/v1/clusterconfig            the cluster's ClusterConfig singleton
//   POST/DELETE /api/v1/nodes/NAME/token     issue a node token / revoke every token of a node
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { ClusterConfig } from '../../api/objects.js';
import type { Store } from '../store/types.js';
import { clusterConfigSpecWithDefaults, validateClusterConfig } from '../validate-objects.js';
import { validateDns1123Subdomain } from '../../api/validate.js';
import { authorize, hashToken, newToken, NODE_TOKEN_PREFIX, type Authenticator, type NodeTokenRecord } from './auth.js';
import { CONFIG_KEY, checkConfigAgainstAllocations, readClusterConfig } from './allocations.js';
import { actorOf, ObjectBody } from './routes.js';
import { ApiError, conflict, invalidError } from './status.js';

const NodeParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });

export async function getClusterConfig(store: Store): Promise<ClusterConfig> {
  const stored = await store.get<ClusterConfig>(CONFIG_KEY);
  return {
    apiVersion: 'podwire.io/v1',
    kind: 'ClusterConfig',
    metadata: { ...(stored?.value.metadata ?? { name: 'cluster' }), resourceVersion: String(stored?.modRevision ?? 0) },
    spec: await readClusterConfig(store),
  };
}

/** Seeds the stored config on first start; an existing one wins (it is what allocations were made with). */
export async function seedClusterConfig(store: Store, spec: ClusterConfig['spec']): Promise<void> {
  await store.txn(async (tx) => {
    if (await tx.get(CONFIG_KEY)) return;
    await checkConfigAgainstAllocations(tx, spec);
    tx.put(CONFIG_KEY, { apiVersion: 'podwire.io/v1', kind: 'ClusterConfig', metadata: { name: 'cluster', creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }, spec });
  });
}

export function registerAdminRoutes(app: FastifyInstance, store: Store, auth: Authenticator): void {
  app.get('/api/v1/clusterconfig', async (req) => {
    authorize(actorOf(req), 'get', 'clusterconfig');
    return getClusterConfig(store);
  });

  app.put('/api/v1/clusterconfig', { schema: { body: ObjectBody } }, async (req) => {
    authorize(actorOf(req), 'update', 'clusterconfig');
    const errors = validateClusterConfig(req.body);
    if (errors.length > 0) throw invalidError('ClusterConfig', { kind: 'clusterconfigs', name: 'cluster' }, errors);
    const body = req.body as ClusterConfig;
    const spec = clusterConfigSpecWithDefaults(body.spec);
    await store.txn(async (tx) => {
      const current = await tx.get<ClusterConfig>(CONFIG_KEY);
      const rv = body.metadata.resourceVersion;
      if (rv && rv !== String(current?.modRevision ?? 0)) throw conflict('clusterconfigs', 'cluster');
      await checkConfigAgainstAllocations(tx, spec);
      tx.put(CONFIG_KEY, { apiVersion: 'podwire.io/v1', kind: 'ClusterConfig', metadata: { ...(current?.value.metadata ?? {}), name: 'cluster' }, spec });
    });
    return getClusterConfig(store);
  });

  app.post<{ Params: { name: string } }>('/api/v1/nodes/:name/token', { schema: { params: NodeParams } }, async (req, reply) => {
    authorize(actorOf(req), 'create', 'nodetokens');
    const nodeName = req.params.name;
    const errors = validateDns1123Subdomain(nodeName, 'metadata.name');
    if (errors.length > 0) throw invalidError('Node', { kind: 'nodes', name: nodeName }, errors);
    const token = newToken('node');
    const record: NodeTokenRecord = { nodeName, createdAt: new Date().toISOString() };
    await store.create(`${NODE_TOKEN_PREFIX}/${hashToken(token)}`, record);
    return reply.code(201).send({ apiVersion: 'podwire.io/v1', kind: 'NodeToken', nodeName, token });
  });

  app.delete<{ Params: { name: string } }>('/api/v1/nodes/:name/token', { schema: { params: NodeParams } }, async (req) => {
    authorize(actorOf(req), 'delete', 'nodetokens');
    const nodeName = req.params.name;
    const { items } = await store.list<NodeTokenRecord>(NODE_TOKEN_PREFIX);
    const mine = items.filter((o) => o.value.nodeName === nodeName);
    if (mine.length === 0) throw new ApiError('NotFound', `node ${JSON.stringify(nodeName)} has no tokens`, { kind: 'nodetokens', name: nodeName });
    await store.txn(async (tx) => mine.forEach((o) => tx.delete(o.key)));
    mine.forEach((o) => auth.forget(o.key.slice(NODE_TOKEN_PREFIX.length + 1)));
    return { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Success', message: `revoked ${mine.length} token(s) of node ${nodeName}`, code: 200 };
  });
}
