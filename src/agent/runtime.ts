// How the agent's Node process runs. The agent is long-lived and mostly idle, with rare large
// one-off allocations (a full service-proxy sync at 10,000 services builds a 5 MB script and
// parses two list bodies), so it trades a little GC CPU for a small, steady footprint:
//   --max-semi-space-size=2  a 2 MB young generation (V8's default grows to 16 MB per semi-space,
//                            ~48 MB committed for as long as the process lives);
//   --compact-on-every-full-gc  full GCs are rare here, so each may move live objects off
//                            half-empty pages: after a 10,000-service sync the long-lived state
//                            sits among freed garbage, and without compaction V8 keeps ~85 MB of
//                            heap for ~52 MB live (56 MB with it; the sync's time is unchanged);
//   --expose-gc              so the agent can collect right after a large full sync instead of
//                            keeping that garbage (and the pages holding it) until old-space
//                            fills up again, which for an idle agent is never.
// main.ts's shebang carries the same flags (a test keeps them equal); whoever starts the agent
// with an explicit `node` (the lab) passes AGENT_NODE_FLAGS.
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=2', '--compact-on-every-full-gc', '--expose-gc'] as const;

/** A full, synchronous garbage collection when gc is exposed; the ms it took, or undefined. */
export function collectGarbage(): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return undefined;
  const t0 = performance.now();
  gc();
  return Math.round(performance.now() - t0);
}
