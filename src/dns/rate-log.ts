// Logs a flood cannot turn into a disk filler: at most `lines` per `intervalMs`; the first line
// after a quiet interval says how many were suppressed. Pure over a clock and a sink.
export interface LogSink {
  warn(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
}

export class RateLimitedLog {
  private windowStart = -Infinity;
  private used = 0;
  private suppressed = 0;

  constructor(private readonly sink: LogSink, private readonly lines = 10, private readonly intervalMs = 10_000, private readonly now: () => number = Date.now) {}

  warn(obj: Record<string, unknown>, msg: string): void {
    this.emit('warn', obj, msg);
  }

  info(obj: Record<string, unknown>, msg: string): void {
    this.emit('info', obj, msg);
  }

  private emit(level: 'warn' | 'info', obj: Record<string, unknown>, msg: string): void {
    const now = this.now();
    if (now - this.windowStart >= this.intervalMs) {
      this.windowStart = now;
      this.used = 0;
      if (this.suppressed > 0) {
        this.sink.warn({ suppressed: this.suppressed }, `dns: suppressed ${this.suppressed} log lines in the last interval`);
        this.used++;
        this.suppressed = 0;
      }
    }
    if (this.used >= this.lines) {
      this.suppressed++;
      return;
    }
    this.used++;
    this.sink[level](obj, msg);
  }
}

export const silentLog: LogSink = { warn() {}, info() {} };
