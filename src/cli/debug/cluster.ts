// What the debugging commands read from the control plane: its Pods, Nodes and Services in one
// go (resolve.ts looks SRC and DST up in them). A control plane that does not answer, or answers
// an error, is an UnreachableError (exit 3) saying which server and what to check.
import { ApiClient, ApiClientError } from '../../client/api-client.js';
import type { Node, Pod, Service } from '../../api/objects.js';
import { UnreachableError } from './output.js';
import type { Cluster, Resolved } from './resolve.js';
import type { DebugTarget } from './target.js';

/**
 * One read from the control plane with a short-lived client; any failure is an UnreachableError
 * "cannot WHAT from the control plane (SERVER): why".
 */
export async function fromControlPlane<T>(target: DebugTarget, what: string, read: (client: ApiClient) => Promise<T>): Promise<T> {
  const client = new ApiClient({ ...target.controlPlane, timeoutMs: 5000 });
  try {
    return await read(client);
  } catch (e) {
    throw new UnreachableError(`cannot ${what} from the control plane (${target.controlPlane.serverSource}): ${(e as Error).message}`);
  } finally {
    client.close();
  }
}

export async function readCluster(target: DebugTarget): Promise<Cluster> {
  const client = new ApiClient({ ...target.controlPlane, timeoutMs: 5000 });
  try {
    const [pods, nodes, services] = await Promise.all([
      client.list<Pod>({ plural: 'pods' }),
      client.list<Node>({ plural: 'nodes' }),
      client.list<Service>({ plural: 'services' }),
    ]);
    return { pods: pods.items, nodes: nodes.items, services: services.items };
  } catch (e) {
    if (e instanceof ApiClientError && e.code > 0) throw new UnreachableError(`the control plane answered ${e.code}: ${e.message}${e.code === 401 || e.code === 403 ? ' (check the token)' : ''}`);
    throw new UnreachableError(`cannot reach the control plane (${target.controlPlane.serverSource}): ${(e as Error).message}; is it running?`);
  } finally {
    client.close();
  }
}

/** "pod default/web", "service kube-system/kube-dns", "node node1", "ip 198.51.100.1": for messages and reports. */
export const describeResolved = (r: Resolved): string => (r.kind === 'pod' || r.kind === 'service' ? `${r.kind} ${r.namespace}/${r.name}` : r.kind === 'node' ? `node ${r.name}` : `ip ${r.ip}`);
