import t from 'tap';
import {
  allocatePodCidr,
  emptyPodCidrState,
  parsePodCidrConfig,
  parsePodCidrState,
  podCidrAt,
  podCidrOf,
  podCidrUsage,
  releasePodCidr,
  type PodCidrLayout,
  type PodCidrState,
} from '../../src/controlplane/alloc/cidr.js';
import { AllocError, countBits, decodeBitmap, testBit } from '../../src/controlplane/alloc/bitmap.js';
import { mulberry32 } from '../lib/prng.js';

const code = (c: string) => ({ name: 'AllocError', code: c });

t.test('defaults: 10.244.0.0/16 split in /24s, first free first, stable per name', async (t) => {
  const layout = parsePodCidrConfig();
  t.equal(layout.count, 256);
  let state = emptyPodCidrState(layout);
  const a = allocatePodCidr(layout, state, { nodeName: 'node-a' });
  t.equal(a.podCidr, '10.244.0.0/24');
  t.equal(a.reused, false);
  state = a.state;
  const b = allocatePodCidr(layout, state, { nodeName: 'node-b' });
  t.equal(b.podCidr, '10.244.1.0/24');
  state = b.state;
  const again = allocatePodCidr(layout, state, { nodeName: 'node-a' });
  t.equal(again.podCidr, '10.244.0.0/24');
  t.equal(again.reused, true);
  t.equal(again.state, state, 're-register leaves the state as is');
  const freed = releasePodCidr(layout, state, 'node-a');
  t.equal(freed.podCidr, '10.244.0.0/24');
  t.equal(podCidrOf(layout, freed.state, 'node-a'), undefined);
  t.equal(allocatePodCidr(layout, freed.state, { nodeName: 'node-c' }).podCidr, '10.244.0.0/24', 'first free again');
  t.same(releasePodCidr(layout, freed.state, 'node-a').state, freed.state, 'release twice is a no-op');
  t.same(podCidrUsage(layout, state), { used: 2, total: 256 });
});

t.test('the input state is never mutated', async (t) => {
  const layout = parsePodCidrConfig({ clusterCidr: '10.0.0.0/28', nodeMask: 30 });
  const s0 = emptyPodCidrState(layout);
  const copy = JSON.parse(JSON.stringify(s0));
  const s1 = allocatePodCidr(layout, s0, { nodeName: 'n1' }).state;
  t.same(s0, copy);
  const copy1 = JSON.parse(JSON.stringify(s1));
  releasePodCidr(layout, s1, 'n1');
  t.same(s1, copy1);
});

t.test('IPv6 cluster CIDR', async (t) => {
  const layout = parsePodCidrConfig({ clusterCidr: 'fd00:10:244::/56', nodeMask: 64 });
  t.equal(layout.count, 256);
  let state = emptyPodCidrState(layout);
  const names = ['a', 'b', 'c'];
  const got = names.map((n) => {
    const r = allocatePodCidr(layout, state, { nodeName: n });
    state = r.state;
    return r.podCidr;
  });
  t.same(got, ['fd00:10:244::/64', 'fd00:10:244:1::/64', 'fd00:10:244:2::/64']);
  t.equal(podCidrAt(layout, 255), 'fd00:10:244:ff::/64');
});

t.test('exhaustion is a typed error with the numbers', async (t) => {
  const layout = parsePodCidrConfig({ clusterCidr: '10.244.0.0/22', nodeMask: 24 });
  let state = emptyPodCidrState(layout);
  for (let i = 0; i < 4; i++) state = allocatePodCidr(layout, state, { nodeName: `n${i}` }).state;
  t.throws(() => allocatePodCidr(layout, state, { nodeName: 'n4' }), code('exhausted'));
  t.throws(() => allocatePodCidr(layout, state, { nodeName: 'n4' }), { message: 'cluster CIDR 10.244.0.0/22 with node mask /24 has no free subnet (4 in use)' });
  t.equal(allocatePodCidr(layout, state, { nodeName: 'n2' }).podCidr, '10.244.2.0/24', 'existing nodes still re-register');
  const full = parsePodCidrConfig();
  let s = emptyPodCidrState(full);
  for (let i = 0; i < 256; i++) s = allocatePodCidr(full, s, { nodeName: `n${i}` }).state;
  t.throws(() => allocatePodCidr(full, s, { nodeName: 'x' }), { message: 'cluster CIDR 10.244.0.0/16 with node mask /24 has no free subnet (256 in use)' });
});

t.test('requested podCIDR: reserved when free, refused when bad or taken', async (t) => {
  const layout = parsePodCidrConfig();
  let state = allocatePodCidr(layout, emptyPodCidrState(layout), { nodeName: 'a', podCidr: '10.244.7.0/24' }).state;
  t.equal(podCidrOf(layout, state, 'a'), '10.244.7.0/24');
  state = allocatePodCidr(layout, state, { nodeName: 'b' }).state;
  t.equal(podCidrOf(layout, state, 'b'), '10.244.0.0/24');
  t.throws(() => allocatePodCidr(layout, state, { nodeName: 'c', podCidr: '10.244.7.0/24' }), { code: 'taken', message: /already allocated to node "a"/ });
  t.throws(() => allocatePodCidr(layout, state, { nodeName: 'a', podCidr: '10.244.8.0/24' }), { code: 'taken', message: /cannot change/ });
  t.equal(allocatePodCidr(layout, state, { nodeName: 'a', podCidr: '10.244.7.0/24' }).reused, true);
  for (const bad of ['10.245.0.0/24', '10.244.7.0/25', '10.244.7.0/23', '10.244.7.1/24', 'fd00::/24', 'nope']) {
    t.throws(() => allocatePodCidr(layout, state, { nodeName: 'c', podCidr: bad }), code('invalid'), bad);
  }
});

t.test('bad configs say what is wrong and why', async (t) => {
  const cases: Array<[Parameters<typeof parsePodCidrConfig>[0], RegExp]> = [
    [{ clusterCidr: '10.244.0.0' }, /not a CIDR/],
    [{ clusterCidr: '10.244.1.0/16' }, /host bits are set; did you mean 10\.244\.0\.0\/16/],
    [{ nodeMask: 16 }, /must be longer than the cluster CIDR 10\.244\.0\.0\/16 prefix \/16/],
    [{ nodeMask: 8 }, /must be longer/],
    [{ nodeMask: 31 }, /at most 30 for IPv4/],
    [{ nodeMask: 24.5 }, /must be an integer/],
    [{ clusterCidr: '10.0.0.0/8', nodeMask: 26 }, /2\^18 node subnets; at most 2\^16 \(65536\).*node mask of \/24 or shorter/],
    [{ clusterCidr: 'fd00::/48', nodeMask: 80 }, /2\^32 node subnets/],
    [{ clusterCidr: 'fd00::/48', nodeMask: 127 }, /at most 126 for IPv6/],
  ];
  for (const [config, message] of cases) t.throws(() => parsePodCidrConfig(config), { code: 'config', message }, JSON.stringify(config));
  t.equal(parsePodCidrConfig({ clusterCidr: '10.0.0.0/8', nodeMask: 24 }).count, 65536, '2^16 is allowed');
});

t.test('serialise → parse round trip, and corrupt states are refused', async (t) => {
  const layout = parsePodCidrConfig({ clusterCidr: '10.244.0.0/20', nodeMask: 24 });
  let state = emptyPodCidrState(layout);
  for (const n of ['a', 'b', 'c']) state = allocatePodCidr(layout, state, { nodeName: n }).state;
  state = releasePodCidr(layout, state, 'b').state;
  const back = parsePodCidrState(JSON.parse(JSON.stringify(state)), layout);
  t.same(back, state);
  t.equal(allocatePodCidr(layout, back, { nodeName: 'd' }).podCidr, '10.244.1.0/24');
  const bad = (patch: Partial<Record<keyof PodCidrState, unknown>>, message: RegExp) =>
    t.throws(() => parsePodCidrState({ ...state, ...patch }, layout), { code: 'state', message }, JSON.stringify(patch));
  bad({ version: 2 }, /version 1/);
  bad({ clusterCidr: '10.245.0.0/20' }, /cannot change/);
  bad({ nodeMask: 25 }, /cannot change/);
  bad({ taken: 'AAAA' }, /expected 2/);
  bad({ taken: '!!' }, /base64/);
  bad({ nodes: { a: 0, c: 2, d: 5 } }, /not marked taken/);
  bad({ nodes: { a: 0, c: 0 } }, /both hold subnet 0/);
  bad({ nodes: { a: 0 } }, /2 subnets marked taken but 1/);
  bad({ nodes: { a: 0, c: 99 } }, /0\.\.15/);
  bad({ nodes: [] }, /nodes must be an object/);
  t.throws(() => parsePodCidrState(state, parsePodCidrConfig({ clusterCidr: '10.244.0.0/16', nodeMask: 24 })), { code: 'state' });
});

t.test('a node named __proto__ is just a key', async (t) => {
  const layout = parsePodCidrConfig();
  const { state } = allocatePodCidr(layout, emptyPodCidrState(layout), { nodeName: '__proto__' });
  t.equal(podCidrOf(layout, state, '__proto__'), '10.244.0.0/24');
  t.equal(podCidrOf(layout, state, 'constructor'), undefined);
  const back = parsePodCidrState(JSON.parse(JSON.stringify(state)), layout);
  t.equal(podCidrOf(layout, back, '__proto__'), '10.244.0.0/24');
  t.equal(releasePodCidr(layout, back, '__proto__').podCidr, '10.244.0.0/24');
});

function checkInvariants(t: { fail: (msg: string) => unknown }, layout: PodCidrLayout, state: PodCidrState, model: Map<string, string>): void {
  const bits = decodeBitmap(state.taken, layout.count, 'test');
  const seen = new Set<number>();
  for (const [name, index] of Object.entries(state.nodes)) {
    if (seen.has(index) || !testBit(bits, index)) t.fail(`duplicate or unmarked index ${index} for ${name}`);
    seen.add(index);
  }
  if (countBits(bits) !== model.size || seen.size !== model.size) t.fail(`count ${countBits(bits)} vs model ${model.size}`);
  for (const [name, cidr] of model) if (podCidrOf(layout, state, name) !== cidr) t.fail(`${name} moved`);
}

t.test('10,000 random register/re-register/delete operations keep the invariants', async (t) => {
  const layout = parsePodCidrConfig({ clusterCidr: '10.244.0.0/18', nodeMask: 24 }); // 64 subnets
  const random = mulberry32(0x5eed);
  let state = emptyPodCidrState(layout);
  const model = new Map<string, string>();
  let exhausted = 0;
  for (let op = 0; op < 10_000; op++) {
    const name = `node-${Math.floor(random() * 96)}`; // more names than subnets: exhaustion happens
    if (random() < 0.6) {
      try {
        const r = allocatePodCidr(layout, state, { nodeName: name });
        const before = model.get(name);
        if (before !== undefined && before !== r.podCidr) t.fail(`${name} got ${r.podCidr}, had ${before}`);
        if (before === undefined && [...model.values()].includes(r.podCidr)) t.fail(`duplicate ${r.podCidr}`);
        model.set(name, r.podCidr);
        state = r.state;
      } catch (err) {
        if (!(err instanceof AllocError && err.code === 'exhausted') || model.size !== layout.count) throw err;
        exhausted++;
      }
    } else {
      const r = releasePodCidr(layout, state, name);
      if (r.podCidr !== model.get(name)) t.fail(`${name} released ${r.podCidr}, held ${model.get(name)}`);
      model.delete(name);
      state = r.state;
      if (r.podCidr && model.size < layout.count) {
        // the released subnet is the first free one or after it: reusable now
        const probe = allocatePodCidr(layout, state, { nodeName: 'probe', podCidr: r.podCidr });
        if (probe.podCidr !== r.podCidr) t.fail(`${r.podCidr} not reusable`);
      }
    }
    if (op % 50 === 0) checkInvariants(t, layout, state, model);
  }
  checkInvariants(t, layout, parsePodCidrState(JSON.parse(JSON.stringify(state)), layout), model);
  t.ok(exhausted > 0, `exhaustion was reached (${exhausted} times)`);
});
