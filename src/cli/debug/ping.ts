// `podwire ping`'s pure core: the agent's answer (src/agent/debug/icmp.ts PingResult, typed again
// here: the CLI may not import src/agent), its ping(8)-style summary and the exit code.
import { EXIT } from './output.js';

export interface PingAnswer {
  src: string;
  dst: string;
  sent: number;
  received: number;
  lossPct: number;
  rttMs: { min: number; avg: number; max: number } | null;
  replies: { seq: number; rttMs: number }[];
}

export interface PingReport extends PingAnswer {
  /** What SRC and DST named, e.g. "pod default/web-1", "node node2", "service default/web", "ip 10.0.0.9". */
  source: string;
  destination: string;
  /** The node whose agent sent the echo requests (SRC's node). */
  node: string;
}

/** ping(8)'s per-reply lines and its summary. */
export function renderPing(r: PingReport): string {
  const lines = [`PING ${r.destination} (${r.dst}) from ${r.source} (${r.src}) on node ${r.node}`];
  for (const rep of r.replies) lines.push(`reply from ${r.dst}: icmp_seq=${rep.seq} time=${rep.rttMs.toFixed(3)} ms`);
  const rtt = r.rttMs ? `; rtt min/avg/max = ${r.rttMs.min.toFixed(3)}/${r.rttMs.avg.toFixed(3)}/${r.rttMs.max.toFixed(3)} ms` : '';
  lines.push(`${r.sent} packets transmitted, ${r.received} received, ${r.lossPct}% packet loss${rtt}`);
  return lines.join('\n');
}

/** 0 every request answered, 1 any loss (or nothing sent). */
export function pingExitCode(r: PingAnswer): number {
  return r.sent > 0 && r.received === r.sent ? EXIT.OK : EXIT.PROBLEM;
}
