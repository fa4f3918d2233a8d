// `podwire services [NAME|NS/NAME] [--node N] [--lab PREFIX] [-o wide|json]`: each node's agent's
// GET /v1/debug/services (the services its proxy has, their endpoints and the DNAT counters of the
// live ruleset). In a lab every node's agent is asked and the counters are summed per endpoint;
// on a real node this machine's agent. Gathering is here; the report, the tables and the exit code
// are pure (debug/services.ts).
import { readLabStates } from '../lab/lab.js';
import { flagHelp, parseArgs, UsageError, type Flags, type FlagSpecs } from '../flags/flags.js';
import { agentRequest, AgentRequestError } from './debug/agent.js';
import { colourEnabled, formatJson, painter, parseDebugOutput, UnreachableError } from './debug/output.js';
import { buildServicesReport, parseServiceArg, renderServices, servicesExitCode, type AgentServicesAnswer, type ServicesNodeAnswer } from './debug/services.js';
import { unknownName } from './debug/suggest.js';
import { DEFAULT_AGENT_SOCKET, resolveTarget, TARGET_FLAGS, type DebugTarget } from './debug/target.js';

const SERVICES_FLAGS: FlagSpecs = {
  node: { type: 'string', help: 'only this node\'s proxy and counters' },
  output: { type: 'string', alias: 'o', help: 'wide (external/LB IPs, counts per node) or json (default: a table)' },
  ...TARGET_FLAGS,
};

export const SERVICES_USAGE = `usage: podwire services [NAME|NAMESPACE/NAME] [--node NAME] [--lab PREFIX] [-o wide|json]
  the services the nodes' proxies have (ClusterIPs, NodePorts, external and LB IPs), each port's
  endpoints and, per endpoint, the connections DNATed to it and their first packets' bytes, read
  from the live ruleset; in a lab without --node every node is asked and the counts are summed
  (-o wide: per node). A service without endpoints is listed and is not an error.
  exit 0 listed, 1 an agent could not read its counters, 2 usage error (an unknown service: close
  matches are named), 3 an agent cannot be reached
services flags:
${flagHelp(SERVICES_FLAGS)}`;

async function ask(target: DebugTarget, node: string | undefined, query: string): Promise<ServicesNodeAnswer> {
  const label = node ?? 'this node';
  try {
    const answer = await agentRequest<AgentServicesAnswer>(target, node, 'GET', `/v1/debug/services${query}`, undefined, 60_000);
    if (!answer || !Array.isArray(answer.services)) {
      return { node: label, ok: false, reached: true, error: `the agent of ${label} gave no service list (an older agent without /v1/debug/services?)` };
    }
    return { node: answer.node ?? label, ok: true, answer };
  } catch (e) {
    if (e instanceof UnreachableError) return { node: label, ok: false, reached: false, error: e.message };
    if (e instanceof AgentRequestError) {
      // The 404's body lists the services there are (AgentRequestError.body, the agent's error Status).
      const known = ((e as { body?: unknown }).body as { services?: unknown } | undefined)?.services;
      return { node: label, ok: false, reached: true, error: e.message, ...(e.code === 404 && Array.isArray(known) ? { known: known.filter((x): x is string => typeof x === 'string') } : {}) };
    }
    throw e;
  }
}

function localOrLabTarget(flags: Flags): DebugTarget {
  if (flags.lab !== undefined) return resolveTarget({ flags, env: process.env, labStates: readLabStates });
  const localAgentSocket = (flags['agent-socket'] as string | undefined) ?? DEFAULT_AGENT_SOCKET;
  return { where: 'this machine', controlPlane: { server: '', serverSource: 'not used by services' }, localAgentSocket };
}

function nodesToAsk(target: DebugTarget, only: string | undefined, lab: string | undefined): (string | undefined)[] {
  if (!target.labAgents) return [only];
  const known = [...target.labAgents.keys()];
  if (only === undefined) return known;
  if (!known.includes(only)) throw new UsageError(`${unknownName('node', only, known)}; list them with: podwire status --lab ${lab}`);
  return [only];
}

export async function servicesCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, SERVICES_FLAGS);
  if (positional.length > 1) throw new UsageError(`services takes at most one service (NAME or NAMESPACE/NAME), got ${positional.join(' ')}`);
  const query = parseServiceArg(positional[0]);
  const mode = parseDebugOutput(flags.output as string | undefined);
  const target = localOrLabTarget(flags);
  const nodes = nodesToAsk(target, flags.node as string | undefined, flags.lab as string | undefined);
  const qs = new URLSearchParams(Object.entries(query) as [string, string][]).toString();
  const answers = await Promise.all(nodes.map((n) => ask(target, n, qs ? `?${qs}` : '')));
  const only = flags.node as string | undefined;
  if (only !== undefined && !target.labAgents && answers[0]?.ok && answers[0].node !== only) {
    throw new UsageError(`this machine's agent serves node ${answers[0].node}, not ${JSON.stringify(only)}; run the command on ${only}'s machine, or drop --node`);
  }
  // A name no answering proxy has: a usage error naming the close ones.
  const notFound = answers.filter((a) => !a.ok && a.known !== undefined);
  if (query.name !== undefined && notFound.length > 0 && answers.every((a) => !a.ok && (a.known !== undefined || !a.reached))) {
    const known = [...new Set(notFound.flatMap((a) => (!a.ok ? a.known ?? [] : [])))].sort();
    const asked = query.namespace ? `${query.namespace}/${query.name}` : query.name;
    const candidates = query.namespace ? known : [...known, ...known.map((k) => k.split('/')[1]!)];
    throw new UsageError(`${unknownName('service', asked, [...new Set(candidates)])} in the proxies of ${notFound.map((a) => a.node).join(', ')}`);
  }
  const kept = answers.filter((a) => a.ok || a.known === undefined);
  const report = buildServicesReport(query, kept);
  const paint = painter(colourEnabled(process.stdout, process.env));
  console.log(mode === 'json' ? formatJson(report) : renderServices(report, mode, paint));
  return servicesExitCode(report);
}
