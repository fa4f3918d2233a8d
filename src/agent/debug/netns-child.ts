// A short `node -e SCRIPT` child inside a pod's netns (connect and the trace probe): the script
// prints the milliseconds it measured and exits 0, or prints why it failed and exits 1. The child
// is killed `timeoutMs` + 2 s after it starts if its own timer did not end it.
import { execInNetns } from '../../netns/exec.js';

export type ChildResult = { ok: true; ms: number | null } | { ok: false; why: string };

export async function runNetnsChild(netnsPath: string, script: string, args: string[], timeoutMs: number): Promise<ChildResult> {
  const r = await execInNetns(netnsPath, process.execPath, ['-e', script, ...args], { timeoutMs: timeoutMs + 2000 });
  const out = r.stdout.trim();
  if (r.code === 0) return { ok: true, ms: Number.isFinite(Number(out)) ? Number(out) : null };
  return { ok: false, why: out || r.stderr.trim().split('\n')[0] || (r.signal ? `killed (${r.signal})` : `exit ${r.code}`) };
}
