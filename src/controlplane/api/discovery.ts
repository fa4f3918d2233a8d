// Discovery documents, shaped as kube-apiserver's, so a stock kubectl finds the resources:
// /version, /api (core group versions), /api/v1 (resources), /apis (no named groups).
import type { FastifyInstance } from 'fastify';
import { VERSION } from '../../version.js';
import { RESOURCES } from './resources.js';

/** The Kubernetes API level podwire's core/v1 subset follows. */
export const KUBE_API_LEVEL = { major: '1', minor: '29' };

const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export function apiResourceList(): object {
  return {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [...RESOURCES.values()].map((d) => ({
      name: d.plural,
      singularName: d.singular,
      namespaced: d.namespaced,
      kind: d.kind,
      verbs: VERBS,
      shortNames: d.shortNames,
    })),
  };
}

/**
 * A minimal OpenAPI v3 document for core/v1: one PATCH operation per kind that declares the
 * `fieldValidation` query parameter. That is what kubectl looks for before it lets the server
 * validate (instead of downloading the whole protobuf OpenAPI v2 schema to validate client-side),
 * so `kubectl create -f` works without --validate=false.
 */
export function openApiV1(): object {
  const paths: Record<string, object> = {};
  for (const d of RESOURCES.values()) {
    const path = d.namespaced ? `/api/v1/namespaces/{namespace}/${d.plural}/{name}` : `/api/v1/${d.plural}/{name}`;
    paths[path] = {
      patch: {
        operationId: `patchCoreV1${d.kind}`,
        'x-kubernetes-group-version-kind': { group: '', version: 'v1', kind: d.kind },
        parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string', enum: ['Ignore', 'Warn', 'Strict'] } }],
        responses: { '200': { description: 'OK' } },
      },
    };
  }
  return { openapi: '3.0.0', info: { title: 'podwire', version: VERSION }, paths };
}

export function registerDiscovery(app: FastifyInstance): void {
  app.get('/version', async () => ({
    major: KUBE_API_LEVEL.major,
    minor: KUBE_API_LEVEL.minor,
    gitVersion: `v${KUBE_API_LEVEL.major}.${KUBE_API_LEVEL.minor}.0-podwire.${VERSION}`,
    gitCommit: '',
    gitTreeState: 'clean',
    buildDate: '1970-01-01T00:00:00Z',
    goVersion: `node${process.versions.node}`,
    compiler: 'tsc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  }));
  app.get('/api', async (req) => ({
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.host }],
  }));
  app.get('/api/v1', async () => apiResourceList());
  app.get('/apis', async () => ({ kind: 'APIGroupList', apiVersion: 'v1', groups: [] }));
  app.get('/openapi/v3', async () => ({ paths: { 'api/v1': { serverRelativeURL: `/openapi/v3/api/v1?hash=${VERSION}` } } }));
  app.get('/openapi/v3/api/v1', async () => openApiV1());
}
