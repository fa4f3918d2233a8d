// `podwire status [--node N] [--lab PREFIX | connection flags] [-o json|wide]`: the control plane,
// then each node as the control plane has it, with what its agent says over its local socket.
// Gathering is here; the report, its table and the exit code are pure (debug/status.ts).
import { ApiClient, ApiClientError } from '../client/api-client.js';
import type { Node, Pod } from '../api/objects.js';
import { readLabStates } from '../lab/lab.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { fetchAgentStatus, fetchAgentStatusOf, type AgentAnswer } from './debug/agent.js';
import { colourEnabled, formatJson, painter, parseDebugOutput } from './debug/output.js';
import { unknownName } from './debug/suggest.js';
import { resolveTarget, TARGET_FLAGS, type DebugTarget } from './debug/target.js';
import { buildStatusReport, renderStatus, statusExitCode, type StatusInput } from './debug/status.js';

const STATUS_FLAGS: FlagSpecs = {
  node: { type: 'string', help: 'only this node' },
  output: { type: 'string', alias: 'o', help: 'wide or json (default: a table)' },
  ...TARGET_FLAGS,
};

export const STATUS_USAGE = `usage: podwire status [--node NAME] [--lab PREFIX] [-o wide|json]
  exit 0 healthy, 1 a node has a problem (agent down, last sync failed, out of sync), 2 usage error,
  3 the control plane cannot be reached
status flags:
${flagHelp(STATUS_FLAGS)}`;

async function controlPlaneState(client: ApiClient, target: DebugTarget): Promise<StatusInput['controlPlane'] & { nodes?: Node[]; pods?: Pod[] }> {
  const server = target.controlPlane.socketPath ? `unix:${target.controlPlane.socketPath}` : target.controlPlane.server;
  try {
    const version = await client.request<{ gitVersion?: string }>('GET', '/version');
    const nodes = (await client.list<Node>({ plural: 'nodes' })).items;
    const pods = (await client.list<Pod>({ plural: 'pods' })).items;
    return { server, reachable: true, ...(version.gitVersion ? { version: version.gitVersion } : {}), nodes, pods };
  } catch (e) {
    if (e instanceof ApiClientError && e.code > 0) {
      const hint = e.code === 401 || e.code === 403 ? ' (check the token)' : '';
      return { server, reachable: false, error: `answered ${e.code}: ${e.message}${hint}` };
    }
    const where = target.controlPlane.serverSource;
    return { server, reachable: false, error: `${(e as Error).message} (from ${where}); is the control plane running?` };
  }
}

/** Each node's agent, asked in parallel; undefined when this machine has no way to reach it. */
async function agentAnswers(names: string[], target: DebugTarget): Promise<Map<string, AgentAnswer | undefined>> {
  const out = new Map<string, AgentAnswer | undefined>(names.map((n) => [n, undefined]));
  if (target.labAgents) {
    await Promise.all(names.map(async (n) => {
      const ep = target.labAgents!.get(n);
      if (ep) out.set(n, await fetchAgentStatusOf(target, n));
    }));
  } else if (target.localAgentSocket && names.length > 0 && target.controlPlane.server) {
    // This machine's node over the local socket, every other one at its published HTTPS endpoint.
    await Promise.all(names.map(async (n) => out.set(n, await fetchAgentStatusOf(target, n))));
  } else if (target.localAgentSocket) {
    const local = await fetchAgentStatus(target.localAgentSocket);
    // The local agent says which node it is; when it is down, we cannot tell which node's it was.
    if (local.ok && out.has(local.status.nodeName)) out.set(local.status.nodeName, local);
    else if (!local.ok && names.length === 1) out.set(names[0]!, local);
  }
  return out;
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, STATUS_FLAGS);
  if (positional.length) throw new UsageError(`status takes no arguments (got ${positional.join(' ')}); use --node NAME for one node`);
  const mode = parseDebugOutput(flags.output as string | undefined);
  const target = resolveTarget({ flags, env: process.env, labStates: readLabStates });
  const client = new ApiClient({ ...target.controlPlane, timeoutMs: 5000 });
  try {
    const cp = await controlPlaneState(client, target);
    let nodes: StatusInput['nodes'] = cp.nodes ? cp.nodes.map((node) => ({ name: node.metadata.name, node })) : [...(target.labAgents?.keys() ?? [])].map((name) => ({ name }));
    const only = flags.node as string | undefined;
    if (only !== undefined) {
      const known = nodes.map((n) => n.name);
      if (!known.includes(only)) {
        if (cp.reachable || target.labAgents) throw new UsageError(`${unknownName('node', only, known)}; list them with: podwire status${flags.lab ? ` --lab ${flags.lab}` : ''}`);
        nodes = [{ name: only }];
      } else nodes = nodes.filter((n) => n.name === only);
    }
    const { nodes: _n, pods, ...controlPlane } = cp;
    const report = buildStatusReport({ where: target.where, controlPlane, nodes, ...(pods ? { pods } : {}), agents: await agentAnswers(nodes.map((n) => n.name), target) });
    const paint = painter(colourEnabled(process.stdout, process.env));
    console.log(mode === 'json' ? formatJson(report) : renderStatus(report, mode, Date.now(), paint));
    return statusExitCode(report);
  } finally {
    client.close();
  }
}
