// When to sync: requests are coalesced (a burst of node events makes one sync), syncs are at least
// minIntervalMs apart, a failed sync is retried with exponential backoff, and a full resync runs
// every resyncMs whatever happens. One sync at a time. The sync function itself is the agent's.
export interface ReconcilerOptions {
  coalesceMs?: number; // default 20
  minIntervalMs?: number; // default 100
  resyncMs?: number; // default 30 s
  maxBackoffMs?: number; // default 30 s
}

export interface SyncOutcome {
  ok: boolean;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  private lastStart = 0;
  private failures = 0;
  private stopped = false;
  private readonly reasons = new Set<string>();
  syncs = 0;

  constructor(
    private readonly sync: (reasons: string[]) => Promise<SyncOutcome>,
    private readonly opts: ReconcilerOptions = {},
    private readonly onError: (err: Error, retryInMs: number) => void = () => undefined,
  ) {}

  start(): void {
    this.stopped = false;
    this.request('start');
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.resyncTimer);
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
    const sinceLast = Date.now() - this.lastStart;
    const wait = Math.max(this.opts.coalesceMs ?? 20, (this.opts.minIntervalMs ?? 100) - sinceLast);
    this.timer = setTimeout(() => this.run(), wait);
  }

  /** Resolves after the sync that is running or pending (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.running || this.timer) {
      await (this.running ?? new Promise((r) => setTimeout(r, 5)));
    }
  }

  private scheduleResync(): void {
    this.resyncTimer = setTimeout(() => {
      this.request('periodic resync');
      this.scheduleResync();
    }, this.opts.resyncMs ?? 30_000);
    this.resyncTimer.unref?.();
  }

  private run(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const reasons = [...this.reasons];
    this.reasons.clear();
    this.pending = false;
    this.lastStart = Date.now();
    this.running = this.sync(reasons)
      .then(
        (o) => o,
        (e: Error) => {
          this.onError(e, 0);
          return { ok: false };
        },
      )
      .then((outcome) => {
        this.syncs++;
        this.running = undefined;
        if (this.stopped) return;
        if (outcome.ok) {
          this.failures = 0;
          if (this.pending) this.request('changes during sync');
          return;
        }
        const delay = Math.min(this.opts.maxBackoffMs ?? 30_000, 200 * 2 ** Math.min(this.failures++, 10));
        this.reasons.add('retry after failure');
        this.timer = setTimeout(() => this.run(), delay);
      });
  }
}
