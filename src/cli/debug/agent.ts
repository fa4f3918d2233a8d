// The agent's local API as the CLI reads it: GET /v1/status over the agent's unix socket. The
// CLI may not import src/agent (scripts/layers.cjs), so the JSON it reads is typed here, with only
// the fields the commands use; src/agent/agent.ts AgentState and main.ts are what writes it.
import { ApiClient, ApiClientError } from '../../client/api-client.js';
import { UsageError } from '../../flags/flags.js';
import { UnreachableError } from './output.js';
import { unknownName } from './suggest.js';
import { DEFAULT_AGENT_SOCKET, type DebugTarget } from './target.js';

export interface AgentStatusView {
  nodeName: string;
  podCidr?: string;
  backend?: string;
  peers: { name: string; podCidr: string; publicIp: string; vtepMac?: string }[];
  lastSync?: { at: string; steps: string[]; errors: string[]; ms: number; objects?: { routes: number; neighbours: number; fdb: number } };
  controlPlane: 'connected' | 'unreachable';
  proxy?: { mode: string; services: number; servicePorts: number; endpoints: number; lastSync?: { at: string; scope: string; ms: number; error?: string } };
  process?: { rssMB: number; heapUsedMB: number; uptimeS: number };
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
 * One request to a node's agent debug API (GET/POST /v1/debug/…), wherever the command runs: in a
 * lab, the node's agent socket; on a real node, this machine's agent for its own node (`node`
 * undefined, or this machine's node name). Other nodes' agents: not reachable from here yet (the
 * authenticated endpoint per agent, issue 15), an UnreachableError saying so. An agent that
 * answers an error status gives an AgentRequestError with its message; one that does not answer,
 * an UnreachableError naming the node and what to do.
 */
export async function agentRequest<T>(target: DebugTarget, node: string | undefined, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<T> {
  const socket = agentSocketFor(target, node);
  const client = new ApiClient({ server: 'http://podwire-agent', socketPath: socket, timeoutMs });
  try {
    return await client.request<T>(method, path, body);
  } catch (e) {
    if (e instanceof ApiClientError && e.code > 0) throw new AgentRequestError(node ?? 'this node', e.code, e.message);
    const err = e as NodeJS.ErrnoException;
    const why = /ENOENT/.test(err.message) ? `no socket at ${socket} (agent not running?)` : /ECONNREFUSED/.test(err.message) ? `nothing listens on ${socket} (agent stopped?)` : `${socket}: ${err.message}`;
    throw new UnreachableError(`cannot reach the agent of ${node ?? 'this node'}: ${why}; check it with: podwire status${target.where.startsWith('lab ') ? ` --lab ${target.where.slice(4)}` : ''}`);
  } finally {
    client.close();
  }
}

/** The agent answered with an error status (a bad request, a pod it does not have, …). */
export class AgentRequestError extends Error {
  constructor(readonly node: string, readonly code: number, message: string) {
    super(`the agent of ${node} answered ${code}: ${message}`);
    this.name = 'AgentRequestError';
  }
}

function agentSocketFor(target: DebugTarget, node: string | undefined): string {
  if (target.labAgents) {
    const ep = node === undefined ? undefined : target.labAgents.get(node);
    if (ep) return ep.socket;
    throw new UsageError(unknownName('node', node ?? '', [...target.labAgents.keys()]));
  }
  if (node !== undefined && target.localNodeName !== undefined && node !== target.localNodeName) {
    throw new UnreachableError(`the agent of node ${node} is on another machine; run the command there (the authenticated endpoint per agent is not built yet)`);
  }
  return target.localAgentSocket ?? DEFAULT_AGENT_SOCKET;
}
