// Small helpers the benchmarks share.

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A comma-separated flag value: each item one of `allowed`, deduplicated; a usage error otherwise. */
export function listFlag(raw: string, allowed: string[], flag: string): string[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((x) => !allowed.includes(x));
  if (!items.length || bad.length) throw new RangeError(`--${flag}: unknown ${JSON.stringify(bad.join(',') || raw)} (choose from ${allowed.join(',')})`);
  return [...new Set(items)];
}
