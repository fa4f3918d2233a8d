import t from 'tap';
import {
  allocateNodePort,
  allocateServiceNodePorts,
  emptyNodePortState,
  isNodePortAllocated,
  nodePortUsage,
  parseNodePortConfig,
  parseNodePortState,
  releaseNodePort,
  releaseServiceNodePorts,
  type NodePortState,
} from '../../src/controlplane/alloc/node-port.js';
import { mulberry32 } from '../lib/prng.js';

t.test('defaults 30000-32767, round robin, requested ports, exhaustion', async (t) => {
  const layout = parseNodePortConfig();
  t.same([layout.first, layout.last, layout.size], [30000, 32767, 2768]);
  const small = parseNodePortConfig({ nodePortRange: '30000-30002' });
  let state = emptyNodePortState(small);
  const take = (req?: number) => {
    const r = allocateNodePort(small, state, req);
    state = r.state;
    return r.nodePort;
  };
  t.equal(take(), 30000);
  t.equal(take(30002), 30002);
  t.equal(take(), 30001);
  t.throws(() => take(), { name: 'AllocError', code: 'exhausted', message: 'NodePort range 30000-30002 has no free port (3 in use)' });
  state = releaseNodePort(small, state, 30000).state;
  state = releaseNodePort(small, state, 30002).state;
  t.equal(take(), 30002, 'after the cursor (30001) first, not the lower released one');
  t.equal(take(), 30000);
  t.same(nodePortUsage(small, state), { used: 3, total: 3 });
});

t.test('requested ports are validated', async (t) => {
  const layout = parseNodePortConfig();
  const state = allocateNodePort(layout, emptyNodePortState(layout), 30080).state;
  const cases: Array<[number, string, RegExp]> = [
    [30080, 'taken', /provided port is already allocated/],
    [29999, 'invalid', /not in the valid range. The range of valid ports is 30000-32767/],
    [32768, 'invalid', /not in the valid range/],
    [30080.5, 'invalid', /not in the valid range/],
  ];
  for (const [port, code, message] of cases) t.throws(() => allocateNodePort(layout, state, port), { code, message }, String(port));
  t.ok(isNodePortAllocated(layout, state, 30080));
  t.notOk(isNodePortAllocated(layout, state, 80));
  t.same(releaseNodePort(layout, state, 80), { state, released: false });
});

t.test('one service: one nodePort per port number, shared across protocols (as Kubernetes)', async (t) => {
  const layout = parseNodePortConfig();
  let state = emptyNodePortState(layout);
  const dns = allocateServiceNodePorts(layout, state, [
    { port: 53, protocol: 'UDP' },
    { port: 53, protocol: 'TCP' },
    { port: 9153, protocol: 'TCP' },
  ]);
  t.same(dns.nodePorts, [30000, 30000, 30001]);
  state = dns.state;
  t.same(nodePortUsage(layout, state).used, 2);
  const explicit = allocateServiceNodePorts(layout, state, [
    { port: 80, protocol: 'TCP', nodePort: 30080 },
    { port: 80, protocol: 'UDP' },
    { port: 443, protocol: 'TCP', nodePort: 30443 },
    { port: 443, protocol: 'UDP', nodePort: 30443 },
    { port: 8080, protocol: 'TCP', nodePort: 0 },
  ]);
  t.same(explicit.nodePorts, [30080, 30080, 30443, 30443, 30002]);
  state = explicit.state;
  t.throws(() => allocateServiceNodePorts(layout, state, [{ port: 1, protocol: 'TCP', nodePort: 30080 }]), { code: 'taken' }, 'another service, even another protocol, cannot share');
  const before = JSON.stringify(state);
  t.throws(
    () => allocateServiceNodePorts(layout, state, [{ port: 1, protocol: 'TCP', nodePort: 31000 }, { port: 2, protocol: 'TCP', nodePort: 31000 }]),
    { code: 'invalid', message: /duplicate nodePort for protocol TCP/ },
  );
  t.equal(JSON.stringify(state), before, 'all or nothing: the state is untouched');
  state = releaseServiceNodePorts(layout, state, explicit.nodePorts);
  t.same(nodePortUsage(layout, state).used, 2);
  t.notOk(isNodePortAllocated(layout, state, 30443));
});

t.test('bad ranges and round trip', async (t) => {
  for (const r of ['30000', '0-10', '10-70000', '300-200', ' 1-2', 'a-b', '1-2-3']) {
    t.throws(() => parseNodePortConfig({ nodePortRange: r }), { code: 'config', message: /expected FIRST-LAST/ }, r);
  }
  t.equal(parseNodePortConfig({ nodePortRange: '080-90' }).text, '80-90', 'canonical text');
  const layout = parseNodePortConfig();
  let state = emptyNodePortState(layout);
  for (let i = 0; i < 3; i++) state = allocateNodePort(layout, state).state;
  const back = parseNodePortState(JSON.parse(JSON.stringify(state)), layout);
  t.same(back, state);
  t.equal(allocateNodePort(layout, back).nodePort, 30003);
  const bad = (patch: Partial<Record<keyof NodePortState, unknown>>, message: RegExp) =>
    t.throws(() => parseNodePortState({ ...state, ...patch }, layout), { code: 'state', message }, JSON.stringify(patch));
  bad({ version: 3 }, /version 1/);
  bad({ range: '30000-32000' }, /cannot change/);
  bad({ cursor: 2768 }, /cursor/);
  bad({ taken: 'AA==' }, /expected 346/);
  const three = parseNodePortConfig({ nodePortRange: '30000-30002' });
  t.throws(() => parseNodePortState({ version: 1, range: '30000-30002', taken: Buffer.from([0xf0]).toString('base64'), cursor: 0 }, three), { code: 'state', message: /bit 3 set past the last entry 2/ });
});

t.test('10,000 random allocate/request/release operations keep the invariants', async (t) => {
  const layout = parseNodePortConfig({ nodePortRange: '30000-30099' });
  const random = mulberry32(7);
  let state = emptyNodePortState(layout);
  const held = new Set<number>();
  let exhausted = 0;
  for (let op = 0; op < 10_000; op++) {
    const roll = random();
    if (roll < 0.45) {
      try {
        const r = allocateNodePort(layout, state);
        if (held.has(r.nodePort)) t.fail(`duplicate ${r.nodePort}`);
        let want = -1; // naive round robin model
        for (let k = 1; k <= 100 && want < 0; k++) if (!held.has(30000 + ((state.cursor + k) % 100))) want = 30000 + ((state.cursor + k) % 100);
        if (r.nodePort !== want) t.fail(`got ${r.nodePort}, model says ${want}`);
        held.add(r.nodePort);
        state = r.state;
      } catch (err) {
        if ((err as { code?: string }).code !== 'exhausted' || held.size !== 100) throw err;
        exhausted++;
      }
    } else if (roll < 0.6) {
      const port = 29990 + Math.floor(random() * 120);
      try {
        state = allocateNodePort(layout, state, port).state;
        if (held.has(port)) t.fail(`requested ${port} twice`);
        held.add(port);
      } catch (err) {
        const c = (err as { code?: string }).code;
        if (!(c === 'taken' && held.has(port)) && !(c === 'invalid' && (port < 30000 || port > 30099))) throw err;
      }
    } else if (held.size > 0) {
      const port = [...held][Math.floor(random() * held.size)];
      const r = releaseNodePort(layout, state, port);
      if (!r.released) t.fail(`${port} not released`);
      held.delete(port);
      state = r.state;
      if (isNodePortAllocated(layout, state, port)) t.fail(`${port} still allocated`);
    }
    if (nodePortUsage(layout, state).used !== held.size) t.fail(`count mismatch at op ${op}`);
  }
  state = parseNodePortState(JSON.parse(JSON.stringify(state)), layout);
  for (const port of held) if (!isNodePortAllocated(layout, state, port)) t.fail(`${port} lost`);
  t.ok(exhausted > 0, `exhaustion reached (${exhausted})`);
});
