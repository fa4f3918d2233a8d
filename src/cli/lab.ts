// `podwire lab up|down|status`: the netns lab cluster (the main job).
import { Lab, leakCheck, readLabStates, teardownState, type LabAccess, type LabState } from '../lab/lab.js';
import { exportLines, exposeControlPlane } from '../lab/access.js';
import { createCluster, createEchoService, destroyCluster, type LabCluster } from '../lab/cluster.js';
import { clusterConnectivity, serviceConnectivity } from '../lab/cluster-probes.js';
import { formatTable, tableFor } from '../printers/tables.js';
import type { Endpoints } from '../api/objects.js';
import { BACKENDS, type Backend } from '../api/objects.js';
import { formatMatrix, runProbes, type Probe } from '../lab/connectivity.js';
import { validateLabPrefix } from '../lab/names.js';
import { listNetns } from '../netns/netns.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { labExec, LAB_EXEC_USAGE } from './lab-exec.js';

const UP_FLAGS: FlagSpecs = {
  nodes: { type: 'int', default: 3, min: 1, max: 64, help: 'number of nodes' },
  prefix: { type: 'string', help: 'name prefix of every netns, e.g. pw-demo- (default: random pw-XXXXXX-)' },
  backend: { type: 'enum', choices: BACKENDS, default: 'vxlan', help: 'overlay backend' },
  'pods-per-node': { type: 'int', default: 2, min: 1, max: 20, help: 'pods created with the CNI plugin on each node' },
  'proxy-mode': { type: 'enum', choices: ['nftables', 'iptables', 'ipvs'], default: 'nftables', help: 'the agents\' service proxy (ipvs: a kernel with IPVS, e.g. in scripts/kernel-vm)' },
  keep: { type: 'bool', help: 'leave the lab running; remove it later with `podwire lab down`' },
};
const DOWN_FLAGS: FlagSpecs = {
  prefix: { type: 'string', help: 'remove only the lab with this prefix (default: every recorded lab)' },
};

export const LAB_USAGE = `usage: podwire lab up [flags] | lab down [--prefix P] | lab status
${LAB_EXEC_USAGE}

lab up flags:
${flagHelp(UP_FLAGS)}`;

function printCluster(c: LabCluster): void {
  const lab = c.lab;
  console.log(`\nlab ${lab.prefix}  underlay netns ${lab.state.underlayNetns}  subnet ${lab.state.underlayCidr}`);
  console.log('NODE'.padEnd(10) + 'NETNS'.padEnd(24) + 'UNDERLAY'.padEnd(22) + 'PODS');
  for (const n of c.nodes) {
    const pods = c.pods.filter((p) => p.node === n.name).map((p) => `${p.name}=${p.ip}`);
    console.log(n.name.padEnd(10) + n.netns.padEnd(24) + `${n.underlayIf} ${n.underlayCidr}`.padEnd(22) + pods.join(' '));
  }
  console.log(`outside   ${c.outside.netns.padEnd(24)}${`${c.outside.underlayIf} ${c.outside.underlayCidr}`.padEnd(22)}(not a cluster node)`);
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
  const backend = flags.backend as Backend;
  const proxyMode = flags['proxy-mode'] as 'nftables' | 'iptables' | 'ipvs';
  const started = Date.now();
  console.log(`lab up: ${flags.nodes} nodes, backend ${backend}, proxy mode ${proxyMode}, ${flags['pods-per-node']} pods per node`);
  const cluster = await createCluster({
    nodes: flags.nodes as number,
    backend,
    podsPerNode: flags['pods-per-node'] as number,
    proxyMode,
    log: (line) => console.log(`  + ${line}`),
    ...(flags.prefix ? { prefix: flags.prefix as string } : {}),
  });
  let failed = 0;
  try {
    console.log(`lab up: cluster ready in ${Date.now() - started} ms`);
    printCluster(cluster);
    const underlay = cluster.nodes.length > 1 ? await runProbes(underlayProbes(cluster.lab)) : [];
    console.log(formatMatrix('underlay (node -> node, ICMP):', underlay) + '\n');
    const results = await clusterConnectivity(cluster);
    console.log(formatMatrix('pods (TCP :8080; pod -> pod keeps its source IP, pod -> outside is masqueraded to the node IP):', results) + '\n');
    const svc = await createEchoService(cluster);
    const eps = await cluster.admin.list<Endpoints>({ plural: 'endpoints', namespace: 'default' });
    console.log('$ podwire get services');
    console.log(formatTable(tableFor('Service', [svc], { wide: false, allNamespaces: false, now: Date.now(), endpoints: eps.items })) + '\n');
    const nodePort = svc.spec.ports![0]!.nodePort!;
    const services = await serviceConnectivity(cluster, svc.spec.clusterIP!, nodePort);
    console.log(formatMatrix(`service default/echo (ClusterIP ${svc.spec.clusterIP}:80, and by its name echo through the cluster DNS, from every pod; NodePort ${nodePort} on every node from the nodes and the outside host):`, services));
    const all = [...underlay, ...results, ...services];
    failed = all.filter((r) => !r.ok).length;
    // The job's verdict: every expected path of both matrices.
    console.log(`\nconnectivity: ${all.length - failed}/${all.length} ok`);
  } catch (err) {
    destroyCluster(cluster);
    throw err;
  }
  if (flags.keep) {
    let access: LabAccess;
    try {
      access = await exposeControlPlane(cluster.lab);
    } catch (err) {
      destroyCluster(cluster);
      throw err;
    }
    cluster.admin.close();
    cluster.lab.detach();
    console.log(`\nkept: lab ${cluster.lab.prefix} (state ${cluster.lab.statePath()}, files ${cluster.dir}); remove with: podwire lab down --prefix ${cluster.lab.prefix}`);
    console.log(`control plane from this shell: ${access.server} (a forwarder on 127.0.0.1, PID ${access.forwarderPid}, to the lab's unix socket); for kubectl and podwire:`);
    for (const line of exportLines(access)) console.log(line);
    return failed ? 1 : 0;
  }
  const leaks = destroyCluster(cluster);
  console.log(leaks.length ? `teardown: LEAKED ${leaks.join(', ')}` : `teardown: clean (no ${cluster.lab.prefix}* namespaces or processes left)`);
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
    case 'exec':
      return labExec(rest);
    default:
      throw new UsageError(sub ? `unknown lab command ${JSON.stringify(sub)}\n${LAB_USAGE}` : LAB_USAGE);
  }
}
