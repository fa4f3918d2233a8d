// One `podwire trace` on this node: its table (trace-table.ts) and an `nft -a monitor` child
// reading the trace events, both in the agent's (the node's) netns. start() returns once the
// monitor is known to be reading: a fence chain added and deleted shows up in its output (the
// monitor caches the ruleset when it starts, so the table is created before it, and its rules
// print with their text). stop() fences again, so every event of the probe sent before is in,
// then kills the monitor, deletes the table and parses the events. A trace that is never
// stopped ends by itself after its ttl: a CLI that dies leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import type { CommandRunner } from '../../exec/runner.js';
import { deleteTraceTableText, fenceName, fenceText, traceTableName, traceTableText, type TraceMatch } from './trace-table.js';
import { parseChainHooks, parseTrace, type TraceEvent } from './trace-parse.js';

/** Trace lines kept per trace (one probe crosses a few dozen chains; the rest is other packets of its connection). */
const MAX_LINES = 4000;
// The monitor reads the whole ruleset before it listens (10k services: seconds); at stop it is long up.
const START_WAIT_MS = 10_000;
const STOP_WAIT_MS = 3000;

export interface TraceStopAnswer {
  node: string;
  events: TraceEvent[];
  /** Lines past MAX_LINES were not kept. */
  truncated: boolean;
  /** Why the trace ended before stop (its ttl, the monitor exiting), when it did. */
  ended?: string;
}

export class TraceSession {
  private lines: string[] = [];
  private truncated = false;
  private fences = 0;
  private seen = new Set<string>();
  private waiters: (() => void)[] = [];
  private partial = '';
  private timer: NodeJS.Timeout;
  private monitor: ChildProcess | undefined;
  ended: string | undefined;
  private stderr = '';

  private constructor(readonly match: TraceMatch, private readonly runner: CommandRunner, ttlMs: number, private readonly onEnd: () => void) {
    this.timer = setTimeout(() => this.end(`the trace was not stopped within ${ttlMs} ms; its table was removed`), ttlMs);
    this.timer.unref();
  }

  static async start(match: TraceMatch, runner: CommandRunner, ttlMs: number, onEnd: () => void): Promise<TraceSession> {
    const apply = runner.run('nft', ['-f', '-'], traceTableText(match));
    if (apply.code !== 0) throw new Error(`nft -f - (create table inet ${traceTableName(match.id)}) exited ${apply.code}: ${apply.stderr.trim()}`);
    const s = new TraceSession(match, runner, ttlMs, onEnd);
    try {
      s.spawnMonitor();
      await s.fence(START_WAIT_MS);
      return s;
    } catch (e) {
      s.end(`start failed: ${(e as Error).message}`);
      throw e;
    }
  }

  private spawnMonitor(): void {
    const child = spawn('nft', ['-a', 'monitor'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.monitor = child;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.take(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-2000)));
    child.on('error', (e) => this.end(`nft monitor: ${e.message}`));
    child.on('exit', (code, signal) => {
      if (!this.ended) this.end(`nft monitor exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
    });
  }

  private take(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop()!;
    for (const line of parts) {
      const fence = /^add chain inet \S+ (fence-\d+)/.exec(line);
      if (fence && line.includes(traceTableName(this.match.id))) {
        this.seen.add(fence[1]!);
        for (const w of this.waiters.splice(0)) w();
      } else if (line.startsWith('trace id ')) {
        if (this.lines.length < MAX_LINES) this.lines.push(line);
        else this.truncated = true;
      }
    }
  }

  /** Add and delete a fence chain, resend every 100 ms, until the monitor prints one of ours. */
  private async fence(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    const sent: string[] = [];
    while (Date.now() < deadline) {
      if (this.ended) throw new Error(this.ended);
      const n = ++this.fences;
      sent.push(fenceName(n));
      const r = this.runner.run('nft', ['-f', '-'], fenceText(this.match.id, n));
      if (r.code !== 0) throw new Error(`nft -f - (fence chain in inet ${traceTableName(this.match.id)}) exited ${r.code}: ${r.stderr.trim()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
      if (sent.some((f) => this.seen.has(f))) return;
    }
    throw new Error(`nft monitor printed none of its events within ${waitMs} ms${this.stderr ? ` (${this.stderr.trim()})` : ''}`);
  }

  /** Kill the monitor and delete the table, once; errors deleting are reported in `ended`. */
  private end(why: string): void {
    if (this.ended) return;
    this.ended = why;
    clearTimeout(this.timer);
    if (this.monitor && this.monitor.exitCode === null) this.monitor.kill('SIGTERM');
    try {
      const r = this.runner.run('nft', ['-f', '-'], deleteTraceTableText(this.match.id));
      if (r.code !== 0 && !/No such file or directory/.test(r.stderr)) this.ended += `; deleting table inet ${traceTableName(this.match.id)} failed: ${r.stderr.trim()}`;
    } catch (e) {
      this.ended += `; deleting table inet ${traceTableName(this.match.id)} failed: ${(e as Error).message}`;
    }
    for (const w of this.waiters.splice(0)) w();
    this.onEnd();
  }

  async stop(node: string): Promise<TraceStopAnswer> {
    const endedBefore = this.ended;
    // The chain list first: while the table is there, its chains' hooks are in it too.
    let hooksJson = '{"nftables": []}';
    if (!endedBefore) {
      await this.fence(STOP_WAIT_MS);
      const r = this.runner.run('nft', ['-j', 'list', 'chains']);
      if (r.code !== 0) throw new Error(`nft -j list chains exited ${r.code}: ${r.stderr.trim()}`);
      hooksJson = r.stdout;
    }
    this.end('stopped');
    return {
      node,
      events: parseTrace(this.lines.join('\n'), parseChainHooks(hooksJson)),
      truncated: this.truncated,
      ...(endedBefore ? { ended: endedBefore } : {}),
    };
  }

  /** Stop without an answer (agent shutdown). */
  close(): void {
    this.end('the agent stopped');
  }
}
