// Close matches for a mistyped name ("nod1" → node1), for every "unknown X" message.

/** Edit distance (insert, delete, substitute: 1 each), two rows of the classic table. */
export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidates close to `name`, closest first: within an edit distance of a third of the
 * longer name (at least 2), or containing it / contained in it ignoring case. At most `max`.
 */
export function closeMatches(name: string, candidates: readonly string[], max = 3): string[] {
  const lower = name.toLowerCase();
  return candidates
    .map((c) => {
      const cl = c.toLowerCase();
      const distance = levenshtein(lower, cl);
      const near = distance <= Math.max(2, Math.floor(Math.max(lower.length, cl.length) / 3)) || (lower.length >= 2 && (cl.includes(lower) || lower.includes(cl)));
      return { c, distance, near };
    })
    .filter((x) => x.near && x.c !== name)
    .sort((x, y) => x.distance - y.distance || x.c.localeCompare(y.c))
    .slice(0, max)
    .map((x) => x.c);
}

/** `unknown node "nod1"; did you mean node1? (known: node1, node2)`, or with none known, how to list them. */
export function unknownName(kind: string, name: string, candidates: readonly string[], howToList?: string): string {
  const close = closeMatches(name, candidates);
  const mean = close.length ? `; did you mean ${close.join(' or ')}?` : '';
  const known = candidates.length ? ` (known: ${candidates.slice(0, 20).join(', ')}${candidates.length > 20 ? ', …' : ''})` : howToList ? ` (${howToList})` : ` (there are none)`;
  return `unknown ${kind} ${JSON.stringify(name)}${mean}${known}`;
}
