// `podwire lab exec [--lab PREFIX] POD -- CMD [ARGS...]`: run a command inside a lab pod's netns
// (the Pod's podwire.io/netns annotation, as the CNI plugin recorded it), stdio inherited, with
// the command's exit code. The pod is looked up through the lab's control plane. A named netns is
// entered as `ip netns exec` does: the command sees the pod's /etc/netns/NETNS/resolv.conf.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiClient, ApiClientError } from '../client/api-client.js';
import type { Pod } from '../api/objects.js';
import { readLabStates, type LabState } from '../lab/lab.js';
import { spawnInNetns } from '../netns/exec.js';
import { parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { UnreachableError } from './debug/output.js';
import { resolveName } from './debug/resolve.js';
import { findLab, labTarget } from './debug/target.js';

export const NETNS_ANNOTATION = 'podwire.io/netns';

const EXEC_FLAGS: FlagSpecs = {
  lab: { type: 'string', help: 'the lab prefix (optional when exactly one lab is recorded)' },
};

export const LAB_EXEC_USAGE = `       podwire lab exec [--lab PREFIX] POD -- CMD [ARGS...]   (run CMD in the pod's netns; exits with its code)`;

/** `argv` split at the first "--": the flags and POD before it, the command after it. */
export function splitExecArgs(argv: string[]): { before: string[]; command: string[] } {
  const i = argv.indexOf('--');
  if (i < 0) throw new UsageError(`lab exec needs -- before the command\nusage:\n${LAB_EXEC_USAGE}`);
  const command = argv.slice(i + 1);
  if (command.length === 0) throw new UsageError(`lab exec: no command after --\nusage:\n${LAB_EXEC_USAGE}`);
  return { before: argv.slice(0, i), command };
}

/** The lab to use: --lab's, else the only recorded one; several and no --lab is a usage error listing them. */
export function pickLab(prefix: string | undefined, states: LabState[]): LabState {
  if (prefix !== undefined) return findLab(prefix, states);
  if (states.length === 1) return states[0]!;
  if (states.length === 0) throw new UsageError('no lab is recorded under /run/podwire/lab; keep one with: podwire lab up --keep');
  throw new UsageError(`${states.length} labs are recorded (${states.map((s) => s.prefix).join(', ')}); pick one with --lab PREFIX`);
}

export async function labExec(argv: string[]): Promise<number> {
  const { before, command } = splitExecArgs(argv);
  const { flags, positional } = parseArgs(before, EXEC_FLAGS);
  if (positional.length !== 1) throw new UsageError(`lab exec takes one POD before -- (got ${positional.length ? positional.join(' ') : 'none'})\nusage:\n${LAB_EXEC_USAGE}`);
  const target = labTarget(pickLab(flags.lab as string | undefined, readLabStates()));
  const client = new ApiClient({ ...target.controlPlane, timeoutMs: 5000 });
  let pods: Pod[];
  try {
    pods = (await client.list<Pod>({ plural: 'pods' })).items;
  } catch (e) {
    if (e instanceof ApiClientError && e.code > 0) throw new UnreachableError(`${target.where}: the control plane answered ${e.code}: ${e.message}`);
    throw new UnreachableError(`${target.where}: cannot reach the control plane: ${(e as Error).message}; is the lab still there (podwire lab status)?`);
  } finally {
    client.close();
  }
  const pod = resolveName(positional[0]!, { pods, nodes: [], services: [] }, ['pod']);
  if (pod.kind !== 'pod') throw new UsageError(`${positional[0]} is not a pod`);
  const netns = pod.pod.metadata.annotations?.[NETNS_ANNOTATION];
  if (!netns) throw new UsageError(`pod ${pod.namespace}/${pod.name} has no ${NETNS_ANNOTATION} annotation (not created by the podwire CNI plugin?)`);
  if (!fs.existsSync(netns)) throw new UsageError(`pod ${pod.namespace}/${pod.name}: its netns ${netns} (${NETNS_ANNOTATION}) does not exist any more`);
  const child = spawnInPod(netns, command);
  if (!child) {
    process.stderr.write(`podwire: lab exec ${command[0]} in pod ${pod.namespace}/${pod.name}: command not found\n`);
    return 127;
  }
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`podwire: lab exec ${command[0]} in pod ${pod.namespace}/${pod.name}: ${err.message}\n`);
      resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? (osSignal(signal) ?? 1) : 1)));
  });
}

const osSignal = (s: NodeJS.Signals): number | undefined => os.constants.signals[s];

/**
 * A named netns (/run/netns/NAME) is entered as `ip netns exec NAME` does, so the command sees the
 * pod's own /etc/netns/NAME files (its resolv.conf) bind-mounted over /etc; any other netns path
 * by setns alone. Undefined when the command is not found (ip would exit 255 for it, not 127).
 */
function spawnInPod(netns: string, command: string[]): ChildProcess | undefined {
  const named = /^\/run\/netns\/([A-Za-z0-9_.-]+)$/.exec(netns)?.[1];
  if (named === undefined || named === '.' || named === '..') return spawnInNetns(netns, command[0]!, command.slice(1), { stdio: 'inherit' });
  if (!onPath(command[0]!)) return undefined;
  return spawn('ip', ['netns', 'exec', named, ...command], { stdio: 'inherit' });
}

function onPath(cmd: string): boolean {
  const executable = (file: string): boolean => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return executable(cmd);
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean).some((dir) => executable(path.join(dir, cmd)));
}
