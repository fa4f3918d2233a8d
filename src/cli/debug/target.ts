// Where a debugging command finds what it talks to. With --lab PREFIX: the kept lab's recorded
// state (/run/podwire/lab/PREFIX.json) and its files (src/lab/cluster.ts clusterFiles): the control
// plane over its unix socket with the lab's admin token, and every node's agent over its socket.
// The agents are reached as on a real cluster, over the HTTPS endpoint each Node publishes, the
// TCP stream through the lab's underlay forwarder (a unix socket per node: a file path, so the CLI
// reaches it from the root netns without entering a node netns). Without --lab (a real node): the
// API server from the usual client config (client-config.ts), this machine's agent at
// --agent-socket (default /run/podwire/agent.sock), and every other node's agent at its published
// HTTPS endpoint (agent.ts, agent-https.ts).
import fs from 'node:fs';
import os from 'node:os';
import type { LabState } from '../../lab/lab.js';
import { clusterFiles, recordedAgentProc } from '../../lab/cluster.js';
import { UsageError, type FlagSpecs, type Flags } from '../../flags/flags.js';
import { CONNECTION_FLAGS, resolveClientConfig, type ConnectionFlags, type ResolvedClient } from '../client-config.js';
import { UnreachableError } from './output.js';
import { unknownName } from './suggest.js';

export const DEFAULT_AGENT_SOCKET = '/run/podwire/agent.sock';

export const TARGET_FLAGS: FlagSpecs = {
  lab: { type: 'string', help: 'the prefix of a kept lab (podwire lab up --keep), e.g. pw-3fa9c1-' },
  'agent-socket': { type: 'string', help: `this node's agent socket (default ${DEFAULT_AGENT_SOCKET}; not with --lab)` },
  ...CONNECTION_FLAGS,
};

export interface AgentEndpoint {
  node: string;
  socket: string;
  /** In a lab: the underlay forwarder's unix socket to the agent's HTTPS endpoint (NODEIP:10262). */
  httpsSocket?: string;
  /** In a lab: the node's netns and the agent's PID as recorded. */
  netns?: string;
  pid?: number;
}

export interface DebugTarget {
  /** "lab pw-3fa9c1-" or "this machine": for messages. */
  where: string;
  controlPlane: ResolvedClient;
  /** lab: every node's agent, by node name. */
  labAgents?: Map<string, AgentEndpoint>;
  /** A real node: this machine's agent (its node name comes from its own /v1/status). */
  localAgentSocket?: string;
  /** A real node: the node this machine's agent serves, once known (its /v1/status nodeName). */
  localNodeName?: string;
}

/** A lab's prefix as typed ("pw-abc", "pw-abc-"): the trailing dash is optional. */
const normalPrefix = (p: string) => (p.endsWith('-') ? p : `${p}-`);

/** The lab with this prefix among the recorded ones; an unknown prefix is a usage error naming the close ones. */
export function findLab(prefix: string, states: LabState[]): LabState {
  const want = normalPrefix(prefix);
  const state = states.find((s) => s.prefix === want);
  if (state) return state;
  throw new UsageError(`${unknownName('lab', prefix, states.map((s) => s.prefix), 'no lab is recorded under /run/podwire/lab; keep one with: podwire lab up --keep')}`);
}

/** The target of a kept lab: pure but for the admin token file, read through `readFile`. */
export function labTarget(state: LabState, readFile: (file: string) => string = (f) => fs.readFileSync(f, 'utf8')): DebugTarget {
  const files = clusterFiles(state.prefix);
  let token: string;
  try {
    token = readFile(files.adminTokenFile).trim();
  } catch (e) {
    throw new UnreachableError(`lab ${state.prefix}: cannot read its admin token ${files.adminTokenFile} (${(e as Error).message}); is it a cluster lab (podwire lab up --keep), and still there (podwire lab status)?`);
  }
  const labAgents = new Map<string, AgentEndpoint>();
  for (const n of state.nodes) {
    const pid = recordedAgentProc(state, n.name)?.pid;
    labAgents.set(n.name, { node: n.name, socket: files.agentSocket(n.name), httpsSocket: files.agentHttpsSocket(n.name), netns: n.netns, ...(pid !== undefined ? { pid } : {}) });
  }
  return {
    where: `lab ${state.prefix}`,
    controlPlane: { server: 'http://podwire-controlplane', socketPath: files.controlPlaneSocket, token, serverSource: `lab ${state.prefix} (unix socket ${files.controlPlaneSocket})` },
    labAgents,
  };
}

export interface TargetInput {
  flags: Flags;
  env: Record<string, string | undefined>;
  home?: string;
  /** The recorded labs (readLabStates); only read with --lab. */
  labStates: () => LabState[];
}

export function resolveTarget(input: TargetInput): DebugTarget {
  const lab = input.flags.lab as string | undefined;
  if (lab !== undefined) {
    const clash = ['server', 'token', 'token-file', 'ca-file', 'config', 'agent-socket'].filter((f) => input.flags[f] !== undefined);
    if (clash.length) throw new UsageError(`--lab finds the lab's control plane and agents itself; drop ${clash.map((f) => `--${f}`).join(', ')}`);
    return labTarget(findLab(lab, input.labStates()));
  }
  const controlPlane = resolveClientConfig({ flags: input.flags as ConnectionFlags, env: input.env, home: input.home ?? os.homedir() });
  return { where: 'this machine', controlPlane, localAgentSocket: (input.flags['agent-socket'] as string | undefined) ?? DEFAULT_AGENT_SOCKET };
}
