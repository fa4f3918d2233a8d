// `podwire peers` / `podwire routes`: the report (each node's agent answer of GET /v1/debug/peers,
// or why it could not be asked), its tables and the exit code. Pure. The CLI may not import
// src/agent, so the agent's JSON (src/agent/debug/peer-diff.ts PeersAnswer) is typed again here
// with the fields the commands read; the JSON contract is in src/cli/README.md.
import { EXIT, renderTable, type Cell, type DebugOutput, type Paint, type Style } from './output.js';

export type EntryStatus = 'present' | 'missing' | 'stale';

export interface EntryView<T> { status: EntryStatus; desired: T; present: T | null; detail: string | null }
export interface RouteView { dst: string; gateway: string | null; dev: string | null; onlink: boolean }
export interface NeighView { ip: string; lladdr: string | null; dev: string }
export interface FdbView { mac: string; dst: string; dev: string }

export interface PeerView {
  name: string;
  podCidr: string;
  underlayIp: string;
  vtepMac: string | null;
  mode: 'vxlan' | 'direct';
  route: EntryView<RouteView>;
  neighbour: EntryView<NeighView> | null;
  fdb: EntryView<FdbView> | null;
}

export interface AgentPeersAnswer {
  node: string;
  backend: string;
  peers: PeerView[];
  unreachable: { name: string; why: string }[];
}

/** What asking one node's agent gave: its answer, or why not (`reached`: false when it did not answer at all). */
export type NodeAnswer = { node: string; ok: true; answer: AgentPeersAnswer } | { node: string; ok: false; reached: boolean; error: string };

export interface PeersNode {
  node: string;
  /** The agent answered (false: down or not reachable from here). */
  agent: 'up' | 'down';
  backend: string | null;
  peers: PeerView[];
  unreachable: { name: string; why: string }[];
  error: string | null;
  /** Each problem as a sentence: a missing / stale entry, a peer without a route, the agent's error. */
  problems: string[];
}

export interface PeersReport {
  nodes: PeersNode[];
  healthy: boolean;
}

function entryProblems(node: string, peer: PeerView): string[] {
  const out: string[] = [];
  const check = (what: string, e: EntryView<unknown> | null, show: string) => {
    if (!e || e.status === 'present') return;
    out.push(`${node}: ${what} ${show} for peer ${peer.name} is ${e.status}${e.detail ? `: ${e.detail}` : ''}`);
  };
  const r = peer.route.desired;
  check('route', peer.route, `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`);
  if (peer.neighbour) check('neighbour', peer.neighbour, `${peer.neighbour.desired.ip} lladdr ${peer.neighbour.desired.lladdr ?? '-'}`);
  if (peer.fdb) check('fdb entry', peer.fdb, `${peer.fdb.desired.mac} dst ${peer.fdb.desired.dst}`);
  return out;
}

export function buildPeersReport(answers: NodeAnswer[]): PeersReport {
  const nodes = answers.map((a): PeersNode => {
    if (!a.ok) return { node: a.node, agent: a.reached ? 'up' : 'down', backend: null, peers: [], unreachable: [], error: a.error, problems: [`${a.node}: ${a.error}`] };
    const { answer } = a;
    const problems = [
      ...answer.peers.flatMap((p) => entryProblems(a.node, p)),
      ...answer.unreachable.map((u) => `${a.node}: peer ${u.name} gets no route: ${u.why}`),
    ];
    return { node: a.node, agent: 'up', backend: answer.backend, peers: answer.peers, unreachable: answer.unreachable, error: null, problems };
  });
  return { nodes, healthy: nodes.every((n) => n.problems.length === 0) };
}

/** 3 when an agent did not answer, else 1 when any entry is missing or stale (or a peer has no route), else 0. */
export function peersExitCode(report: PeersReport): number {
  if (report.nodes.some((n) => n.agent === 'down')) return EXIT.UNREACHABLE;
  return report.healthy ? EXIT.OK : EXIT.PROBLEM;
}

const STATUS_STYLE: Record<EntryStatus, Style> = { present: 'ok', missing: 'bad', stale: 'warn' };
const statusCell = (e: EntryView<unknown> | null): Cell => (e ? { text: e.status, style: STATUS_STYLE[e.status] } : '-');
const routeText = (r: RouteView | null): string => (r ? `via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}${r.onlink ? ' onlink' : ''}` : '-');

function footer(report: PeersReport, paint: Paint, wide: boolean): string {
  const peers = report.nodes.reduce((s, n) => s + n.peers.length, 0);
  const problems = report.nodes.flatMap((n) => n.problems);
  const head = `${report.nodes.length} node${report.nodes.length === 1 ? '' : 's'}, ${peers} peer entr${peers === 1 ? 'y' : 'ies'}: `;
  if (problems.length === 0) return head + paint('ok', 'all present');
  const lines = wide || problems.length <= 10 ? problems : [...problems.slice(0, 10), `… ${problems.length - 10} more (-o wide lists all)`];
  return head + paint('bad', `${problems.length} problem${problems.length === 1 ? '' : 's'}`) + '\n' + lines.map((l) => `  ${l}`).join('\n');
}

function downRows(report: PeersReport, width: number): Cell[][] {
  return report.nodes.filter((n) => n.error !== null).map((n) => [n.node, { text: n.agent === 'down' ? 'agent down' : 'error', style: 'bad' }, ...Array<Cell>(width - 2).fill('-')]);
}

/** `podwire peers`: one row per (node, peer): how it is reached and the state of each entry. */
export function renderPeers(report: PeersReport, mode: Exclude<DebugOutput, 'json'>, paint: Paint): string {
  const wide = mode === 'wide';
  const headers = ['NODE', 'PEER', 'MODE', 'PODCIDR', 'UNDERLAY', 'VTEP-MAC', 'ROUTE', 'NEIGH', 'FDB', ...(wide ? ['VIA'] : [])];
  const rows: Cell[][] = [];
  for (const n of report.nodes) {
    for (const p of n.peers) {
      rows.push([n.node, p.name, p.mode, p.podCidr, p.underlayIp, p.vtepMac ?? '-', statusCell(p.route), statusCell(p.neighbour), statusCell(p.fdb), ...(wide ? [routeText(p.route.desired)] : [])]);
    }
    for (const u of n.unreachable) rows.push([n.node, u.name, { text: 'no route', style: 'bad' }, ...Array<Cell>(headers.length - 3).fill('-')]);
  }
  rows.push(...downRows(report, headers.length));
  return `${renderTable(headers, rows, paint)}\n${footer(report, paint, wide)}`;
}

/** `podwire routes`: one row per (node, peer podCIDR): the desired route and what the kernel has. */
export function renderRoutes(report: PeersReport, mode: Exclude<DebugOutput, 'json'>, paint: Paint): string {
  const wide = mode === 'wide';
  const headers = ['NODE', 'DST', 'PEER', 'DESIRED', 'STATUS', ...(wide ? ['PRESENT', 'DETAIL'] : [])];
  const rows: Cell[][] = [];
  for (const n of report.nodes) {
    for (const p of n.peers) {
      const r = p.route;
      rows.push([n.node, r.desired.dst, p.name, routeText(r.desired), statusCell(r), ...(wide ? [routeText(r.present), r.detail ?? '-'] : [])]);
    }
  }
  rows.push(...downRows(report, headers.length));
  return `${renderTable(headers, rows, paint)}\n${footer(report, paint, wide)}`;
}
