// Teardown that always runs: on normal completion, on an exception, on SIGINT/SIGTERM/SIGHUP and as
// a last resort on process exit. Each registered cleanup is synchronous and runs at most once.
type Cleanup = () => void;

const pending = new Map<number, Cleanup>();
let nextId = 1;
let installed = false;

function runAll(): void {
  for (const [id, fn] of [...pending].reverse()) {
    pending.delete(id);
    try {
      fn();
    } catch (err) {
      process.stderr.write(`podwire: cleanup failed: ${(err as Error).message}\n`);
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(sig, () => {
      process.stderr.write(`\npodwire: ${sig}: tearing down\n`);
      runAll();
      process.exit(code);
    });
  }
}

export interface CleanupHandle {
  /** Run the cleanup now (once) and unregister it. */
  run(): void;
  /** Unregister without running (the resource is handed over, e.g. `lab up --keep`). */
  cancel(): void;
}

export function registerCleanup(fn: Cleanup): CleanupHandle {
  install();
  const id = nextId++;
  pending.set(id, fn);
  return {
    run: () => {
      if (pending.delete(id)) fn();
    },
    cancel: () => {
      pending.delete(id);
    },
  };
}
