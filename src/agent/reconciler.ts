// When to sync: requests are coalesced (a burst of node events makes one sync), syncs are at least
// minIntervalMs apart, a failed sync is retried with exponential backoff, and a full resync runs
// every resyncMs whatever happens. One sync at a time. The sync function itself is the agent's.
import { realClock, type Clock, type Timer } from './clock.js';

export interface ReconcilerOptions {
  coalesceMs?: number; // default 20
  minIntervalMs?: number; // default 100
  resyncMs?: number; // default 30 s
  maxBackoffMs?: number; // default 30 s
  clock?: Clock; // default the real one; tests pass test/lib/fake-clock.ts
  /** Told after every sync (metrics): how long it took on the clock, and whether it succeeded. */
  onSync?: (result: SyncResult) => void;
}

export interface SyncResult {
  ms: number;
  ok: boolean;
  skipped: boolean;
  reasons: string[];
}

export interface SyncOutcome {
  ok: boolean;
  /** Nothing could be done yet (not registered, lists not complete): not a sync for the metrics. */
  skipped?: boolean;
}

/** The first retry waits this long; each further failure doubles it, up to maxBackoffMs. */
const BASE_BACKOFF_MS = 200;

export class Reconciler {
  private timer: Timer | undefined;
  private resyncTimer: Timer | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  // -Infinity, not 0: the first sync waits only coalesceMs whatever the clock's epoch.
  private lastStart = -Infinity;
  private failures = 0;
  private stopped = false;
  private readonly reasons = new Set<string>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly clock: Clock;
  syncs = 0;

  constructor(
    private readonly sync: (reasons: string[]) => Promise<SyncOutcome>,
    private readonly opts: ReconcilerOptions = {},
    private readonly onError: (err: Error, retryInMs: number) => void = () => undefined,
  ) {
    this.clock = opts.clock ?? realClock;
  }

  start(): void {
    this.stopped = false;
    this.request('start');
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer();
    this.resyncTimer?.cancel();
    this.resyncTimer = undefined;
    this.wakeIfIdle();
    await this.running;
  }

  /** Ask for a sync soon; cheap to call on every event. */
  request(reason: string): void {
    if (this.stopped) return;
    this.reasons.add(reason);
    if (this.running) {
      this.pending = true;
      return;
    }
    if (this.timer) return;
    const sinceLast = this.clock.now() - this.lastStart;
    const wait = Math.max(this.opts.coalesceMs ?? 20, (this.opts.minIntervalMs ?? 100) - sinceLast);
    this.timer = this.clock.setTimer(wait, () => this.run());
  }

  /** Resolves once no sync is running or pending (a retry counts as pending): tests, shutdown. */
  settled(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private idle(): boolean {
    return !this.running && !this.timer;
  }

  // Woken on state changes rather than polled, so settled() needs no clock and works on fake time.
  private wakeIfIdle(): void {
    if (this.idle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private scheduleResync(): void {
    // Background: a pending resync alone must not keep a stopping process alive.
    const every = this.opts.resyncMs ?? 30_000;
    this.resyncTimer = this.clock.setTimer(every, () => {
      this.request('periodic resync');
      this.scheduleResync();
    }, { background: true });
  }

  private run(): void {
    this.timer = undefined;
    if (this.stopped) {
      this.wakeIfIdle();
      return;
    }
    const reasons = [...this.reasons];
    this.reasons.clear();
    this.pending = false;
    const started = (this.lastStart = this.clock.now());
    this.running = this.sync(reasons)
      .then(
        (o) => o,
        (e: Error): SyncOutcome => {
          this.onError(e, this.backoffMs());
          return { ok: false };
        },
      )
      .then((outcome) => {
        this.syncs++;
        this.running = undefined;
        this.report({ ms: this.clock.now() - started, ok: outcome.ok, skipped: outcome.skipped === true, reasons });
        if (!this.stopped) this.afterSync(outcome);
        this.wakeIfIdle();
      });
  }

  /** A throwing listener must not stop the loop: the sync itself went fine or was already counted. */
  private report(result: SyncResult): void {
    try {
      this.opts.onSync?.(result);
    } catch {
      // metrics are best effort
    }
  }

  private afterSync(outcome: SyncOutcome): void {
    if (outcome.ok) {
      this.failures = 0;
      if (this.pending) this.request('changes during sync');
      return;
    }
    const delay = this.backoffMs();
    this.failures++;
    this.reasons.add('retry after failure');
    this.timer = this.clock.setTimer(delay, () => this.run());
  }

  /** The wait before retrying the sync that just failed. */
  private backoffMs(): number {
    return Math.min(this.opts.maxBackoffMs ?? 30_000, BASE_BACKOFF_MS * 2 ** Math.min(this.failures, 10));
  }
}
