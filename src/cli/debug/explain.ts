// `podwire explain`'s pure core: the agents' answers to POST /v1/debug/explain-hop (typed again
// here: the CLI may not import src/agent), following the packet from node to node with a loop
// guard, the verdict, the table and the exit code.
import { EXIT, painter, renderTable, type Paint } from './output.js';

export interface ExplainHop {
  node: string;
  kind: string;
  name: string;
  detail: string;
  ok: boolean;
}

export interface ExplainHopAnswer {
  hops: ExplainHop[];
  next?: { node?: string; dst: string; port?: number; via: 'vxlan' | 'direct'; src?: string };
}

export type Verdict = 'delivered' | 'dropped' | 'rejected';

export interface ExplainReport {
  /** What SRC and DST named, e.g. "pod default/web-1", "service default/web", "ip 10.0.0.9". */
  source: string;
  destination: string;
  verdict: Verdict;
  hops: ExplainHop[];
}

/** Nodes one explain follows at most (a packet crossing more is a loop or a misconfiguration). */
export const MAX_NODES = 4;

export interface HopRequest {
  node: string;
  dst: string;
  port?: number;
  iif: 'pod' | 'underlay' | 'local';
  via?: 'vxlan' | 'direct';
  /** The packet's source from here on, when a node chose it (its own packet: the route's prefsrc). */
  src?: string;
}

/**
 * Follow the packet: ask `first.node`'s agent, then each node an answer says the packet continues
 * on (iif underlay), at most MAX_NODES and never the same node twice for the same destination (a
 * NodePort's DNAT may send the packet back to a node it came from, to another address: no loop).
 * A broken continuation (no node named, a loop, too many nodes) ends the hops with one that is not ok.
 */
export async function followPath(first: HopRequest, ask: (req: HopRequest) => Promise<ExplainHopAnswer>): Promise<ExplainHop[]> {
  const hops: ExplainHop[] = [];
  const visited: string[] = [];
  const seen = new Set<string>();
  const key = (node: string, dst: string, port?: number) => `${node} ${dst}:${port ?? ''}`;
  let req: HopRequest | undefined = first;
  while (req) {
    visited.push(req.node);
    seen.add(key(req.node, req.dst, req.port));
    const answer = await ask(req);
    hops.push(...answer.hops);
    const next = answer.next;
    if (!next || answer.hops.some((h) => !h.ok)) break;
    const from = req.node;
    if (!next.node) {
      hops.push({ node: from, kind: 'next', name: next.dst, detail: `the packet leaves node ${from} towards ${next.dst}, but no node of the cluster is known to take it`, ok: false });
      break;
    }
    if (seen.has(key(next.node, next.dst, next.port))) {
      hops.push({ node: from, kind: 'loop', name: next.node, detail: `the packet would go back to node ${next.node} (path: ${[...visited, next.node].join(' → ')}): a routing loop`, ok: false });
      break;
    }
    if (visited.length >= MAX_NODES) {
      hops.push({ node: from, kind: 'loop', name: next.node, detail: `the packet crossed ${visited.length} nodes (${visited.join(' → ')}) and would go on to ${next.node}; explain follows at most ${MAX_NODES}`, ok: false });
      break;
    }
    req = { node: next.node, dst: next.dst, ...(next.port !== undefined ? { port: next.port } : {}), iif: 'underlay', via: next.via, ...(next.src ?? req.src ? { src: next.src ?? req.src } : {}) };
  }
  return hops;
}

/**
 * delivered: every hop ok; rejected: the first failing hop is a service or NodePort match (no
 * endpoints, no such port); dropped: any other (a route, a filter drop under a Local policy, …).
 */
export function verdictOf(hops: readonly ExplainHop[]): Verdict {
  const broken = hops.find((h) => !h.ok);
  if (!broken) return hops.length > 0 ? 'delivered' : 'dropped';
  return broken.kind === 'service' || broken.kind === 'nodeport' ? 'rejected' : 'dropped';
}

export function explainExitCode(r: Pick<ExplainReport, 'verdict'>): number {
  return r.verdict === 'delivered' ? EXIT.OK : EXIT.PROBLEM;
}

/** The table NODE KIND NAME DETAIL OK and a verdict line; the first broken hop in red. */
export function renderExplain(r: ExplainReport, paint: Paint = painter(false)): string {
  const rows = r.hops.map((h) => [h.node, h.kind, h.name, h.detail, h.ok ? { text: 'ok', style: 'ok' as const } : { text: 'BROKEN', style: 'bad' as const }]);
  const broken = r.hops.find((h) => !h.ok);
  const verdict = `${r.source} → ${r.destination}: ${paint(r.verdict === 'delivered' ? 'ok' : 'bad', r.verdict)}${broken ? ` at ${broken.kind} ${broken.name} on node ${broken.node}: ${broken.detail}` : ''}`;
  return `${renderTable(['NODE', 'KIND', 'NAME', 'DETAIL', 'OK'], rows, paint)}\n${verdict}`;
}
