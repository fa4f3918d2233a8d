// CniServer (the CNI fast path's agent side) with a fake command runner: order per container,
// overlap across containers, the bound on waiting requests, request validation.
import t from 'tap';
import { CNI_STDIN_LIMIT, CniServer, parseCniRequest } from '../../src/agent/cni-server.js';
import type { CniOutcome } from '../../src/cni/dispatch.js';

const conf = '{"cniVersion":"1.0.0","name":"n","type":"podwire"}';
const req = (command: string, id: string) => ({ env: { CNI_COMMAND: command, CNI_CONTAINERID: id }, stdin: conf });

function gated() {
  const log: string[] = [];
  const gates = new Map<string, () => void>();
  const execute = (vars: Readonly<Record<string, string>>): Promise<CniOutcome> => {
    const name = `${vars.CNI_COMMAND} ${vars.CNI_CONTAINERID}`;
    log.push(`start ${name}`);
    return new Promise((resolve) => gates.set(name, () => {
      log.push(`end ${name}`);
      resolve({ code: 0, stdout: `${name}\n` });
    }));
  };
  const open = async (name: string) => {
    for (let i = 0; i < 50 && !gates.has(name); i++) await new Promise((r) => setImmediate(r));
    const g = gates.get(name);
    if (!g) throw new Error(`${name} never started (${log.join(', ')})`);
    gates.delete(name);
    g();
    await new Promise((r) => setImmediate(r));
  };
  return { log, execute, open };
}

t.test('one container: in arrival order; two containers: side by side', async (t) => {
  const g = gated();
  const s = new CniServer({ execute: g.execute });
  const add = s.handle(req('ADD', 'a'));
  const del = s.handle(req('DEL', 'a'));
  const other = s.handle(req('ADD', 'b'));
  await new Promise((r) => setImmediate(r));
  t.same(g.log, ['start ADD a', 'start ADD b'], 'DEL a waits for ADD a; ADD b does not');
  t.equal(s.inFlight, 3);
  await g.open('ADD a');
  t.same((await add).stdout, 'ADD a\n');
  t.match(g.log, ['start ADD a', 'start ADD b', 'end ADD a', 'start DEL a']);
  await g.open('DEL a');
  await g.open('ADD b');
  t.same([(await del).stdout, (await other).stdout], ['DEL a\n', 'ADD b\n']);
  t.equal(s.inFlight, 0);
});

t.test('a failed request does not block the next one of its container', async (t) => {
  let n = 0;
  const s = new CniServer({ execute: async () => (++n === 1 ? Promise.reject(new Error('boom')) : { code: 0, stdout: 'ok\n' }) });
  const [a, b] = await Promise.all([s.handle(req('ADD', 'x')), s.handle(req('DEL', 'x'))]);
  t.equal(a.code, 1);
  t.match(JSON.parse(a.stdout), { cniVersion: '1.0.0', code: 100, msg: /failed running ADD: boom/ });
  t.same(b, { code: 0, stdout: 'ok\n' });
});

t.test('more than maxPending at once: CNI error 11 at once, nothing run', async (t) => {
  const g = gated();
  const done: string[] = [];
  const s = new CniServer({ execute: g.execute, maxPending: 2, onDone: (r) => done.push(`${r.command}:${r.code}`) });
  const p1 = s.handle(req('ADD', 'a'));
  const p2 = s.handle(req('ADD', 'b'));
  const third = await s.handle(req('ADD', 'c'));
  t.equal(third.code, 1);
  t.match(JSON.parse(third.stdout), { cniVersion: '1.0.0', code: 11, msg: /2 CNI requests in progress/, details: 'try again later' });
  t.notOk(g.log.some((l) => l.includes(' c')), 'the refused request never ran');
  await g.open('ADD a');
  await g.open('ADD b');
  await Promise.all([p1, p2]);
  t.same(done, ['ADD:0', 'ADD:0'], 'onDone for the requests that ran');
  t.same(s.stats(), { requests: 2, failed: 0, refused: 1, inFlight: 0 }, 'stats for /v1/status');
});

t.test('parseCniRequest: only CNI_* variables pass; bad bodies are refused with what is wrong', async (t) => {
  t.same(parseCniRequest({ env: { CNI_COMMAND: 'ADD', PATH: '/bin', LD_PRELOAD: '/x.so' }, stdin: conf }), { env: { CNI_COMMAND: 'ADD' }, stdin: conf });
  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [[], /JSON object/],
    [{ env: {} }, /"stdin" must be a string/],
    [{ env: [], stdin: '' }, /"env" must be an object/],
    [{ env: { CNI_COMMAND: 1 }, stdin: '' }, /"env".CNI_COMMAND must be a string/],
    [{ env: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`CNI_X${i}`, ''])), stdin: '' }, /200 variables/],
    [{ env: { CNI_ARGS: 'x'.repeat(70_000) }, stdin: '' }, /CNI_ARGS is longer/],
    [{ env: {}, stdin: 'x'.repeat(CNI_STDIN_LIMIT + 1) }, /larger than/],
  ];
  for (const [body, re] of bad) t.throws(() => parseCniRequest(body), re);
});

/** A CniDel stand-in: detach() returns a promise the test settles; drain() settles them all. */
function fakeDel() {
  const waiting: Array<() => void> = [];
  const del = {
    detached: 0,
    get pending() {
      return waiting.length;
    },
    detach: () => {
      del.detached++;
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    drain: async () => {
      while (waiting.length) waiting.shift()!();
    },
    stats: () => ({ pending: waiting.length, deleted: 0, batches: 0, failed: 0 }),
    releaseOne: () => waiting.shift()?.(),
  };
  return del;
}

t.test('fast DEL: answered at once, the container\'s next request waits for its background part', async (t) => {
  const del = fakeDel();
  const log: string[] = [];
  const s = new CniServer({
    del: del as unknown as import('../../src/agent/cni-del.js').CniDel,
    execute: async (vars, _stdin, hooks) => {
      log.push(`${vars.CNI_COMMAND} ${vars.CNI_CONTAINERID}`);
      if (vars.CNI_COMMAND === 'DEL') hooks!.del!({} as never, {} as never);
      return { code: 0, stdout: '' };
    },
  });
  t.same(await s.handle(req('DEL', 'a')), { code: 0, stdout: '' }, 'the DEL is answered while its background part is pending');
  t.equal(del.detached, 1, 'through the del hook');
  const add = s.handle(req('ADD', 'a'));
  const other = s.handle(req('ADD', 'b'));
  await other;
  await new Promise((r) => setImmediate(r));
  t.same(log, ['DEL a', 'ADD b'], 'ADD a waits for DEL a\'s background part; ADD b does not');
  del.releaseOne();
  await add;
  t.same(log, ['DEL a', 'ADD b', 'ADD a'], 'then ADD a runs');
  t.match(s.stats(), { del: { pending: 0 } }, 'stats carry the CniDel\'s');
});

t.test('an ADD that found no free IP while DELs are releasing theirs is run again after them', async (t) => {
  const del = fakeDel();
  let free = 0;
  const s = new CniServer({
    del: del as unknown as import('../../src/agent/cni-del.js').CniDel,
    execute: async (vars, _stdin, hooks) => {
      if (vars.CNI_COMMAND === 'DEL') {
        hooks!.del!({} as never, {} as never);
        return { code: 0, stdout: '' };
      }
      return free > 0 ? { code: 0, stdout: 'ip\n' } : { code: 1, stdout: '{"code":101,"msg":"no free IP address"}\n' };
    },
  });
  await s.handle(req('DEL', 'old'));
  const drain = del.drain;
  del.drain = async () => {
    free = 1;
    await drain();
  };
  t.same(await s.handle(req('ADD', 'new')), { code: 0, stdout: 'ip\n' }, 'retried once the pending DEL released its IP');
  free = 0;
  t.match(await s.handle(req('ADD', 'new2')), { code: 1 }, 'with none pending, the exhausted answer stands');
});
