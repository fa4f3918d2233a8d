// Time as a dependency, so schedulers (the reconciler) can be tested on simulated time instead of
// sleeping: kube-proxy's bounded-frequency runner takes a timer interface for the same reason.
// test/lib/fake-clock.ts is the fake.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Runs fn once after ms. A background timer does not keep the process alive (Node's unref). */
  setTimer(ms: number, fn: () => void, opts?: { background?: boolean }): Timer;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn, opts) {
    const handle = setTimeout(fn, ms);
    if (opts?.background) handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
