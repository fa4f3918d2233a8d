// How the CLI reaches an agent's HTTPS debug endpoint (src/cli/debug/agent-https.ts): the endpoint
// a Node publishes, checked; the certificate pinned by its SHA-256 (a wrong one refused before any
// token is sent); failures worded for "cannot reach the agent of NODE: …".
import t from 'tap';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Node } from '../../src/api/objects.js';
import { agentHttpsClient, httpsFailure, pinnedCertificate, PinError, publishedEndpoint } from '../../src/cli/debug/agent-https.js';
import { loadOrCreateDebugCert } from '../../src/agent/debug-cert.js';

const node = (annotations: Record<string, string>): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', annotations }, spec: {} });
const SHA = 'a'.repeat(64);

t.test('the published endpoint', async (t) => {
  t.same(publishedEndpoint(node({ 'podwire.io/agent-endpoint': 'https://10.0.0.1:10262', 'podwire.io/agent-cert-sha256': SHA })), { ok: true, url: 'https://10.0.0.1:10262', certSha256: SHA });
  t.match(publishedEndpoint(node({})), { ok: false, error: /node n1 publishes no podwire\.io\/agent-endpoint: its agent runs without --debug-listen/ });
  t.match(publishedEndpoint(node({ 'podwire.io/agent-endpoint': 'http://10.0.0.1:10262', 'podwire.io/agent-cert-sha256': SHA })), { ok: false, error: /is not https:\/\/IPV4:PORT/ });
  t.match(publishedEndpoint(node({ 'podwire.io/agent-endpoint': 'https://node1:10262', 'podwire.io/agent-cert-sha256': SHA })), { ok: false, error: /is not https:\/\/IPV4:PORT/ });
  t.match(publishedEndpoint(node({ 'podwire.io/agent-endpoint': 'https://10.0.0.1', 'podwire.io/agent-cert-sha256': SHA })), { ok: false }, 'a port is required');
  t.match(publishedEndpoint(node({ 'podwire.io/agent-endpoint': 'https://10.0.0.1:10262' })), { ok: false, error: /agent-cert-sha256 "" is not a SHA-256/ });
  t.match(publishedEndpoint(node({ 'podwire.io/agent-endpoint': 'https://10.0.0.1:10262', 'podwire.io/agent-cert-sha256': SHA.toUpperCase() })), { ok: false });
});

t.test('failure wording', async (t) => {
  const ep = { node: 'n1', url: 'https://10.0.0.1:10262', certSha256: SHA };
  t.equal(httpsFailure(ep, new Error('GET https://10.0.0.1:10262/v1/status: connect ECONNREFUSED 10.0.0.1:10262')), 'nothing answers at https://10.0.0.1:10262 (agent stopped?)');
  t.match(httpsFailure(ep, new Error('connect ETIMEDOUT 10.0.0.1:10262')), /does not answer .*is the node up and the port open\?/);
  const lab = { ...ep, socketPath: '/run/x/n1/agent-https.sock' };
  t.match(httpsFailure(lab, new Error('connect ENOENT /run/x/n1/agent-https.sock')), /the lab's forwarder socket .* is missing/);
  t.equal(httpsFailure(lab, new Error('socket hang up')), 'nothing answers at https://10.0.0.1:10262 (through the lab\'s forwarder /run/x/n1/agent-https.sock) (agent stopped?)');
});

t.test('pinning against a real TLS server', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-pin-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = loadOrCreateDebugCert({ runDir: dir, nodeName: 'n1', ip: '127.0.0.1' });
  const seen: (string | undefined)[] = [];
  const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"nodeName":"n1"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const right = { node: 'n1', url, certSha256: cert.sha256 };
  t.match(await pinnedCertificate(right, 2000), /^-----BEGIN CERTIFICATE-----\n/);
  const client = await agentHttpsClient(right, 'admin-token', 2000);
  t.same(await client.request('GET', '/v1/status'), { nodeName: 'n1' }, 'the pinned certificate is trusted');
  client.close();
  t.same(seen, ['Bearer admin-token'], 'the admin token is sent');

  const wrong = { node: 'n1', url, certSha256: '0'.repeat(64) };
  const err = await pinnedCertificate(wrong, 2000).catch((e: Error) => e);
  t.ok(err instanceof PinError, 'a certificate with another SHA-256 is refused');
  t.match((err as Error).message, new RegExp(`the agent of node n1 at ${url.replace(/\./g, '\\.')} presented a certificate with SHA-256 ${cert.sha256}, but its Node publishes 0{64} .*refusing it, no token sent`));
  await t.rejects(agentHttpsClient(wrong, 'admin-token', 2000), PinError);
  t.same(seen, ['Bearer admin-token'], 'no request reached the server with the wrong pin');
});
