// POST /apis/authentication.k8s.io/v1/tokenreviews: who a bearer token belongs to, in Kubernetes'
// TokenReview shape, so an agent can check the tokens its debug endpoint receives the way a
// kubelet does (webhook token authentication). Callable by admin and node tokens (an agent reviews
// with its own node token), nothing else. The answer:
//   status {authenticated: true, user: {username, groups}}   username "podwire:admin" (groups
//          system:masters, system:authenticated) or "system:node:NAME" (system:nodes, …)
//   status {authenticated: false, error}                      an unknown or revoked token
// The token is not echoed back (spec is returned empty). Not announced in discovery.
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Actor, Authenticator } from './auth.js';
import { actorOf } from './routes.js';
import { ApiError, invalidError } from './status.js';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
export const ADMIN_USERNAME = 'podwire:admin';
export const ADMIN_GROUPS = ['system:masters', 'system:authenticated'];
export const NODE_GROUPS = ['system:nodes', 'system:authenticated'];
const MAX_TOKEN_BYTES = 4096;

export interface TokenReviewStatus {
  authenticated: boolean;
  user?: { username: string; groups: string[] };
  error?: string;
}

export interface TokenReview {
  apiVersion: 'authentication.k8s.io/v1';
  kind: 'TokenReview';
  metadata: Record<string, never>;
  spec: Record<string, never>;
  status: TokenReviewStatus;
}

/** The token of a TokenReview request body, or the field errors that make it invalid. */
export function reviewToken(body: unknown): { token: string } | { errors: { field: string; message: string }[] } {
  const b = body as { apiVersion?: unknown; kind?: unknown; spec?: { token?: unknown } } | null;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return { errors: [{ field: '', message: 'the body must be a TokenReview object: {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "..."}}' }] };
  const errors: { field: string; message: string }[] = [];
  if (b.apiVersion !== undefined && b.apiVersion !== 'authentication.k8s.io/v1') errors.push({ field: 'apiVersion', message: `Unsupported value: ${JSON.stringify(b.apiVersion)}: supported values: "authentication.k8s.io/v1"` });
  if (b.kind !== undefined && b.kind !== 'TokenReview') errors.push({ field: 'kind', message: `Unsupported value: ${JSON.stringify(b.kind)}: supported values: "TokenReview"` });
  const token = b.spec?.token;
  if (typeof token !== 'string' || token === '') errors.push({ field: 'spec.token', message: 'Required value: the bearer token to review' });
  else if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) errors.push({ field: 'spec.token', message: `Too long: must have at most ${MAX_TOKEN_BYTES} bytes` });
  else if (/\s/.test(token)) errors.push({ field: 'spec.token', message: 'Invalid value: a token has no whitespace' });
  return errors.length ? { errors } : { token: token as string };
}

/** The review's status for an authenticated actor, or for the reason a token was refused. */
export function reviewStatus(result: { actor: Actor } | { error: string }): TokenReviewStatus {
  if ('error' in result) return { authenticated: false, error: result.error };
  const a = result.actor;
  return { authenticated: true, user: a.kind === 'admin' ? { username: ADMIN_USERNAME, groups: ADMIN_GROUPS } : { username: `system:node:${a.nodeName}`, groups: NODE_GROUPS } };
}

const Body = Type.Object({}, { additionalProperties: true });

export function registerTokenReview(app: FastifyInstance, auth: Authenticator): void {
  app.post(TOKEN_REVIEW_PATH, { schema: { body: Body } }, async (req, reply) => {
    // Any authenticated caller (the auth hook has run): admin or node. Both kinds may review.
    actorOf(req);
    const parsed = reviewToken(req.body);
    if ('errors' in parsed) throw invalidError('TokenReview', { kind: 'tokenreviews' }, parsed.errors);
    let status: TokenReviewStatus;
    try {
      status = reviewStatus({ actor: await auth.authenticate(`Bearer ${parsed.token}`) });
    } catch (e) {
      if (!(e instanceof ApiError) || e.reason !== 'Unauthorized') throw e;
      status = reviewStatus({ error: e.message.replace(/^Unauthorized: /, '') });
    }
    const review: TokenReview = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: {}, spec: {}, status };
    return reply.code(201).send(review);
  });
}
