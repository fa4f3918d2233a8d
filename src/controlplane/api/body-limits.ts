// Limits on request bodies, checked before any handler or validator walks them: every walk that
// recurses (merge patch, strategic directives, JSON.stringify for the store and in messages) is
// then bounded, and a hostile body is a 4xx instead of "Maximum call stack size exceeded".
import { ApiError } from './status.js';

/** kube-apiserver's request size limit (3 MiB); larger bodies are 413. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** No object podwire stores nests more than ~8 levels; managedFields, which is dropped, stays far below this. */
export const MAX_BODY_DEPTH = 64;

/** The deepest nesting of objects and lists in a parsed JSON value ({} is 1), found without recursion; stops past `limit`. */
export function nestingDepth(value: unknown, limit = Infinity): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

export function checkBodyDepth(body: unknown): void {
  if (nestingDepth(body, MAX_BODY_DEPTH) > MAX_BODY_DEPTH) {
    throw new ApiError('BadRequest', `request body nests deeper than ${MAX_BODY_DEPTH} levels of objects and lists`);
  }
}

export const bodyTooLarge = (): ApiError => new ApiError('RequestEntityTooLarge', `request body is larger than the limit of ${MAX_BODY_BYTES} bytes (3 MiB)`);
