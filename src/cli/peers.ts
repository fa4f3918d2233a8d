// `podwire peers` and `podwire routes [--node N] [--lab PREFIX] [-o wide|json]`: each node's
// agent's GET /v1/debug/peers (desired vs present route, neighbour and FDB entry per peer).
// In a lab every node's agent is asked; on a real node this machine's agent (or, --node N with a
// client config, N's agent over its published HTTPS endpoint). Gathering is here;
// the report, the tables and the exit code are pure (debug/peers.ts).
import { readLabStates } from '../lab/lab.js';
import { flagHelp, parseArgs, UsageError, type Flags, type FlagSpecs } from '../flags/flags.js';
import { agentRequest, AgentRequestError } from './debug/agent.js';
import { colourEnabled, formatJson, painter, parseDebugOutput, UnreachableError } from './debug/output.js';
import { buildPeersReport, peersExitCode, renderPeers, renderRoutes, type AgentPeersAnswer, type NodeAnswer } from './debug/peers.js';
import { unknownName } from './debug/suggest.js';
import { DEFAULT_AGENT_SOCKET, resolveTarget, TARGET_FLAGS, type DebugTarget } from './debug/target.js';

const PEERS_FLAGS: FlagSpecs = {
  node: { type: 'string', help: 'only this node' },
  output: { type: 'string', alias: 'o', help: 'wide or json (default: a table)' },
  ...TARGET_FLAGS,
};

export const PEERS_USAGE = `usage: podwire peers [--node NAME] [--lab PREFIX] [-o wide|json]
       podwire routes [--node NAME] [--lab PREFIX] [-o wide|json]
  every peer of each node: its desired route (and for vxlan peers neighbour and FDB entry) vs the
  kernel's, each present / missing / stale; routes shows the route entries only
  exit 0 all present, 1 an entry is missing or stale (or a peer gets no route), 2 usage error,
  3 an agent cannot be reached
peers/routes flags:
${flagHelp(PEERS_FLAGS)}`;

async function ask(target: DebugTarget, node: string | undefined): Promise<NodeAnswer> {
  const label = node ?? 'this node';
  try {
    const answer = await agentRequest<AgentPeersAnswer>(target, node, 'GET', '/v1/debug/peers');
    if (!answer || !Array.isArray(answer.peers) || !Array.isArray(answer.unreachable)) {
      return { node: label, ok: false, reached: true, error: `the agent of ${label} gave no peer list (an older agent without /v1/debug/peers?)` };
    }
    return { node: answer.node ?? label, ok: true, answer };
  } catch (e) {
    if (e instanceof UnreachableError) return { node: label, ok: false, reached: false, error: e.message };
    if (e instanceof AgentRequestError) return { node: label, ok: false, reached: true, error: e.message };
    throw e;
  }
}

/** The nodes to ask: a lab's (all, or --node checked against them); on a real node the local agent. */
function nodesToAsk(target: DebugTarget, only: string | undefined, lab: string | undefined): (string | undefined)[] {
  if (target.labAgents) {
    const known = [...target.labAgents.keys()];
    if (only === undefined) return known;
    if (!known.includes(only)) throw new UsageError(`${unknownName('node', only, known)}; list them with: podwire status --lab ${lab}`);
    return [only];
  }
  return [only];
}

/**
 * The lab's target, or on a real node this machine's agent: peers needs no control plane, so it
 * works without a client config (connection flags are still checked against --lab). With a client
 * config, --node N of another node reaches that node's agent at its published HTTPS endpoint.
 */
function localOrLabTarget(flags: Flags): DebugTarget {
  if (flags.lab !== undefined || flags.node !== undefined) {
    try {
      return resolveTarget({ flags, env: process.env, labStates: readLabStates });
    } catch (e) {
      if (flags.lab !== undefined || !(e instanceof UsageError) || !/no API server configured/.test(e.message)) throw e;
    }
  }
  const localAgentSocket = (flags['agent-socket'] as string | undefined) ?? DEFAULT_AGENT_SOCKET;
  return { where: 'this machine', controlPlane: { server: '', serverSource: 'not used by peers / routes' }, localAgentSocket };
}

export async function peersCommand(argv: string[], view: 'peers' | 'routes' = 'peers'): Promise<number> {
  const { flags, positional } = parseArgs(argv, PEERS_FLAGS);
  if (positional.length) throw new UsageError(`${view} takes no arguments (got ${positional.join(' ')}); use --node NAME for one node`);
  const mode = parseDebugOutput(flags.output as string | undefined);
  const target = localOrLabTarget(flags);
  const nodes = nodesToAsk(target, flags.node as string | undefined, flags.lab as string | undefined);
  const answers = await Promise.all(nodes.map((n) => ask(target, n)));
  const only = flags.node as string | undefined;
  if (only !== undefined && !target.labAgents && answers[0]?.ok && answers[0].node !== only) {
    throw new UsageError(`this machine's agent serves node ${answers[0].node}, not ${JSON.stringify(only)}; run the command on ${only}'s machine, or drop --node`);
  }
  const report = buildPeersReport(answers);
  const paint = painter(colourEnabled(process.stdout, process.env));
  const render = view === 'routes' ? renderRoutes : renderPeers;
  console.log(mode === 'json' ? formatJson(report) : render(report, mode, paint));
  return peersExitCode(report);
}
