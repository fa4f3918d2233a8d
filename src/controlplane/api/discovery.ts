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
}
