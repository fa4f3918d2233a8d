// POST /apis/authentication.k8s.io/v1/tokenreviews (src/controlplane/api/token-review.ts): an
// admin token reviews as podwire:admin, a node token as system:node:NAME, an unknown or revoked
// one is unauthenticated; admin and node tokens may ask, nobody else; a malformed body is 400.
import t from 'tap';
import { reviewStatus, reviewToken, TOKEN_REVIEW_PATH } from '../../src/controlplane/api/token-review.js';
import { ADMIN_TOKEN, testServer } from '../lib/controlplane.js';

const review = (token: unknown) => ({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });

t.test('the pure parts', async (t) => {
  t.same(reviewToken(review('abc')), { token: 'abc' });
  t.same(reviewToken({ spec: { token: 'abc' } }), { token: 'abc' }, 'apiVersion and kind may be left out');
  t.match(reviewToken(review('')), { errors: [{ field: 'spec.token', message: /Required value/ }] });
  t.match(reviewToken({ kind: 'TokenReview' }), { errors: [{ field: 'spec.token' }] });
  t.match(reviewToken(review('a b')), { errors: [{ field: 'spec.token', message: /no whitespace/ }] });
  t.match(reviewToken(review('x'.repeat(5000))), { errors: [{ field: 'spec.token', message: /at most 4096/ }] });
  t.match(reviewToken({ ...review('a'), apiVersion: 'v1' }), { errors: [{ field: 'apiVersion' }] });
  t.match(reviewToken({ ...review('a'), kind: 'Pod' }), { errors: [{ field: 'kind' }] });
  t.match(reviewToken([]), { errors: [{ field: '' }] });
  t.same(reviewStatus({ actor: { kind: 'admin' } }), { authenticated: true, user: { username: 'podwire:admin', groups: ['system:masters', 'system:authenticated'] } });
  t.same(reviewStatus({ actor: { kind: 'node', nodeName: 'n1' } }), { authenticated: true, user: { username: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] } });
  t.same(reviewStatus({ error: 'revoked' }), { authenticated: false, error: 'revoked' });
});

t.test('the API', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  const n1 = await s.nodeToken('n1');
  const n2 = await s.nodeToken('n2');

  const admin = await s.call('POST', TOKEN_REVIEW_PATH, review(ADMIN_TOKEN));
  t.equal(admin.statusCode, 201, admin.body);
  t.same(admin.json, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: {}, spec: {}, status: { authenticated: true, user: { username: 'podwire:admin', groups: ['system:masters', 'system:authenticated'] } } }, 'admin token; the token is not echoed');

  const byNode = await s.call('POST', TOKEN_REVIEW_PATH, review(n2), n1);
  t.equal(byNode.statusCode, 201, 'a node token may review (an agent checks with its own credentials)');
  t.same(byNode.json.status, { authenticated: true, user: { username: 'system:node:n2', groups: ['system:nodes', 'system:authenticated'] } });
  const adminByNode = await s.call('POST', TOKEN_REVIEW_PATH, review(ADMIN_TOKEN), n1);
  t.equal(adminByNode.json.status.user.username, 'podwire:admin', 'a node learns an admin token is an admin token');

  const bad = await s.call('POST', TOKEN_REVIEW_PATH, review('pwa_not-a-token'), n1);
  t.equal(bad.statusCode, 201);
  t.equal(bad.json.status.authenticated, false, 'an unknown token is not authenticated');
  t.match(bad.json.status.error, /not valid/);
  t.notOk(bad.json.status.user);

  const revoked = await s.call('DELETE', '/api/v1/nodes/n2/token');
  t.equal(revoked.statusCode, 200);
  t.equal((await s.call('POST', TOKEN_REVIEW_PATH, review(n2))).json.status.authenticated, false, 'a revoked node token is no longer authenticated');

  const anon = await s.call('POST', TOKEN_REVIEW_PATH, review(ADMIN_TOKEN), null);
  t.equal(anon.statusCode, 401, 'no token: 401, whatever the review asks about');
  const wrongCaller = await s.call('POST', TOKEN_REVIEW_PATH, review(ADMIN_TOKEN), 'pwa_nope');
  t.equal(wrongCaller.statusCode, 401);

  const invalid = await s.call('POST', TOKEN_REVIEW_PATH, { kind: 'TokenReview', spec: {} });
  t.equal(invalid.statusCode, 400, invalid.body);
  t.equal(invalid.json.reason, 'Invalid');
  t.match(invalid.json.message, /spec\.token/);
});
