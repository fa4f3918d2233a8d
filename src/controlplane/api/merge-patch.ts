// JSON merge patch (RFC 7386): what `kubectl patch --type merge` sends, and a sound reading of the
// strategic merge patches `kubectl label` / `annotate` send (they only touch metadata maps).
// Pure; never mutates its inputs.

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function applyMergePatch<T>(target: T, patch: unknown): T {
  return merge(target, patch) as T;
}

function merge(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = merge(out[key], value);
  }
  return out;
}

/**
 * Strategic merge patch directives ($patch, $retainKeys, $setElementOrder/…, $deleteFromPrimitiveList/…)
 * change list semantics that a merge patch cannot express: refuse them rather than misapply them.
 */
export function findStrategicDirective(patch: unknown, path = ''): string | undefined {
  if (Array.isArray(patch)) {
    for (let i = 0; i < patch.length; i++) {
      const found = findStrategicDirective(patch[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (!isObject(patch)) return undefined;
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) return path ? `${path}.${key}` : key;
    const found = findStrategicDirective(value, path ? `${path}.${key}` : key);
    if (found) return found;
  }
  return undefined;
}
