// The agent's local API as the CLI reads it: GET /v1/status over the agent's unix socket. The
// CLI may not import src/agent (scripts/layers.cjs), so the JSON it reads is typed here, with only
// the fields the commands use; src/agent/agent.ts AgentState and main.ts are what writes it.
import { ApiClient, ApiClientError } from '../../client/api-client.js';

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
