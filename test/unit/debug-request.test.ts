// The debug routes that act for a pod (ping, connect, explain-hop) answer their failures alike
// (src/agent/debug/request.ts): a bad body 400, an unregistered node 503, a source IP that is not
// this node's pod 404 saying why; all as a Status body. Fastify inject, no kernel: the node has
// not registered, or the source IP is outside its podCIDR (decided before any netns is opened).
import t from 'tap';
import Fastify from 'fastify';
import { registerPingRoutes } from '../../src/agent/debug/ping.js';
import { registerConnectRoutes } from '../../src/agent/debug/connect.js';
import { registerExplainRoutes } from '../../src/agent/debug/explain.js';
import { failure, isStatus, registeredInput, sourcePodNetns } from '../../src/agent/debug/request.js';
import type { Handle } from '../../src/netlink/handle.js';
import type { NetworkInput } from '../../src/agent/network/types.js';

const input = { podCidr: '10.244.1.0/24', clusterCidr: '10.244.0.0/16' } as NetworkInput;
const handle = {} as Handle;

function app(registered: boolean) {
  const a = Fastify();
  const deps = { nodeName: 'node2', handle, agent: { networkInput: () => (registered ? input : undefined) }, proxy: () => undefined };
  registerPingRoutes(a, deps);
  registerConnectRoutes(a, deps);
  registerExplainRoutes(a, deps);
  return a;
}

const bodies = {
  '/v1/debug/ping': { good: { srcIp: '10.244.0.5', dst: '10.244.1.9', count: 1, intervalMs: 10, timeoutMs: 100 }, bad: { srcIp: 'x' } },
  '/v1/debug/connect': { good: { srcIp: '10.244.0.5', dst: '10.96.0.1', port: 80, timeoutMs: 100 }, bad: { srcIp: '10.244.0.5' } },
  '/v1/debug/explain-hop': { good: { src: '10.244.0.5', dst: '10.244.1.9', protocol: 'TCP', iif: 'pod' }, bad: { src: 1 } },
};

t.test('ping, connect, explain-hop: 400, 503, 404 as Status bodies', async (t) => {
  const unregistered = app(false);
  const registered = app(true);
  t.teardown(() => Promise.all([unregistered.close(), registered.close()]));
  for (const [url, b] of Object.entries(bodies)) {
    const bad = await registered.inject({ method: 'POST', url, payload: b.bad });
    t.equal(bad.statusCode, 400, `${url}: bad body`);
    t.match(bad.json(), { kind: 'Status', status: 'Failure', code: 400, message: String });
    const early = await unregistered.inject({ method: 'POST', url, payload: b.good });
    t.equal(early.statusCode, 503, `${url}: not registered`);
    t.match(early.json(), { kind: 'Status', code: 503, message: /node node2 has not registered with the control plane yet/ });
  }
  for (const url of ['/v1/debug/ping', '/v1/debug/connect']) {
    const other = await registered.inject({ method: 'POST', url, payload: bodies[url as '/v1/debug/ping'].good });
    t.equal(other.statusCode, 404, `${url}: another node's pod`);
    t.match(other.json(), { kind: 'Status', code: 404, message: 'no pod with IP 10.244.0.5 on node node2: 10.244.0.5 is not in its podCIDR 10.244.1.0/24; is the pod on another node?' });
  }
  const explained = await registered.inject({ method: 'POST', url: '/v1/debug/explain-hop', payload: bodies['/v1/debug/explain-hop'].good });
  t.equal(explained.statusCode, 200, 'explain: a source that is not here is a broken hop, not a 404');
  t.match(explained.json(), { hops: [{ node: 'node2', kind: 'pod', name: '10.244.0.5', ok: false, detail: /not in node node2's podCIDR 10\.244\.1\.0\/24/ }] });
});

t.test('registeredInput, sourcePodNetns, failure', async (t) => {
  t.same(failure(404, 'm'), { kind: 'Status', status: 'Failure', code: 404, message: 'm' });
  t.ok(isStatus(registeredInput({ nodeName: 'n', agent: { networkInput: () => undefined } })));
  t.equal(registeredInput({ nodeName: 'n', agent: { networkInput: () => input } }), input);
  const s = sourcePodNetns({ nodeName: 'n', handle, agent: { networkInput: () => input } }, '10.244.7.7', '/run/netns/x');
  t.ok(isStatus(s) && s.code === 404 && /not in its podCIDR/.test(s.message), JSON.stringify(s));
});
