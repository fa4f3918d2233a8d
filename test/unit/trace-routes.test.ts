// The agent's trace routes without a kernel (fastify inject, a fake nft runner): bad bodies 400, a
// table nft refuses 500 naming it (and nothing kept: stop is then 404), an unknown trace 404, a
// probe before registration 503 and from another node's pod 404, all as Status bodies.
import t from 'tap';
import Fastify from 'fastify';
import { registerTraceRoutes } from '../../src/agent/debug/trace.js';
import type { CommandRunner } from '../../src/exec/runner.js';
import type { Handle } from '../../src/netlink/handle.js';
import type { NetworkInput } from '../../src/agent/network/types.js';

const input = { podCidr: '10.244.1.0/24', clusterCidr: '10.244.0.0/16' } as NetworkInput;

function app(registered: boolean, runner: CommandRunner) {
  const a = Fastify();
  registerTraceRoutes(a, { nodeName: 'node2', handle: {} as Handle, agent: { networkInput: () => (registered ? input : undefined) }, runner });
  return a;
}

t.test('trace start / stop / probe failures', async (t) => {
  const ran: { cmd: string; args: readonly string[]; input?: string }[] = [];
  const refusing: CommandRunner = { run: (cmd, args, inp) => (ran.push({ cmd, args, ...(inp !== undefined ? { input: inp } : {}) }), { code: 1, stdout: '', stderr: 'Error: Could not process rule: Operation not permitted' }) };
  const a = app(true, refusing);
  const early = app(false, refusing);
  t.same(ran.map((r) => [r.cmd, ...r.args].join(' ')), ['nft list tables inet'], 'the first registration in a process sweeps stale trace tables (a refusing nft is only logged), the second does not');
  ran.length = 0;
  t.teardown(() => Promise.all([a.close(), early.close()]));
  const post = (x: typeof a, url: string, payload: unknown) => x.inject({ method: 'POST', url, payload: payload as object });

  const bad = await post(a, '/v1/debug/trace/start', { id: 'abcd', src: '10.244.1.2', sport: 0, proto: 'TCP' });
  t.equal(bad.statusCode, 400);
  t.match(bad.json(), { kind: 'Status', status: 'Failure', code: 400, message: /^sport must be an integer 1-65535/ });
  t.same(ran, [], 'nothing run for a bad body');

  const refused = await post(a, '/v1/debug/trace/start', { id: 'abcd1234', src: '10.244.1.2', sport: 20001, proto: 'TCP' });
  t.equal(refused.statusCode, 500);
  t.match(refused.json(), { code: 500, message: /^trace abcd1234 on node node2: nft -f - \(create table inet podwire-trace-abcd1234\) exited 1: Error: Could not process rule/ });
  t.match(ran[0], { cmd: 'nft', args: ['-f', '-'], input: /^create table inet podwire-trace-abcd1234\n/ });
  t.equal((await post(a, '/v1/debug/trace/stop', { id: 'abcd1234' })).statusCode, 404, 'a trace that did not start is not kept');

  const unknown = await post(a, '/v1/debug/trace/stop', { id: 'zzzz9999' });
  t.equal(unknown.statusCode, 404);
  t.match(unknown.json(), { message: /^no trace zzzz9999 on node node2/ });
  t.equal((await post(a, '/v1/debug/trace/stop', { id: '../x' })).statusCode, 400);

  const probe = { srcIp: '10.244.0.5', sport: 20001, dst: '10.244.1.9', dport: 8080, proto: 'TCP', timeoutMs: 100 };
  t.equal((await post(a, '/v1/debug/trace/probe', { ...probe, proto: 'ICMP' })).statusCode, 400);
  const notHere = await post(a, '/v1/debug/trace/probe', probe);
  t.equal(notHere.statusCode, 404);
  t.match(notHere.json(), { message: /10\.244\.0\.5 is not in its podCIDR 10\.244\.1\.0\/24/ });
  const notYet = await post(early, '/v1/debug/trace/probe', probe);
  t.equal(notYet.statusCode, 503);
});
