// The agent's HTTPS debug endpoint (src/agent/debug-endpoint.ts, debug-access.ts, debug-cert.ts):
// the access rules (401 without or with an unknown token, 403 for a non-admin, 200 for an admin,
// 503 when the control plane cannot be asked), the review cache (positive answers 10 s, negative
// never), the certificate made once and reused, and the Node annotations that publish it.
import t from 'tap';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { accessVerdict, bearerToken, TokenReviewer, type ReviewStatus } from '../../src/agent/debug-access.js';
import { certSha256, loadOrCreateDebugCert } from '../../src/agent/debug-cert.js';
import { debugEndpointUrl, parseDebugListen, startDebugEndpoint } from '../../src/agent/debug-endpoint.js';
import { nodeBody } from '../../src/agent/node-object.js';

const ADMIN: ReviewStatus = { authenticated: true, user: { username: 'podwire:admin', groups: ['system:masters', 'system:authenticated'] } };
const NODE: ReviewStatus = { authenticated: true, user: { username: 'system:node:n2', groups: ['system:nodes', 'system:authenticated'] } };

t.test('bearer tokens and verdicts', async (t) => {
  t.equal(bearerToken('Bearer abc'), 'abc');
  t.equal(bearerToken('bearer abc '), 'abc');
  t.equal(bearerToken('Basic abc'), undefined);
  t.equal(bearerToken(undefined), undefined);
  t.same(accessVerdict(ADMIN), { ok: true, username: 'podwire:admin' });
  t.match(accessVerdict(NODE), { ok: false, code: 403, message: /user "system:node:n2" may not use the agent's debug API \(admins only/ });
  t.match(accessVerdict({ authenticated: false, error: 'revoked' }), { ok: false, code: 401, message: /does not know this token \(revoked\)/ });
});

t.test('the review cache: positive answers for 10 s, negative ones never', async (t) => {
  let now = 1_000_000;
  const asked: string[] = [];
  const answers: Record<string, ReviewStatus> = { admin: ADMIN, bad: { authenticated: false, error: 'not valid' } };
  const client = { request: async (_m: string, p: string, body?: unknown) => {
    t.equal(p, '/apis/authentication.k8s.io/v1/tokenreviews');
    const token = (body as { spec: { token: string } }).spec.token;
    asked.push(token);
    return { status: answers[token] } as never;
  } };
  const r = new TokenReviewer(client as never, () => now);
  t.same(await r.review('admin'), ADMIN);
  t.same(await r.review('admin'), ADMIN);
  t.same(asked, ['admin'], 'the second review of an admin token is cached');
  now += 10_001;
  await r.review('admin');
  t.same(asked, ['admin', 'admin'], 'asked again after 10 s');
  await r.review('bad');
  await r.review('bad');
  t.same(asked, ['admin', 'admin', 'bad', 'bad'], 'negative answers are not cached');
  answers.bad = NODE;
  t.same(await r.review('bad'), NODE, 'so a token that becomes valid works at once');
  const broken = new TokenReviewer({ request: async () => ({}) } as never);
  await t.rejects(broken.review('x'), /no status\.authenticated/);
});

t.test('the certificate: made once in the run dir (key 0600), reused, its SHA-256', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-dbgcert-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  const a = loadOrCreateDebugCert({ runDir, nodeName: 'n1', ip: '127.0.0.1' });
  t.match(a.sha256, /^[0-9a-f]{64}$/);
  t.equal(fs.statSync(path.join(runDir, 'debug-tls.key')).mode & 0o777, 0o600);
  const b = loadOrCreateDebugCert({ runDir, nodeName: 'n1', ip: '127.0.0.1' });
  t.equal(b.sha256, a.sha256, 'reused on the next start');
  t.equal(certSha256(a.cert), a.sha256);
  const given = loadOrCreateDebugCert({ certFile: a.certFile, keyFile: path.join(runDir, 'debug-tls.key'), runDir: '/nonexistent', nodeName: 'n1', ip: '127.0.0.1' });
  t.equal(given.sha256, a.sha256, '--debug-tls-cert/--debug-tls-key');
  t.throws(() => loadOrCreateDebugCert({ certFile: '/nonexistent.crt', keyFile: '/nonexistent.key', runDir, nodeName: 'n1', ip: '127.0.0.1' }), /--debug-tls-cert \/nonexistent\.crt/);
});

t.test('--debug-listen and the published URL', async (t) => {
  t.same(parseDebugListen(':10262', '192.0.2.11'), { host: '192.0.2.11', port: 10262 });
  t.same(parseDebugListen('0.0.0.0:10262', '192.0.2.11'), { host: '0.0.0.0', port: 10262 });
  t.equal(parseDebugListen('off', '192.0.2.11'), undefined);
  t.throws(() => parseDebugListen('node1:10262', '192.0.2.11'), /expected IPV4:PORT or :PORT/);
  t.throws(() => parseDebugListen('1..2:10262', '192.0.2.11'), /expected IPV4:PORT/);
  t.throws(() => parseDebugListen(':99999', '192.0.2.11'), /expected IPV4:PORT/);
  t.equal(debugEndpointUrl({ host: '0.0.0.0', port: 10262 }, '192.0.2.11'), 'https://192.0.2.11:10262');
  t.equal(debugEndpointUrl({ host: '192.0.2.11', port: 10262 }, '192.0.2.11'), 'https://192.0.2.11:10262');
});

t.test('the Node publishes the endpoint, and drops it when there is none', async (t) => {
  const reg = { nodeName: 'n1', underlay: { ip: '192.0.2.11', cidr: '192.0.2.11/24', ifname: 'eth0', ifindex: 2, mtu: 1500 }, vtepMac: '0e:00:00:00:00:01', backend: 'vxlan' as const };
  const published = nodeBody({ ...reg, debugEndpoint: { url: 'https://192.0.2.11:10262', certSha256: 'ab'.repeat(32) } });
  t.equal(published.metadata.annotations!['podwire.io/agent-endpoint'], 'https://192.0.2.11:10262');
  t.equal(published.metadata.annotations!['podwire.io/agent-cert-sha256'], 'ab'.repeat(32));
  const without = nodeBody(reg, published);
  t.notOk('podwire.io/agent-endpoint' in without.metadata.annotations!, 'a restart without --debug-listen removes the stale endpoint');
  t.notOk('podwire.io/agent-cert-sha256' in without.metadata.annotations!);
});

t.test('the endpoint over HTTPS: 401, 403, 200, 503', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-dbgep-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  const cert = loadOrCreateDebugCert({ runDir, nodeName: 'n1', ip: '127.0.0.1' });
  let down = false;
  const reviewer = { review: async (token: string): Promise<ReviewStatus> => {
    if (down) throw new Error('connect ECONNREFUSED 192.0.2.2:6443');
    return token === 'admin' ? ADMIN : token === 'node' ? NODE : { authenticated: false, error: 'not valid' };
  } };
  const ep = await startDebugEndpoint({ listen: { host: '127.0.0.1', port: 0 }, tls: cert, reviewer, state: () => ({ nodeName: 'n1' }) });
  t.teardown(() => ep.close());
  const get = (p: string, token?: string) => new Promise<{ code: number; body: any }>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: ep.address.port, path: p, ca: cert.cert, checkServerIdentity: () => undefined, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve({ code: res.statusCode!, body: JSON.parse(b) }));
    }).on('error', reject);
  });
  const none = await get('/v1/status');
  t.equal(none.code, 401, 'no token');
  t.match(none.body, { kind: 'Status', reason: 'Unauthorized', message: /Authorization: Bearer/ });
  t.same([(await get('/v1/status', 'nope')).code, (await get('/v1/status', 'nope')).body.reason], [401, 'Unauthorized'], 'unknown token');
  const node = await get('/v1/status', 'node');
  t.same([node.code, node.body.reason], [403, 'Forbidden'], 'a node token');
  t.match(node.body.message, /system:node:n2/);
  const admin = await get('/v1/status', 'admin');
  t.same([admin.code, admin.body], [200, { nodeName: 'n1' }], 'an admin token');
  t.equal((await get('/v1/debug/nothing', 'nope')).code, 401, 'unknown paths are behind the check too');
  down = true;
  const unavailable = await get('/v1/status', 'admin');
  t.same([unavailable.code, unavailable.body.reason], [503, 'ServiceUnavailable']);
  t.match(unavailable.body.message, /cannot check the token with the control plane: connect ECONNREFUSED/);
});
