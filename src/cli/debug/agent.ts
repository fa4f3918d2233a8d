// The agent's API as the CLI reads it: GET /v1/status and /v1/debug/* over the agent's unix socket
// (this machine's node) or its authenticated HTTPS endpoint (every other node; every lab node). The
// CLI may not import src/agent (scripts/layers.cjs), so the JSON it reads is typed here, with only
// the fields the commands use; src/agent/agent.ts AgentState and main.ts are what writes it.
import { ApiClient, ApiClientError } from '../../client/api-client.js';
import { UsageError } from '../../flags/flags.js';
import { UnreachableError } from './output.js';
import { unknownName } from './suggest.js';
import { DEFAULT_AGENT_SOCKET, type DebugTarget } from './target.js';
import type { Node } from '../../api/objects.js';
import { agentHttpsClient, httpsFailure, publishedEndpoint, type AgentHttpsEndpoint, type PublishedEndpoint } from './agent-https.js';

export interface AgentStatusView {
  nodeName: string;
  podCidr?: string;
  backend?: string;
  peers: { name: string; podCidr: string; publicIp: string; vtepMac?: string }[];
  lastSync?: { at: string; steps: string[]; errors: string[]; ms: number; objects?: { routes: number; neighbours: number; fdb: number } };
  controlPlane: 'connected' | 'unreachable';
  proxy?: { mode: string; services: number; servicePorts: number; endpoints: number; lastSync?: { at: string; scope: string; ms: number; error?: string } };
  process?: { rssMB: number; heapUsedMB: number; uptimeS: number };
  /** The node-local cluster DNS (absent with --dns off, before it starts, or from an older agent). */
  dns?: { clusterDns: string; gateway: string; synced: boolean; listening: string[]; upstreams: string[]; loops: string[]; fallback: string[]; fallbackDown?: string[]; error?: string };
  /** The steps a network sync would take now (absent before registration, or from an older agent). */
  outOfSync?: string[];
  outOfSyncError?: string;
}

/** An agent that answered, or why it did not (the socket is missing, refused, timed out, …). */
export type AgentAnswer = { ok: true; status: AgentStatusView } | { ok: false; error: string };

export async function fetchAgentStatus(socket: string, timeoutMs = 3000): Promise<AgentAnswer> {
  const client = new ApiClient({ server: 'http://podwire-agent', socketPath: socket, timeoutMs });
  try {
    return { ok: true, status: await client.request<AgentStatusView>('GET', '/v1/status') };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' || /ENOENT/.test(err.message) ? `no socket at ${socket} (agent not running?)` : /ECONNREFUSED/.test(err.message) ? `nothing listens on ${socket} (agent stopped?)` : e instanceof ApiClientError && e.code > 0 ? `the agent answered ${e.code}: ${e.message}` : `${socket}: ${err.message}`;
    return { ok: false, error: why };
  } finally {
    client.close();
  }
}

/**
 * One request to a node's agent debug API (GET/POST /v1/debug/…), wherever the command runs:
 * - a lab (--lab): every node's agent over its authenticated HTTPS endpoint, as on a real
 *   cluster, the TCP stream through the lab's underlay forwarder (agent-https.ts);
 * - a real node: this machine's agent over its unix socket for its own node (`node` undefined,
 *   or the node the local agent serves), every other node's agent at the HTTPS endpoint its Node
 *   publishes, with the admin token of the client config and the certificate pinned.
 * An agent that answers an error status gives an AgentRequestError with its message; one that
 * cannot be reached (or refuses the token), an UnreachableError naming the node, the endpoint and
 * what to do.
 */
export async function agentRequest<T>(target: DebugTarget, node: string | undefined, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<T> {
  const transport = await transportFor(target, node);
  if (transport.kind === 'https') return httpsRequest<T>(target, transport.ep, method, path, body, timeoutMs);
  const socket = transport.socket;
  const client = new ApiClient({ server: 'http://podwire-agent', socketPath: socket, timeoutMs });
  try {
    return await client.request<T>(method, path, body);
  } catch (e) {
    if (e instanceof ApiClientError && e.code > 0) throw new AgentRequestError(node ?? 'this node', e.code, e.message, e.status);
    const err = e as NodeJS.ErrnoException;
    const why = /ENOENT/.test(err.message) ? `no socket at ${socket} (agent not running?)` : /ECONNREFUSED/.test(err.message) ? `nothing listens on ${socket} (agent stopped?)` : `${socket}: ${err.message}`;
    throw new UnreachableError(`cannot reach the agent of ${node ?? 'this node'}: ${why}; check it with: podwire status${target.where.startsWith('lab ') ? ` --lab ${target.where.slice(4)}` : ''}`);
  } finally {
    client.close();
  }
}

/** GET /v1/status of a node's agent through agentRequest's transport; never throws for an unreachable agent. */
export async function fetchAgentStatusOf(target: DebugTarget, node: string, timeoutMs = 3000): Promise<AgentAnswer> {
  try {
    return { ok: true, status: await agentRequest<AgentStatusView>(target, node, 'GET', '/v1/status', undefined, timeoutMs) };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    return { ok: false, error: (e as Error).message.replace(/^cannot reach the agent of \S+: /, '').replace(/; check it with: podwire status.*$/, '') };
  }
}

async function httpsRequest<T>(target: DebugTarget, ep: AgentHttpsEndpoint, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<T> {
  const again = `podwire status${target.where.startsWith('lab ') ? ` --lab ${target.where.slice(4)}` : ''}`;
  let client: ApiClient | undefined;
  try {
    client = await agentHttpsClient(ep, target.controlPlane.token, timeoutMs);
    return await client.request<T>(method, path, body);
  } catch (e) {
    if (e instanceof ApiClientError && (e.code === 401 || e.code === 403)) {
      throw new UnreachableError(`the agent of ${ep.node} at ${ep.url} refused the token (${e.code}: ${e.message}); its debug API takes admin tokens only: use the cluster's admin token in the client config (--token/--token-file, PODWIRE_TOKEN or ${'$'}PODWIRE_CONFIG)`);
    }
    if (e instanceof ApiClientError && e.code === 503 && e.reason === 'ServiceUnavailable') throw new UnreachableError(`the agent of ${ep.node} at ${ep.url}: ${e.message}`);
    if (e instanceof ApiClientError && e.code > 0) throw new AgentRequestError(ep.node, e.code, e.message, e.status);
    throw new UnreachableError(`cannot reach the agent of ${ep.node}: ${httpsFailure(ep, e as Error)}; check it with: ${again}`);
  } finally {
    client?.close();
  }
}

type Transport = { kind: 'unix'; socket: string } | { kind: 'https'; ep: AgentHttpsEndpoint };

const publishedCache = new WeakMap<DebugTarget, Promise<Map<string, PublishedEndpoint>>>();
const localNodeCache = new WeakMap<DebugTarget, Promise<string | undefined>>();

/** Every Node's published endpoint, read once per command from the control plane (admin credentials). */
function publishedEndpoints(target: DebugTarget): Promise<Map<string, PublishedEndpoint>> {
  let p = publishedCache.get(target);
  if (!p) {
    p = (async () => {
      const c = new ApiClient({ ...target.controlPlane, timeoutMs: 5000 });
      try {
        const nodes = (await c.list<Node>({ plural: 'nodes' })).items;
        return new Map(nodes.map((n) => [n.metadata.name, publishedEndpoint(n)]));
      } finally {
        c.close();
      }
    })();
    publishedCache.set(target, p);
  }
  return p;
}

async function httpsEndpoint(target: DebugTarget, node: string, socketPath?: string): Promise<AgentHttpsEndpoint> {
  let published: Map<string, PublishedEndpoint>;
  try {
    published = await publishedEndpoints(target);
  } catch (e) {
    throw new UnreachableError(`cannot reach the agent of ${node}: its endpoint is published on its Node, and the control plane (${target.controlPlane.serverSource}) did not answer: ${(e as Error).message}`);
  }
  const p = published.get(node);
  if (!p) throw new UnreachableError(`cannot reach the agent of ${node}: the control plane has no Node ${node} (its agent has not registered)`);
  if (!p.ok) throw new UnreachableError(`cannot reach the agent of ${node}: ${p.error}`);
  return { node, url: p.url, certSha256: p.certSha256, ...(socketPath ? { socketPath } : {}) };
}

/** The node this machine's agent serves (its /v1/status), once per command; undefined when it does not answer. */
function localNode(target: DebugTarget): Promise<string | undefined> {
  if (target.localNodeName !== undefined) return Promise.resolve(target.localNodeName);
  let p = localNodeCache.get(target);
  if (!p) {
    p = fetchAgentStatus(target.localAgentSocket ?? DEFAULT_AGENT_SOCKET).then((a) => (a.ok ? a.status.nodeName : undefined));
    localNodeCache.set(target, p);
  }
  return p;
}

async function transportFor(target: DebugTarget, node: string | undefined): Promise<Transport> {
  if (target.labAgents) {
    const ep = node === undefined ? undefined : target.labAgents.get(node);
    if (!ep) throw new UsageError(unknownName('node', node ?? '', [...target.labAgents.keys()]));
    return { kind: 'https', ep: await httpsEndpoint(target, ep.node, ep.httpsSocket) };
  }
  const socket = target.localAgentSocket ?? DEFAULT_AGENT_SOCKET;
  if (node === undefined) return { kind: 'unix', socket };
  const local = await localNode(target);
  // This machine's own node; or a target without a control plane (peers/routes on a real node:
  // the local agent only), where the local socket's answer or error is all there is.
  if (local === node || !target.controlPlane.server) return { kind: 'unix', socket };
  return { kind: 'https', ep: await httpsEndpoint(target, node) };
}

/** The agent answered with an error status (a bad request, a pod it does not have, …). */
export class AgentRequestError extends Error {
  /** body: the agent's error body (a Status, maybe with more fields, e.g. services' list of known names on a 404). */
  constructor(readonly node: string, readonly code: number, message: string, readonly body?: unknown) {
    super(`the agent of ${node} answered ${code}: ${message}`);
    this.name = 'AgentRequestError';
  }
}
