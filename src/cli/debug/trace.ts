// `podwire trace`'s pure core: the agents' trace events (POST /v1/debug/trace/stop, typed again
// here: the CLI may not import src/agent) turned into the probe's hops, node by node in path
// order; the backend the DNAT picked; the verdict; whether it agrees with `explain`; the table.
import { EXIT, painter, renderTable, type Paint } from './output.js';
import type { ExplainHop, Verdict } from './explain.js';

export interface TracePacketFields {
  iif?: string;
  oif?: string;
  saddr?: string;
  daddr?: string;
  ipId?: number;
  protocol?: string;
  sport?: number;
  dport?: number;
  tcpFlags?: string;
}

interface EventBase { traceId: string; family: string; table: string; chain: string; ipId?: number; hook?: string }
export type TraceEvent =
  | (EventBase & { kind: 'packet'; packet: TracePacketFields })
  | (EventBase & { kind: 'rule'; rule: string; handle?: number; verdict: string })
  | (EventBase & { kind: 'policy'; verdict: string });

/** One node's answer to POST /v1/debug/trace/stop. */
export interface NodeTrace {
  node: string;
  events: TraceEvent[];
  truncated: boolean;
  ended?: string;
}

export interface TraceProbeResult {
  ok: boolean;
  ms: number | null;
  error?: string;
}

export interface TraceHop {
  node: string;
  hook: string;
  table: string;
  chain: string;
  rule: string;
  handle?: number;
  verdict: string;
}

export interface TraceReport {
  source: string;
  destination: string;
  verdict: Verdict;
  /** The endpoint a service's DNAT picked for the probe. */
  backend?: string;
  probe: TraceProbeResult & { sport: number };
  hops: TraceHop[];
  explain: { verdict: Verdict; brokenAt?: { node: string; kind: string; name: string }; candidates?: string[] };
  agree: boolean;
  disagreement?: string;
  notes: string[];
}

/** The trace tables the agents create (src/exec/names.ts NFT_TRACE_TABLE + "-<id>"): our own marking, not hops. */
const TRACE_TABLE_PREFIX = 'podwire-trace-';
/** The agents' bridge (src/agent/network/types.ts BRIDGE_NAME): a packet routed out of it is handed to a local pod. */
const BRIDGE = 'cni0';

export interface ProbeSpec {
  src: string;
  sport: number;
  proto: 'TCP' | 'UDP';
}

/** The probe's first packet (the TCP SYN, the UDP datagram) as the source node's trace table marked it: its IP id. */
export function probeIpId(srcTrace: NodeTrace | undefined, spec: ProbeSpec): number | undefined {
  const first = srcTrace?.events.find((e) => e.kind === 'packet' && e.table.startsWith(TRACE_TABLE_PREFIX) && e.packet.saddr === spec.src && e.packet.sport === spec.sport && (spec.proto === 'UDP' || e.packet.tcpFlags === 'syn'));
  return first?.ipId;
}

const isOwn = (e: TraceEvent) => e.table.startsWith(TRACE_TABLE_PREFIX);

/** Rule and policy events of the probe's packet on one node, as hops (our marking rule left out). */
export function nodeHops(t: NodeTrace, ipId: number): TraceHop[] {
  return t.events
    .filter((e): e is Exclude<TraceEvent, { kind: 'packet' }> => e.ipId === ipId && !isOwn(e) && e.kind !== 'packet')
    .map((e) => ({
      node: t.node,
      hook: e.hook ?? '-',
      table: `${e.family} ${e.table}`,
      chain: e.chain,
      rule: e.kind === 'rule' ? e.rule : 'policy',
      ...(e.kind === 'rule' && e.handle !== undefined ? { handle: e.handle } : {}),
      verdict: e.verdict,
    }));
}

/** The destination right after the first DNAT rule that accepted the probe: the next packet event of it on that node. */
export function backendOf(traces: readonly NodeTrace[], ipId: number): string | undefined {
  for (const t of traces) {
    const evs = t.events.filter((e) => e.ipId === ipId);
    const i = evs.findIndex((e) => e.kind === 'rule' && /^dnat /.test(e.rule) && e.verdict === 'accept');
    if (i < 0) continue;
    const after = evs.slice(i + 1).find((e) => e.kind === 'packet');
    if (after?.kind === 'packet' && after.packet.daddr && after.packet.dport !== undefined) return `${after.packet.daddr}:${after.packet.dport}`;
  }
  return undefined;
}

/** The endpoints explain's service hop lists ("… DNAT to one of A:P, B:P; following A:P" or "… DNAT to A:P"). */
export function explainCandidates(hops: readonly ExplainHop[]): string[] | undefined {
  const svc = hops.find((h) => h.ok && /DNAT to /.test(h.detail));
  const m = svc && /DNAT to (?:one of )?([^;]+)/.exec(svc.detail);
  return m ? m[1]!.split(',').map((s) => s.trim()).filter((s) => /^\d+\.\d+\.\d+\.\d+:\d+$/.test(s)) : undefined;
}

export interface TraceInput {
  source: string;
  destination: string;
  srcNode: string;
  /** The nodes in the order the packet crosses them (explain's path first, then the others). */
  traces: NodeTrace[];
  spec: ProbeSpec;
  probe: TraceProbeResult;
  explainHops: ExplainHop[];
  explainVerdict: Verdict;
}

/** The addresses explain says the packet is masqueraded to on its way ("SNAT A → B …" hops): the trace's alsoFrom. */
export function explainSnatAddresses(hops: readonly ExplainHop[]): string[] {
  return [...new Set(hops.flatMap((h) => {
    const m = /^SNAT \S+ → (\d+\.\d+\.\d+\.\d+)/.exec(h.detail);
    return m ? [m[1]!] : [];
  }))];
}

/** The last packet event of the probe: on which node, at which hook, out of which device. */
function lastSeen(traces: readonly NodeTrace[], ipId: number): { node: string; hook: string; chain: string; oif?: string } | undefined {
  let last: { node: string; hook: string; chain: string; oif?: string } | undefined;
  for (const t of traces) {
    for (const e of t.events) if (e.ipId === ipId && e.kind === 'packet') last = { node: t.node, hook: e.hook ?? '-', chain: e.chain, ...(e.packet.oif ? { oif: e.packet.oif } : {}) };
  }
  return last;
}

function explainSummary(input: Pick<TraceInput, 'explainHops' | 'explainVerdict'>): TraceReport['explain'] {
  const broken = input.explainHops.find((h) => !h.ok);
  const candidates = explainCandidates(input.explainHops);
  return { verdict: input.explainVerdict, ...(broken ? { brokenAt: { node: broken.node, kind: broken.kind, name: broken.name } } : {}), ...(candidates ? { candidates } : {}) };
}

/** Why trace and explain disagree: another verdict, another node where it breaks, a backend explain does not list. */
function disagreementOf(explain: TraceReport['explain'], verdict: Verdict, hops: readonly TraceHop[], backend: string | undefined): string | undefined {
  const firstBad = hops.find((h) => h.verdict === 'drop');
  if (explain.verdict !== verdict) return `explain says ${explain.verdict}, the probe was ${verdict}`;
  if (verdict !== 'delivered' && explain.brokenAt && firstBad && explain.brokenAt.node !== firstBad.node) return `explain breaks on node ${explain.brokenAt.node}, the probe on node ${firstBad.node}`;
  if (backend && explain.candidates && !explain.candidates.includes(backend)) return `the DNAT picked ${backend}, which is not among explain's candidates (${explain.candidates.join(', ')})`;
  return undefined;
}

export function buildTraceReport(input: TraceInput): TraceReport {
  const notes: string[] = [];
  for (const t of input.traces) {
    if (t.truncated) notes.push(`node ${t.node}: more trace events than kept; the probe's may be incomplete`);
    if (t.ended) notes.push(`node ${t.node}: ${t.ended}`);
  }
  const srcTrace = input.traces.find((t) => t.node === input.srcNode);
  const ipId = probeIpId(srcTrace, input.spec);
  const hops: TraceHop[] = ipId === undefined ? [] : input.traces.flatMap((t) => nodeHops(t, ipId));
  const backend = ipId === undefined ? undefined : backendOf(input.traces, ipId);
  const masq = hops.find((h) => /masquerade/.test(h.rule) && h.verdict === 'accept');
  const leftOn = ipId === undefined ? undefined : lastSeen(input.traces, ipId);
  // Masqueraded and last seen leaving that node other than to one of its own pods (the hairpin of a service back to the client goes out cni0).
  if (masq && leftOn?.node === masq.node && leftOn.hook === 'postrouting' && leftOn.oif !== BRIDGE) {
    notes.push(`node ${masq.node} masqueraded the probe (new source address and port) and no later node saw it: its new source is not one explain predicted (${explainSnatAddresses(input.explainHops).join(', ') || 'none'}), so the next nodes did not mark it`);
  }
  let verdict: Verdict;
  const drop = hops.find((h) => h.verdict === 'drop');
  if (drop) {
    verdict = /reject/.test(`${drop.chain} ${drop.rule}`) ? 'rejected' : 'dropped';
  } else if (ipId === undefined) {
    verdict = 'dropped';
    hops.push({ node: input.srcNode, hook: '-', table: '-', chain: '-', rule: `the probe never reached node ${input.srcNode}'s netfilter hooks (from ${input.spec.src}:${input.spec.sport}): lost between the pod's eth0 and its veth`, verdict: 'drop' });
  } else if (input.probe.ok) {
    verdict = 'delivered';
  } else {
    const seen = lastSeen(input.traces, ipId)!;
    if (seen.hook === 'postrouting' && seen.oif === BRIDGE) {
      verdict = 'delivered';
      notes.push(`the probe was handed to a pod on node ${seen.node} (out ${BRIDGE}), which did not accept it: ${input.probe.error ?? 'no answer'}`);
    } else {
      verdict = 'dropped';
      const rule = seen.hook === 'prerouting' || seen.hook === 'output'
        ? `last seen in ${seen.hook} (${seen.chain}); no forward or postrouting chain saw it after: the kernel's route lookup dropped it`
        : `last seen leaving node ${seen.node}${seen.oif ? ` on ${seen.oif}` : ''} (${seen.hook}, ${seen.chain}); no node traced it after that`;
      hops.push({ node: seen.node, hook: seen.hook === 'prerouting' || seen.hook === 'output' ? 'routing' : seen.hook, table: '-', chain: '-', rule: `${rule} (probe: ${input.probe.error ?? 'no answer'})`, verdict: 'drop' });
    }
  }
  const explain = explainSummary(input);
  const disagreement = disagreementOf(explain, verdict, hops, backend);
  return {
    source: input.source,
    destination: input.destination,
    verdict,
    ...(backend ? { backend } : {}),
    probe: { ...input.probe, sport: input.spec.sport },
    hops,
    explain,
    agree: disagreement === undefined,
    ...(disagreement ? { disagreement } : {}),
    notes,
  };
}

export function traceExitCode(r: Pick<TraceReport, 'verdict' | 'agree'>): number {
  return r.verdict === 'delivered' && r.agree ? EXIT.OK : EXIT.PROBLEM;
}

/** NODE HOOK TABLE CHAIN RULE VERDICT (wide: HANDLE too), then backend, probe, verdict and explain lines. */
export function renderTrace(r: TraceReport, wide: boolean, paint: Paint = painter(false)): string {
  const headers = ['NODE', 'HOOK', 'TABLE', 'CHAIN', 'RULE', ...(wide ? ['HANDLE'] : []), 'VERDICT'];
  const rows = r.hops.map((h) => [h.node, h.hook, h.table, h.chain, h.rule, ...(wide ? [h.handle !== undefined ? String(h.handle) : '-'] : []), h.verdict === 'drop' ? { text: 'drop', style: 'bad' as const } : h.verdict]);
  const probe = r.probe.ok ? `answered${r.probe.ms !== null ? ` in ${r.probe.ms.toFixed(1)} ms` : ''}` : `no: ${r.probe.error ?? 'no answer'}`;
  const lines = [
    renderTable(headers, rows, paint),
    ...(r.backend ? [`backend: ${r.backend}`] : []),
    `probe from source port ${r.probe.sport}: ${probe}`,
    ...r.notes.map((n) => `note: ${n}`),
    `${r.source} → ${r.destination}: ${paint(r.verdict === 'delivered' ? 'ok' : 'bad', r.verdict)}`,
    `explain: ${r.explain.verdict}${r.explain.brokenAt ? ` at ${r.explain.brokenAt.kind} ${r.explain.brokenAt.name} on node ${r.explain.brokenAt.node}` : ''}; ${r.agree ? paint('ok', 'agrees') : paint('bad', `DISAGREES: ${r.disagreement}`)}`,
  ];
  return lines.join('\n');
}
