// Request bodies are UTF-8 JSON: a body declared in another charset is refused with 415
// (Kubernetes Status, reason UnsupportedMediaType) instead of being parsed as UTF-8.
import t from 'tap';
import { node, testServer } from '../lib/controlplane.js';

t.test('a charset other than UTF-8 is 415; utf-8 (any case, quoted) and none are accepted', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  const post = (name: string, contentType: string) => s.call('POST', '/api/v1/nodes', node(name), undefined, { 'content-type': contentType });
  for (const ct of ['application/json; charset=utf-16', 'application/json;charset=ISO-8859-1', 'application/json; charset="utf-16le"', 'application/json; charset=']) {
    const r = await post('refused', ct);
    t.equal(r.statusCode, 415, `${ct}: ${r.body}`);
    t.match(r.json, { kind: 'Status', status: 'Failure', reason: 'UnsupportedMediaType', code: 415, message: /charset/ });
  }
  t.equal((await s.call('GET', '/api/v1/nodes/refused')).statusCode, 404, 'nothing stored');
  const patch = await s.call('PATCH', '/api/v1/nodes/x', { metadata: { labels: { a: 'b' } } }, undefined, { 'content-type': 'application/merge-patch+json; charset=utf-16' });
  t.equal(patch.statusCode, 415, 'patch bodies too');

  for (const [i, ct] of ['application/json', 'application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json; charset="utf-8"', 'application/json ; Charset = utf-8'].entries()) {
    const r = await post(`ok-${i}`, ct);
    t.equal(r.statusCode, 201, `${ct}: ${r.body}`);
  }
});
