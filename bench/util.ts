// Small helpers the benchmarks share.
import os from 'node:os';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A comma-separated flag value: each item one of `allowed`, deduplicated; a usage error otherwise. */
export function listFlag(raw: string, allowed: string[], flag: string): string[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((x) => !allowed.includes(x));
  if (!items.length || bad.length) throw new RangeError(`--${flag}: unknown ${JSON.stringify(bad.join(',') || raw)} (choose from ${allowed.join(',')})`);
  return [...new Set(items)];
}

/** Rows as aligned columns: the first left-aligned, the others right-aligned, two spaces apart. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

/** "N cores (CPU), kernel K, node V": the start of every report's machine line. */
export function machine(): string {
  const cpu = os.cpus()[0]?.model?.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `${os.availableParallelism()} cores (${cpu}), kernel ${os.release()}, node ${process.version}`;
}
