// `podwire lab up|down|status`: the netns lab cluster (the main job).
import { Lab, leakCheck, readLabStates, teardownState, type LabState } from '../lab/lab.js';
import { formatMatrix, runProbes, type Probe } from '../lab/connectivity.js';
import { validateLabPrefix } from '../lab/names.js';
import { listNetns } from '../netns/netns.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from './args.js';

const UP_FLAGS: FlagSpecs = {
  nodes: { type: 'int', default: 3, min: 1, max: 64, help: 'number of nodes' },
  prefix: { type: 'string', help: 'name prefix of every netns, e.g. pw-demo- (default: random pw-XXXXXX-)' },
  underlay: { type: 'string', default: '192.0.2.0/24', help: 'underlay subnet of the nodes' },
  keep: { type: 'bool', help: 'leave the lab running; remove it later with `podwire lab down`' },
};
const DOWN_FLAGS: FlagSpecs = {
  prefix: { type: 'string', help: 'remove only the lab with this prefix (default: every recorded lab)' },
};

export const LAB_USAGE = `usage: podwire lab up [flags] | lab down [--prefix P] | lab status

lab up flags:
${flagHelp(UP_FLAGS)}`;

function printState(lab: Lab): void {
  console.log(`\nlab ${lab.prefix}  underlay netns ${lab.state.underlayNetns}  subnet ${lab.state.underlayCidr}`);
  console.log('NODE'.padEnd(10) + 'NETNS'.padEnd(24) + 'UNDERLAY'.padEnd(20) + 'MAC');
  for (const n of lab.nodes) {
    console.log(n.name.padEnd(10) + n.netns.padEnd(24) + `${n.underlayIf} ${n.underlayCidr}`.padEnd(20) + n.mac);
  }
  console.log('');
}

function underlayProbes(lab: Lab): Probe[] {
  return lab.nodes.flatMap((from) =>
    lab.nodes.filter((to) => to !== from).map((to) => ({ from: from.name, fromNetns: from.netns, to: to.name, toIp: to.underlayIp, kind: 'ping' as const })),
  );
}

async function labUp(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, UP_FLAGS);
  if (positional.length) throw new UsageError(`lab up takes no arguments (got ${positional.join(' ')})`);
  const started = Date.now();
  const lab = Lab.create({
    nodes: flags.nodes as number,
    underlayCidr: flags.underlay as string,
    log: (line) => console.log(`  + ${line}`),
    ...(flags.prefix ? { prefix: flags.prefix as string } : {}),
  });
  let failed = 0;
  try {
    console.log(`lab up: ${lab.nodes.length} nodes in ${Date.now() - started} ms`);
    printState(lab);
    const results = lab.nodes.length > 1 ? await runProbes(underlayProbes(lab)) : [];
    failed = results.filter((r) => !r.ok).length;
    console.log(formatMatrix('underlay (node -> node, ICMP):', results));
  } catch (err) {
    lab.destroy();
    throw err;
  }
  if (flags.keep) {
    lab.detach();
    console.log(`\nkept: lab ${lab.prefix} (state ${lab.statePath()}); remove with: podwire lab down --prefix ${lab.prefix}`);
    return failed ? 1 : 0;
  }
  const leaks = lab.destroy();
  console.log(leaks.length ? `teardown: LEAKED ${leaks.join(', ')}` : `teardown: clean (no ${lab.prefix}* namespaces left)`);
  return failed || leaks.length ? 1 : 0;
}

function labDown(argv: string[]): number {
  const { flags, positional } = parseArgs(argv, DOWN_FLAGS);
  if (positional.length) throw new UsageError(`lab down takes no arguments (got ${positional.join(' ')})`);
  const prefix = flags.prefix as string | undefined;
  if (prefix) validateLabPrefix(prefix);
  const states = readLabStates().filter((s) => !prefix || s.prefix === prefix);
  if (prefix && states.length === 0) {
    // No state file (e.g. the process was killed -9): the namespaces carry the prefix.
    states.push({ prefix, underlayNetns: '', underlayCidr: '', nodes: [], procs: [], createdAt: '' } as LabState);
  }
  let leaked = 0;
  for (const s of states) {
    teardownState(s);
    const leaks = leakCheck(s);
    leaked += leaks.length;
    console.log(leaks.length ? `lab ${s.prefix}: LEAKED ${leaks.join(', ')}` : `lab ${s.prefix}: removed`);
  }
  if (states.length === 0) console.log('no lab recorded under /run/podwire/lab');
  return leaked ? 1 : 0;
}

function labStatus(): number {
  const states = readLabStates();
  if (states.length === 0) console.log('no lab recorded under /run/podwire/lab');
  const present = new Set(listNetns());
  for (const s of states) {
    const nodes = s.nodes.map((n) => `${n.name}=${n.underlayIp}${present.has(n.netns) ? '' : ' (netns missing)'}`);
    console.log(`lab ${s.prefix} created ${s.createdAt}: ${nodes.join(', ')}`);
  }
  return 0;
}

export async function labCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'up':
      return labUp(rest);
    case 'down':
      return labDown(rest);
    case 'status':
      return labStatus();
    default:
      throw new UsageError(sub ? `unknown lab command ${JSON.stringify(sub)}\n${LAB_USAGE}` : LAB_USAGE);
  }
}
