// Who may use the agent's HTTPS debug endpoint (debug-endpoint.ts): a bearer token that the
// control plane's TokenReview says belongs to an admin (group system:masters), as a kubelet
// checks the tokens its API receives (webhook token authentication). The agent asks with its own
// node token; positive answers are cached for 10 s (bounded), negative ones never (a token that
// was just issued works at once), so a revoked admin token stops working within 10 s.
import { createHash } from 'node:crypto';
import type { ApiClient } from '../client/api-client.js';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
export const ADMIN_GROUP = 'system:masters';
const CACHE_MS = 10_000;
const CACHE_MAX = 1000;

export interface ReviewStatus {
  authenticated: boolean;
  user?: { username: string; groups?: string[] };
  error?: string;
}

export type AccessVerdict = { ok: true; username: string } | { ok: false; code: 401 | 403; message: string };

/** The token of an "Authorization: Bearer T" header; undefined without one. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1] : undefined;
}

export const NO_TOKEN_MESSAGE = 'Unauthorized: send "Authorization: Bearer TOKEN" with an admin token of the cluster (podwire sends the one of its client config)';

/** The answer for a reviewed token: admins pass, other users get 403, unknown tokens 401. */
export function accessVerdict(review: ReviewStatus): AccessVerdict {
  if (!review.authenticated || !review.user) return { ok: false, code: 401, message: `Unauthorized: the control plane does not know this token${review.error ? ` (${review.error})` : ''}` };
  const { username, groups = [] } = review.user;
  if (!groups.includes(ADMIN_GROUP)) return { ok: false, code: 403, message: `Forbidden: user ${JSON.stringify(username)} may not use the agent's debug API (admins only: group ${ADMIN_GROUP})` };
  return { ok: true, username };
}

type Now = () => number;

/** Reviews tokens with the control plane (with the agent's node token), caching positive answers. */
export class TokenReviewer {
  private readonly cache = new Map<string, { status: ReviewStatus; until: number }>();

  constructor(
    private readonly client: Pick<ApiClient, 'request'>,
    private readonly now: Now = Date.now,
  ) {}

  async review(token: string): Promise<ReviewStatus> {
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) return hit.status;
    this.cache.delete(key);
    const answer = await this.client.request<{ status?: ReviewStatus }>('POST', TOKEN_REVIEW_PATH, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
    const status = answer?.status;
    if (!status || typeof status.authenticated !== 'boolean') throw new Error(`the control plane's TokenReview answer has no status.authenticated`);
    if (status.authenticated) {
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, { status, until: this.now() + CACHE_MS });
    }
    return status;
  }

  get cached(): number {
    return this.cache.size;
  }
}
