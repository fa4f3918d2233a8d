// For helper processes a test spawns (workers, writers): a test that dies or times out cannot kill
// them, so they ask this and stop by themselves once their parent is gone, or after a minute.
const parentPid = process.ppid;
const deadline = Date.now() + 60_000;

export function parentAlive(): boolean {
  if (Date.now() > deadline) return false;
  try {
    process.kill(parentPid, 0);
    return true;
  } catch {
    return false;
  }
}
