// Pod registration with the control plane, so Services can select the pod: after a successful ADD
// the plugin writes a Pod (namespace/name from CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME, labels
// from PODWIRE_LABELS=key:value,key:value, the pod IPs from the result, spec.nodeName this node);
// DEL removes it. Enabled by a `controlPlane` section in the network config; it uses the node's
// token, which may write only Pods bound to this node.
//
// A failed registration fails the ADD (and the caller undoes the attachment): a pod that runs but
// that no Service can ever select is worse than a retry by the runtime.
import { ApiClient, ApiClientError } from '../client/api-client.js';
import type { Pod } from '../api/objects.js';
import type { CniEnv } from './env.js';
import { CniError, CNI_ERR } from './errors.js';
import type { Result } from './result.js';
import { readSmallFile } from './files.js';

/** A token is ~50 bytes and a CA bundle a few KiB: anything past this is not one. */
const CREDENTIAL_MAX_BYTES = 1024 * 1024;

export interface ControlPlaneConf {
  /** Through the local agent (it adds its node token) … */
  agentSocket?: string;
  /** … or straight to the control plane with a node token. */
  server?: string;
  tokenFile?: string;
  caFile?: string;
  /** spec.nodeName of the pods this node registers. */
  nodeName: string;
  /** The attachment that stands for the pod (the pod IP is its address); default eth0. */
  ifname: string;
}

export const CONTAINER_ID_ANNOTATION = 'podwire.io/container-id';
/** The pod's netns as the runtime gave it (CNI_NETNS): where the debugging CLI's probes start (verified by the agent). */
export const NETNS_ANNOTATION = 'podwire.io/netns';
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

const fail = (msg: string, details: string) => new CniError(CNI_ERR.CONTROL_PLANE, msg, details);

/** The pod's identity from CNI_ARGS (as kubelet / CRI runtimes pass it); a name from the container ID otherwise. */
export function podIdentity(env: CniEnv): { namespace: string; name: string; labels: Record<string, string> } {
  const namespace = env.args.get('K8S_POD_NAMESPACE') || 'default';
  const name = env.args.get('K8S_POD_NAME') || `cni-${env.containerId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12) || 'pod'}`;
  const labels: Record<string, string> = {};
  const text = env.args.get('PODWIRE_LABELS') ?? '';
  for (const pair of text.split(',').filter((s) => s !== '')) {
    const colon = pair.indexOf(':');
    const key = pair.slice(0, colon);
    const value = pair.slice(colon + 1);
    if (colon <= 0 || !LABEL_KEY.test(key) || key.length > 317 || !LABEL_VALUE.test(value)) {
      throw new CniError(CNI_ERR.INVALID_ENV, `invalid PODWIRE_LABELS entry ${JSON.stringify(pair.slice(0, 80))} in CNI_ARGS`, 'PODWIRE_LABELS is a ","-separated list of key:value Kubernetes labels, e.g. PODWIRE_LABELS=app:web,tier:front');
    }
    labels[key] = value;
  }
  return { namespace, name, labels };
}

/**
 * The node token and CA of a direct (not through the agent) connection. ADD reads them before it
 * touches the node, so a bad file fails the ADD with nothing to undo. Type-checked, bounded reads:
 * a FIFO named here must fail, not block the plugin forever.
 */
export type Credentials = { token: string; ca?: Buffer } | undefined;

export function readCredentials(conf: ControlPlaneConf): Credentials {
  if (conf.agentSocket) return undefined;
  try {
    const token = readSmallFile(conf.tokenFile!, CREDENTIAL_MAX_BYTES).toString('utf8').trim();
    return conf.caFile ? { token, ca: readSmallFile(conf.caFile, CREDENTIAL_MAX_BYTES) } : { token };
  } catch (e) {
    throw fail(`cannot read the control plane credentials: ${(e as Error).message}`, 'controlPlane.tokenFile (a node token from `podwire token create NODE`) and controlPlane.caFile must be readable files');
  }
}

function clientFor(conf: ControlPlaneConf, credentials: Credentials = readCredentials(conf)): ApiClient {
  if (conf.agentSocket) return new ApiClient({ server: 'http://podwire-agent', socketPath: conf.agentSocket, timeoutMs: 10_000 });
  return new ApiClient({ server: conf.server!, ...credentials, timeoutMs: 10_000 });
}

function explain(e: unknown, what: string): CniError {
  if (e instanceof ApiClientError) {
    const reason = e.status?.reason ? ` (${e.status.reason})` : '';
    return fail(`${what}: ${e.message}${reason}`, e.code === 0 ? 'the control plane is unreachable: check controlPlane.server (or agentSocket) and that podwire-controlplane (or podwire-agent) runs' : e.code === 401 || e.code === 403 ? 'check the node token in controlPlane.tokenFile and controlPlane.nodeName' : '');
  }
  return fail(`${what}: ${(e as Error).message}`, '');
}

export function podObject(conf: ControlPlaneConf, env: CniEnv, result: Result): Pod {
  const id = podIdentity(env);
  const ips = result.ips.map((ip) => ip.address.split('/')[0]!);
  const podIP = ips.find((ip) => !ip.includes(':')) ?? ips[0];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: id.name, namespace: id.namespace, labels: id.labels, annotations: { [CONTAINER_ID_ANNOTATION]: env.containerId, ...(env.netns ? { [NETNS_ANNOTATION]: env.netns } : {}) } },
    spec: { nodeName: conf.nodeName },
    status: {
      phase: 'Running',
      ...(podIP ? { podIP, podIPs: ips.map((ip) => ({ ip })) } : {}),
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

/** Creates the Pod, or replaces the one of an earlier sandbox of the same pod (newest ADD wins). */
/** `credentials`: what readCredentials(conf) gave before the ADD touched the node (read once). */
export async function registerPod(conf: ControlPlaneConf, env: CniEnv, result: Result, credentials: Credentials): Promise<void> {
  if (env.ifname !== conf.ifname) return;
  const pod = podObject(conf, env, result);
  const ref = { plural: 'pods', namespace: pod.metadata.namespace, name: pod.metadata.name };
  const client = clientFor(conf, credentials);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.create(ref, pod);
        return;
      } catch (e) {
        if (!(e instanceof ApiClientError) || e.code !== 409 || attempt >= 3) throw e;
      }
      try {
        const live = await client.get<Pod>(ref);
        await client.update(ref, { ...pod, metadata: { ...pod.metadata, resourceVersion: live.metadata.resourceVersion } });
        return;
      } catch (e) {
        if (!(e instanceof ApiClientError) || (e.code !== 409 && e.code !== 404) || attempt >= 3) throw e;
      }
    }
  } catch (e) {
    throw explain(e, `registering pod ${pod.metadata.namespace}/${pod.metadata.name}`);
  } finally {
    client.close();
  }
}

/** Deletes the Pod if it is still this container's (a newer sandbox's Pod is left alone). */
export async function unregisterPod(conf: ControlPlaneConf, env: CniEnv): Promise<void> {
  if (env.ifname !== conf.ifname) return;
  const id = podIdentity(env);
  const ref = { plural: 'pods', namespace: id.namespace, name: id.name };
  const client = clientFor(conf);
  try {
    // 403: the Pod is bound to another node now (a node reads only its own Pods), so not ours.
    const live = await client.get<Pod>(ref).catch((e) => {
      if (e instanceof ApiClientError && e.code === 403 && e.status?.reason === 'Forbidden') return undefined;
      throw e;
    });
    if (live?.metadata.annotations?.[CONTAINER_ID_ANNOTATION] !== env.containerId) return;
    await client.request('DELETE', `/api/v1/namespaces/${encodeURIComponent(id.namespace)}/pods/${encodeURIComponent(id.name)}`, { preconditions: { uid: live!.metadata.uid } });
  } catch (e) {
    if (e instanceof ApiClientError && (e.code === 404 || e.code === 409)) return; // gone, or replaced meanwhile
    throw explain(e, `unregistering pod ${id.namespace}/${id.name}`);
  } finally {
    client.close();
  }
}
