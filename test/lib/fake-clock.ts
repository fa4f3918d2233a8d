// Simulated time for schedulers that take a Clock (src/agent/clock.ts): nothing fires until a test
// calls advance(), so timings can be asserted to the millisecond without sleeping.
import type { Clock, Timer } from '../../src/agent/clock.js';

interface FakeTimer {
  due: number;
  seq: number;
  fn: () => void;
  background: boolean;
}

/** One macrotask turn: every queued microtask runs, so an async sync a timer started can finish. */
export const flushMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FakeClock implements Clock {
  private nowMs: number;
  private seq = 0;
  private readonly timers = new Map<number, FakeTimer>();

  // A non-zero epoch, so code that assumes time starts at 0 shows up in tests.
  constructor(startMs = 1_000_000) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  setTimer(ms: number, fn: () => void, opts?: { background?: boolean }): Timer {
    const seq = this.seq++;
    this.timers.set(seq, { due: this.nowMs + Math.max(0, ms), seq, fn, background: opts?.background ?? false });
    return { cancel: () => this.timers.delete(seq) };
  }

  /**
   * Moves time forward by ms, firing due timers in order of due time (then creation), each at its
   * own time, with microtasks flushed after each: a timer set by a callback or by an async sync
   * it started fires in the same advance when it falls due within it.
   */
  async advance(ms: number): Promise<void> {
    const target = this.nowMs + ms;
    await flushMicrotasks();
    for (let next = this.nextDue(target); next; next = this.nextDue(target)) {
      this.timers.delete(next.seq);
      this.nowMs = next.due;
      next.fn();
      await flushMicrotasks();
    }
    this.nowMs = target;
  }

  /** Pending timers as [ms from now, background], soonest first: what a test can assert on. */
  pending(): [number, boolean][] {
    return [...this.timers.values()].sort(byDue).map((t) => [t.due - this.nowMs, t.background]);
  }

  private nextDue(limit: number): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers.values()) if (t.due <= limit && (!best || byDue(t, best) < 0)) best = t;
    return best;
  }
}

const byDue = (a: FakeTimer, b: FakeTimer): number => a.due - b.due || a.seq - b.seq;
