// Processes a lab started, identified by PID *and* start time, so a teardown never signals a
// process that merely reused the PID.
import fs from 'node:fs';

export interface TrackedProc {
  pid: number;
  startTime: string;
  what: string;
}

export function procStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); the command name (field 2) may hold spaces, so split after its ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function isAlive(p: TrackedProc): boolean {
  return procStartTime(p.pid) === p.startTime;
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
