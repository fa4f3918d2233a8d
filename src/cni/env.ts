// The runtime's side of the call: CNI_* environment variables (SPEC.md "Parameters"), validated
// before anything is touched. The container-ID and interface-name rules are src/netlink/names.ts
// (libcni's ValidateContainerID and ValidateInterfaceName, plus what podwire can write).
import { CONTAINER_ID_RULE, IFNAME_RULE, containerIdProblem, ifnameProblem } from '../netlink/names.js';
import { CniError, CNI_ERR } from './errors.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
const COMMANDS: CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Path of the container netns; may be empty for DEL (the runtime may have removed it). */
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs, in order. */
  args: Map<string, string>;
  /** CNI_PATH split on ':' (empty entries dropped). */
  path: string[];
}

export function validateContainerId(id: string, where = 'CNI_CONTAINERID'): void {
  const problem = containerIdProblem(id);
  if (problem) throw new CniError(CNI_ERR.INVALID_ENV, `invalid ${where} ${JSON.stringify(id.slice(0, 80))}: ${problem}`, CONTAINER_ID_RULE);
}

export function validateIfname(name: string, where = 'CNI_IFNAME'): void {
  const problem = ifnameProblem(name);
  if (problem) throw new CniError(CNI_ERR.INVALID_ENV, `invalid ${where} ${JSON.stringify(name.slice(0, 80))}: ${problem}`, IFNAME_RULE);
}

/** CNI_ARGS: "K1=V1;K2=V2" (SPEC.md); keys and values must be non-empty printable text. */
export function parseCniArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (text === '') return out;
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (eq <= 0 || /[\0\n]/.test(pair)) {
      throw new CniError(CNI_ERR.INVALID_ENV, `invalid CNI_ARGS entry ${JSON.stringify(pair.slice(0, 80))}`,
        'CNI_ARGS is a ";"-separated list of KEY=VALUE pairs');
    }
    out.set(key, value);
  }
  return out;
}

const REQUIRED: Record<CniCommand, Array<'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_PATH'>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!COMMANDS.includes(command as CniCommand)) {
    throw new CniError(CNI_ERR.INVALID_ENV, `invalid CNI_COMMAND ${JSON.stringify(command.slice(0, 40))}`,
      `expected one of ${COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  for (const key of REQUIRED[cmd]) {
    if (!env[key]) throw new CniError(CNI_ERR.INVALID_ENV, `${key} is required for ${cmd}`, `the runtime must set ${key}`);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  const netns = env.CNI_NETNS ?? '';
  if (REQUIRED[cmd].includes('CNI_CONTAINERID')) validateContainerId(containerId);
  if (REQUIRED[cmd].includes('CNI_IFNAME')) validateIfname(ifname);
  // Only commands about one attachment look at CNI_NETNS (libcni sends "dummy" with VERSION).
  const usesNetns = cmd === 'ADD' || cmd === 'CHECK' || cmd === 'DEL';
  if (usesNetns && netns && (!netns.startsWith('/') || netns.includes('\0'))) {
    throw new CniError(CNI_ERR.INVALID_ENV, `invalid CNI_NETNS ${JSON.stringify(netns.slice(0, 120))}`, 'CNI_NETNS must be an absolute path to a network namespace');
  }
  return {
    command: cmd,
    containerId,
    netns,
    ifname,
    args: parseCniArgs(env.CNI_ARGS ?? ''),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
}
