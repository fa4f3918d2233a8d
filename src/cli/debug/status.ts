// `podwire status`, pure: from what the control plane and each agent said, the report (its JSON
// is -o json, documented in src/cli/README.md), its table, and the exit code.
import { NODE_ANNOTATIONS, type Node, type Pod } from '../../api/objects.js';
import { humanDuration, nodeInternalIp } from '../../printers/tables.js';
import type { AgentAnswer } from './agent.js';
import { EXIT, painter, renderTable, type Cell, type DebugOutput, type Paint } from './output.js';

export interface StatusInput {
  where: string;
  controlPlane: { server: string; reachable: boolean; version?: string; error?: string };
  /** The control plane's Nodes; when it cannot be reached, just the names the target knows (a lab's). */
  nodes: { name: string; node?: Node }[];
  /** The control plane's Pods (undefined when it could not be listed). */
  pods?: Pod[];
  /** Each node's agent: its answer, or undefined when this machine cannot reach that agent. */
  agents: Map<string, AgentAnswer | undefined>;
}

export interface AgentReport {
  state: 'up' | 'down' | 'unknown';
  error: string | null;
  controlPlane: 'connected' | 'unreachable' | null;
  peers: number | null;
  network: { lastSyncAt: string | null; durationMs: number | null; steps: number; errors: string[]; routes: number | null; neighbours: number | null; fdb: number | null } | null;
  proxy: { mode: string; lastSyncAt: string | null; durationMs: number | null; error: string | null; services: number; servicePorts: number; endpoints: number } | null;
  memoryMB: number | null;
  uptimeS: number | null;
  outOfSync: string[] | null;
  /** The agent's cluster DNS: serving = listed and listening on the cluster DNS address and the gateway. */
  dns: { serving: boolean; listening: string[]; upstreams: string[]; error: string | null } | null;
}

export interface NodeReport {
  name: string;
  podCidr: string | null;
  internalIp: string | null;
  backend: string | null;
  networkReady: boolean | null;
  pods: number | null;
  agent: AgentReport;
  problems: string[];
}

export interface StatusReport {
  where: string;
  controlPlane: { server: string; reachable: boolean; version: string | null; error: string | null };
  nodes: NodeReport[];
  summary: { nodes: number; agentsUp: number; agentsDown: number; agentsUnknown: number; problems: number };
  healthy: boolean;
}

const NO_AGENT: Omit<AgentReport, 'state' | 'error'> = { controlPlane: null, peers: null, network: null, proxy: null, memoryMB: null, uptimeS: null, outOfSync: null, dns: null };

function agentReport(answer: AgentAnswer | undefined): AgentReport {
  if (answer === undefined) return { state: 'unknown', error: 'not reachable from this machine (run podwire status on that node)', ...NO_AGENT };
  if (!answer.ok) return { state: 'down', error: answer.error, ...NO_AGENT };
  const s = answer.status;
  const ls = s.lastSync;
  const px = s.proxy;
  return {
    state: 'up',
    error: null,
    controlPlane: s.controlPlane,
    peers: s.peers.length,
    network: { lastSyncAt: ls?.at ?? null, durationMs: ls?.ms ?? null, steps: ls?.steps.length ?? 0, errors: ls?.errors ?? [], routes: ls?.objects?.routes ?? null, neighbours: ls?.objects?.neighbours ?? null, fdb: ls?.objects?.fdb ?? null },
    proxy: px ? { mode: px.mode, lastSyncAt: px.lastSync?.at ?? null, durationMs: px.lastSync?.ms ?? null, error: px.lastSync?.error ?? null, services: px.services, servicePorts: px.servicePorts, endpoints: px.endpoints } : null,
    memoryMB: s.process?.rssMB ?? null,
    uptimeS: s.process?.uptimeS ?? null,
    outOfSync: s.outOfSync ?? (s.outOfSyncError !== undefined ? [`(could not compare: ${s.outOfSyncError})`] : null),
    dns: s.dns ? { serving: s.dns.synced && [s.dns.clusterDns, s.dns.gateway].every((h) => s.dns!.listening.some((l) => l.startsWith(`${h}:`))), listening: s.dns.listening, upstreams: s.dns.upstreams, error: s.dns.error ?? null } : null,
  };
}

function networkReady(node: Node | undefined): boolean | null {
  const c = node?.status?.conditions?.find((x) => x.type === 'NetworkUnavailable');
  return c ? c.status === 'False' : null;
}

function problemsOf(n: Omit<NodeReport, 'problems'>, node: Node | undefined, answer: AgentAnswer | undefined): string[] {
  const out: string[] = [];
  const a = n.agent;
  if (node && !n.podCidr) out.push('the control plane has no podCIDR for this node');
  if (a.state === 'down') out.push(`agent down: ${a.error}; check its log and restart it`);
  if (answer?.ok) {
    const agentCidr = answer.status.podCidr;
    if (agentCidr && n.podCidr && agentCidr !== n.podCidr) out.push(`the agent uses podCIDR ${agentCidr}, the control plane says ${n.podCidr}`);
    if (a.controlPlane === 'unreachable') out.push('the agent cannot reach the control plane (it keeps the last state it synced)');
    if (a.network && a.network.lastSyncAt === null) out.push('the agent has not synced the network yet');
    if (a.network && a.network.errors.length) out.push(`last network sync failed: ${a.network.errors.join('; ')}`);
    if (a.proxy?.error) out.push(`last proxy sync failed: ${a.proxy.error}`);
    if (a.dns && !a.dns.serving) out.push(`cluster DNS not serving (listening: ${a.dns.listening.join(', ') || 'nothing'})${a.dns.error ? `: ${a.dns.error}` : ''}; its pods are answered by other nodes; see podwire doctor`);
    if (a.outOfSync && a.outOfSync.length) out.push(`network out of sync: ${a.outOfSync.length} step(s) pending: ${a.outOfSync.slice(0, 3).join('; ')}${a.outOfSync.length > 3 ? '; …' : ''}`);
  }
  if (n.networkReady === false && !(a.network && a.network.errors.length)) {
    const c = node?.status?.conditions?.find((x) => x.type === 'NetworkUnavailable');
    out.push(`node reports NetworkUnavailable${c?.message ? `: ${c.message}` : ''}`);
  }
  return out;
}

export function buildStatusReport(input: StatusInput): StatusReport {
  const nodes = input.nodes.map(({ name, node }): NodeReport => {
    const answer = input.agents.get(name);
    const agent = agentReport(answer);
    const partial = {
      name,
      podCidr: node?.spec.podCIDR ?? null,
      internalIp: (node && nodeInternalIp(node)) ?? null,
      backend: node?.metadata.annotations?.[NODE_ANNOTATIONS.backend] ?? (answer?.ok ? answer.status.backend ?? null : null),
      networkReady: networkReady(node),
      pods: input.pods ? input.pods.filter((p) => p.spec.nodeName === name).length : null,
      agent,
    };
    return { ...partial, problems: problemsOf(partial, node, answer) };
  });
  const count = (state: AgentReport['state']) => nodes.filter((n) => n.agent.state === state).length;
  const problems = nodes.reduce((k, n) => k + n.problems.length, 0);
  const cp = input.controlPlane;
  return {
    where: input.where,
    controlPlane: { server: cp.server, reachable: cp.reachable, version: cp.version ?? null, error: cp.error ?? null },
    nodes,
    summary: { nodes: nodes.length, agentsUp: count('up'), agentsDown: count('down'), agentsUnknown: count('unknown'), problems },
    healthy: cp.reachable && problems === 0,
  };
}

/** 3 when the control plane cannot be reached, 1 when any node has a problem, else 0. */
export function statusExitCode(r: StatusReport): number {
  if (!r.controlPlane.reachable) return EXIT.UNREACHABLE;
  return r.summary.problems > 0 ? EXIT.PROBLEM : EXIT.OK;
}

const dash = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : String(v));
const ago = (at: string | null, now: number): string => (at === null ? '-' : `${humanDuration(now - Date.parse(at))} ago`);

function nodeRow(n: NodeReport, wide: boolean, now: number): Cell[] {
  const a = n.agent;
  const agentCell: Cell = { text: a.state, style: a.state === 'up' ? 'ok' : a.state === 'down' ? 'bad' : 'warn' };
  const syncFailed = (a.network?.errors.length ?? 0) > 0 || !!a.proxy?.error;
  const row: Cell[] = [
    n.name,
    dash(n.podCidr),
    dash(n.backend),
    agentCell,
    { text: ago(a.network?.lastSyncAt ?? null, now), ...(syncFailed ? { style: 'bad' as const } : {}) },
    a.network?.durationMs != null ? `${a.network.durationMs}ms` : '-',
    dash(a.peers),
    dash(n.pods),
    dash(a.proxy?.services),
    a.memoryMB !== null ? `${a.memoryMB}MB` : '-',
  ];
  if (wide) {
    const objects = a.network && a.network.routes !== null ? `${a.network.routes}/${a.network.neighbours}/${a.network.fdb}` : '-';
    const proxy = a.proxy ? `${a.proxy.mode} ${a.proxy.servicePorts}p/${a.proxy.endpoints}e ${a.proxy.durationMs ?? '-'}ms` : '-';
    const dns = a.dns ? (a.dns.serving ? 'serving' : 'DOWN') : '-';
    row.push(dash(n.internalIp), objects, proxy, dns, a.uptimeS !== null ? humanDuration(a.uptimeS * 1000) : '-');
  }
  row.push(n.problems.length ? { text: String(n.problems.length), style: 'bad' } : { text: '0', style: 'ok' });
  return row;
}

export function summaryLine(r: StatusReport): string {
  const s = r.summary;
  const agents = [`${s.agentsUp} up`, ...(s.agentsDown ? [`${s.agentsDown} down`] : []), ...(s.agentsUnknown ? [`${s.agentsUnknown} not reachable from here`] : [])].join(', ');
  const verdict = !r.controlPlane.reachable ? 'control plane unreachable' : s.problems === 0 ? 'healthy' : `${s.problems} problem${s.problems === 1 ? '' : 's'}`;
  return `${s.nodes} node${s.nodes === 1 ? '' : 's'}, agents ${agents}: ${verdict}`;
}

/** The human output (table or wide). `now` for the "ago" column; `paint` colours it. */
export function renderStatus(r: StatusReport, mode: Exclude<DebugOutput, 'json'>, now: number, paint: Paint = painter(false)): string {
  const wide = mode === 'wide';
  const cp = r.controlPlane;
  const cpLine = cp.reachable ? `${paint('ok', 'reachable')}${cp.version ? ` (${cp.version})` : ''}` : `${paint('bad', 'UNREACHABLE')}: ${cp.error ?? ''}`;
  const headers = ['NODE', 'PODCIDR', 'BACKEND', 'AGENT', 'LAST SYNC', 'DURATION', 'PEERS', 'PODS', 'SERVICES', 'MEMORY', ...(wide ? ['INTERNAL-IP', 'ROUTES/NEIGH/FDB', 'PROXY', 'DNS', 'UPTIME'] : []), 'PROBLEMS'];
  const lines = [`${r.where}: control plane ${cp.server} ${cpLine}`, '', renderTable(headers, r.nodes.map((n) => nodeRow(n, wide, now)), paint)];
  const problems = r.nodes.flatMap((n) => n.problems.map((p) => `  ${n.name}: ${p}`));
  if (problems.length) lines.push('', paint('bad', 'problems:'), ...problems);
  if (wide) {
    const drift = r.nodes.flatMap((n) => (n.agent.outOfSync ?? []).map((s) => `  ${n.name}: ${s}`));
    if (drift.length) lines.push('', 'out of sync (steps a network sync would take now):', ...drift);
  }
  const verdictStyle = r.healthy ? 'ok' : 'bad';
  lines.push('', paint(verdictStyle, summaryLine(r)));
  return lines.join('\n');
}
