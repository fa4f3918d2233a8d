// `podwire doctor [--node N] [--lab PREFIX | connection flags] [-o json]`: each node's agent runs
// the node checks in its netns (GET /v1/debug/doctor); this file asks them and the control plane,
// and the pure report (debug/doctor.ts) adds agent-down, controlplane-unreachable and the control
// plane's side of podcidr-mismatch. Every finding comes with its fix.
import { ApiClient, ApiClientError } from '../client/api-client.js';
import type { Node } from '../api/objects.js';
import { readLabStates } from '../lab/lab.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { agentRequest, AgentRequestError } from './debug/agent.js';
import { colourEnabled, formatJson, painter, parseDebugOutput, UnreachableError } from './debug/output.js';
import { unknownName } from './debug/suggest.js';
import { resolveTarget, TARGET_FLAGS, type DebugTarget } from './debug/target.js';
import { buildDoctorReport, doctorExitCode, renderDoctor, type DoctorAgentAnswer, type DoctorAgentView, type DoctorInput } from './debug/doctor.js';

const DOCTOR_FLAGS: FlagSpecs = {
  node: { type: 'string', help: 'only this node' },
  output: { type: 'string', alias: 'o', help: 'json (default: findings with their fixes)' },
  ...TARGET_FLAGS,
};

export const DOCTOR_USAGE = `usage: podwire doctor [--node NAME] [--lab PREFIX] [-o json]
  checks each node (forwarding, rp_filter, br_netfilter, MTUs, routes/neighbours/FDB, our nftables
  table, podCIDR, CNI configs, IPAM leaks, agent and control plane) and says how to fix what it finds
  exit 0 no error finding, 1 an error finding, 2 usage error, 3 nothing could be reached
doctor flags:
${flagHelp(DOCTOR_FLAGS)}`;

async function controlPlaneNodes(client: ApiClient, target: DebugTarget): Promise<{ cp: DoctorInput['controlPlane']; nodes?: Node[] }> {
  const server = target.controlPlane.socketPath ? `unix:${target.controlPlane.socketPath}` : target.controlPlane.server;
  try {
    const nodes = (await client.list<Node>({ plural: 'nodes' })).items;
    return { cp: { server, reachable: true }, nodes };
  } catch (e) {
    const why = e instanceof ApiClientError && e.code > 0 ? `answered ${e.code}: ${e.message}` : `${(e as Error).message} (from ${target.controlPlane.serverSource})`;
    return { cp: { server, reachable: false, error: why } };
  }
}

async function askAgent(target: DebugTarget, node: string | undefined): Promise<DoctorAgentAnswer> {
  try {
    return { ok: true, answer: await agentRequest<DoctorAgentView>(target, node, 'GET', '/v1/debug/doctor', undefined, 15_000) };
  } catch (e) {
    // agentRequest's message names the agent already; the finding does too.
    if (e instanceof UnreachableError || e instanceof AgentRequestError) return { ok: false, error: e.message.replace(/^cannot reach the agent of [^:]+: /, '') };
    throw e;
  }
}

export async function doctorCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, DOCTOR_FLAGS);
  if (positional.length) throw new UsageError(`doctor takes no arguments (got ${positional.join(' ')}); use --node NAME for one node`);
  const mode = parseDebugOutput(flags.output as string | undefined);
  if (mode === 'wide') throw new UsageError('doctor has no -o wide; use -o json or the default output');
  const target = resolveTarget({ flags, env: process.env, labStates: readLabStates });
  const statusCommand = `podwire status${flags.lab ? ` --lab ${flags.lab}` : ''}`;
  const client = new ApiClient({ ...target.controlPlane, timeoutMs: 5000 });
  try {
    const { cp, nodes: cpNodes } = await controlPlaneNodes(client, target);
    const podCidrOf = new Map((cpNodes ?? []).map((n) => [n.metadata.name, n.spec.podCIDR]));
    const known = cpNodes ? cpNodes.map((n) => n.metadata.name) : [...(target.labAgents?.keys() ?? [])];
    const only = flags.node as string | undefined;
    if (only !== undefined && (cp.reachable || target.labAgents) && !known.includes(only)) {
      throw new UsageError(`${unknownName('node', only, known)}; list them with: ${statusCommand}`);
    }
    const agents = new Map<string, DoctorAgentAnswer>();
    let names: string[];
    if (target.labAgents) {
      names = only !== undefined ? [only] : [...new Set([...known, ...target.labAgents.keys()])].sort();
      await Promise.all(names.map(async (n) => agents.set(n, target.labAgents!.has(n) ? await askAgent(target, n) : { ok: false, error: `node ${n} is not in lab ${flags.lab}` })));
    } else if (only !== undefined && cp.reachable) {
      // A real node, --node N: that node's agent, this machine's over its socket, another one's
      // over the HTTPS endpoint its Node publishes (debug/agent.ts).
      names = [only];
      agents.set(only, await askAgent(target, only));
    } else {
      // A real node: this machine's agent.
      const local = await askAgent(target, undefined);
      const name = local.ok ? local.answer.node : only ?? target.localNodeName ?? 'this node';
      if (only !== undefined && name !== only) throw new UnreachableError(`the agent of node ${only} is on another machine (this machine's agent serves ${name}); run podwire doctor there`);
      names = [name];
      agents.set(name, local);
    }
    const input: DoctorInput = {
      where: target.where,
      controlPlane: cp,
      nodes: names.map((name) => ({ name, ...(podCidrOf.get(name) ? { podCidr: podCidrOf.get(name)! } : {}) })),
      agents,
      statusCommand,
    };
    const report = buildDoctorReport(input);
    const paint = painter(colourEnabled(process.stdout, process.env));
    console.log(mode === 'json' ? formatJson(report) : renderDoctor(report, mode, paint));
    return doctorExitCode(report, input);
  } finally {
    client.close();
  }
}
