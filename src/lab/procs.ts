// Processes a lab started, identified by PID *and* start time, so a teardown never signals a
// process that merely reused the PID.
import fs from 'node:fs';

export interface TrackedProc {
  pid: number;
  startTime: string;
  what: string;
}

function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces, so split after its ')': field 3 (state) comes
    // first, field 22 (starttime) is the 20th after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], startTime: fields[19] };
  } catch {
    return undefined;
  }
}

export function procStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** Still running and still the process we started (a zombie awaiting its reaper counts as gone). */
export function isAlive(p: TrackedProc): boolean {
  const st = procStat(p.pid);
  return st !== undefined && st.startTime === p.startTime && st.state !== 'Z' && st.state !== 'X';
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Wait (synchronously, bounded) until none of the processes is alive; returns those still alive. */
export function waitGone(procs: TrackedProc[], timeoutMs = 2000): TrackedProc[] {
  const deadline = Date.now() + timeoutMs;
  let alive = procs.filter(isAlive);
  while (alive.length && Date.now() < deadline) {
    Atomics.wait(sleeper, 0, 0, 10);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** SIGKILL a tracked process if it is still the one we started. */
export function killTracked(p: TrackedProc, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (!isAlive(p)) return false;
  try {
    process.kill(p.pid, signal);
    return true;
  } catch {
    return false;
  }
}
