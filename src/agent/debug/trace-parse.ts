// `nft monitor trace` output, read (pure). Each line of a trace is one event of one packet in one
// chain: `trace id ID FAMILY TABLE CHAIN packet: FIELDS` when the packet enters a base chain,
// then `... rule TEXT [# handle N] (verdict V)`, `... unknown rule handle N (verdict V)` (a rule
// added after the monitor started), `... policy accept|drop` or `... verdict V`. Other lines (the
// monitor's ruleset events, `# new generation`) are not trace events. The kernel's trace id is
// not the packet's identity (it changes between prerouting and postrouting, and the next packet
// may reuse it), so every event is tied to the last `packet:` line of its trace id, and carries
// that packet's IP id (unchanged by NAT and by VXLAN encapsulation of the inner packet) and the
// hook of the base chain it entered (from the node's chain list: regular chains have none).

export interface TracePacketFields {
  iif?: string;
  oif?: string;
  saddr?: string;
  daddr?: string;
  ipId?: number;
  protocol?: string;
  sport?: number;
  dport?: number;
  /** `syn`, `ack`, `0x14`, … as nft prints `tcp flags == X`. */
  tcpFlags?: string;
}

export type TraceLine =
  | { kind: 'packet'; traceId: string; family: string; table: string; chain: string; packet: TracePacketFields }
  | { kind: 'rule'; traceId: string; family: string; table: string; chain: string; rule: string; handle?: number; verdict: string }
  | { kind: 'policy'; traceId: string; family: string; table: string; chain: string; verdict: string };

/** A trace line tied to its packet: the packet's IP id and the hook of the base chain it entered. */
export type TraceEvent = TraceLine & { ipId?: number; hook?: string };

const HEAD = /^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (.*)$/;

function quoted(text: string, key: string): string | undefined {
  return new RegExp(`(?:^| )${key} "([^"]*)"`).exec(text)?.[1];
}

function word(text: string, key: string): string | undefined {
  return new RegExp(`(?:^| )${key} (\\S+)`).exec(text)?.[1];
}

function num(text: string | undefined): number | undefined {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

export function parsePacketFields(text: string): TracePacketFields {
  const protocol = word(text, 'ip protocol') ?? word(text, 'meta l4proto');
  const l4 = protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp' ? protocol : undefined;
  const fields: TracePacketFields = {
    iif: quoted(text, 'iif'),
    oif: quoted(text, 'oif'),
    saddr: word(text, 'ip saddr'),
    daddr: word(text, 'ip daddr'),
    ipId: num(word(text, 'ip id')),
    protocol,
    sport: l4 ? num(word(text, `${l4} sport`)) : undefined,
    dport: l4 ? num(word(text, `${l4} dport`)) : undefined,
    tcpFlags: l4 === 'tcp' ? /(?:^| )tcp flags == (\S+)/.exec(text)?.[1] : undefined,
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as TracePacketFields;
}

/** One line of `nft monitor trace` output, or undefined when it is not a trace event. */
export function parseTraceLine(line: string): TraceLine | undefined {
  const m = HEAD.exec(line.trimEnd());
  if (!m) return undefined;
  const [, traceId, family, table, chain, rest] = m as unknown as [string, string, string, string, string, string];
  const base = { traceId, family, table, chain };
  if (rest.startsWith('packet: ')) return { kind: 'packet', ...base, packet: parsePacketFields(rest.slice(8)) };
  const policy = /^policy (\S+)$/.exec(rest);
  if (policy) return { kind: 'policy', ...base, verdict: policy[1]! };
  const unknown = /^unknown rule handle (\d+) \(verdict ([^)]+)\)$/.exec(rest);
  if (unknown) return { kind: 'rule', ...base, rule: `unknown rule handle ${unknown[1]} (added after the trace started)`, handle: Number(unknown[1]), verdict: unknown[2]! };
  const rule = /^rule (.*?)(?: # handle (\d+))? \(verdict ([^)]+)\)$/.exec(rest);
  if (rule) return { kind: 'rule', ...base, rule: rule[1]!, ...(rule[2] ? { handle: Number(rule[2]) } : {}), verdict: rule[3]! };
  const verdict = /^verdict (.+)$/.exec(rest);
  if (verdict) return { kind: 'policy', ...base, verdict: verdict[1]! };
  return undefined;
}

/** `family table chain` → hook, for the node's base chains (from `nft -j list chains`). */
export type ChainHooks = Map<string, string>;

export const chainKey = (family: string, table: string, chain: string): string => `${family} ${table} ${chain}`;

/** The hooks of the base chains in `nft -j list chains` output; throws on output that is not that. */
export function parseChainHooks(json: string): ChainHooks {
  const doc = JSON.parse(json) as { nftables?: { chain?: { family?: string; table?: string; name?: string; hook?: string } }[] };
  if (!Array.isArray(doc.nftables)) throw new Error('no "nftables" array in nft -j output');
  const hooks: ChainHooks = new Map();
  for (const item of doc.nftables) {
    const c = item.chain;
    if (c?.family && c.table && c.name && c.hook) hooks.set(chainKey(c.family, c.table, c.name), c.hook);
  }
  return hooks;
}

/** Every trace event of the output, in order, tied to its packet (IP id) and hook. */
export function parseTrace(text: string, hooks: ChainHooks): TraceEvent[] {
  const current = new Map<string, { ipId?: number; hook?: string }>();
  const events: TraceEvent[] = [];
  for (const line of text.split('\n')) {
    const ev = parseTraceLine(line);
    if (!ev) continue;
    if (ev.kind === 'packet') {
      const hook = hooks.get(chainKey(ev.family, ev.table, ev.chain));
      current.set(ev.traceId, { ...(ev.packet.ipId !== undefined ? { ipId: ev.packet.ipId } : {}), ...(hook ? { hook } : {}) });
    }
    const pkt = current.get(ev.traceId);
    events.push({ ...ev, ...(pkt?.ipId !== undefined ? { ipId: pkt.ipId } : {}), ...(pkt?.hook ? { hook: pkt.hook } : {}) });
  }
  return events;
}
