// The one contract every Store implementation passes (memory, SQLite, etcd): CRUD and its
// errors, revisions, list snapshots, txn atomicity and concurrency, watch ordering / prefix /
// DELETED / 'Gone' / close. Each subtest gets a fresh, empty store from makeStore.
import type { Test } from 'tap';
import { isStoreError, type Store, type StoreErrorCode, type WatchEvent, type WatchHandle } from '../../src/controlplane/store/types.js';

export interface ContractOptions {
  // Make history before `revision` unavailable to watches: etcd compacts; stores with a bounded
  // event history get maxEvents from makeStore instead and need no hook.
  forget?: (store: Store, revision: number) => Promise<void>;
}

export type MakeStore = (opts: { maxEvents?: number }) => Promise<Store>;

async function rejects(t: Test, p: Promise<unknown>, code: StoreErrorCode, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected StoreError ${code}, got success`);
  } catch (e) {
    t.ok(isStoreError(e, code), `${what}: StoreError ${code}`, { got: String(e) });
  }
}

// Collects watch events; wait(n) resolves once n have arrived (or fails after a timeout).
function collector() {
  const events: WatchEvent[] = [];
  let wake = () => {};
  const onEvent = (e: WatchEvent) => {
    events.push(e);
    wake();
  };
  const wait = async (n: number, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (events.length < n && Date.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    return events;
  };
  return { events, onEvent, wait };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const brief = (e: WatchEvent) => `${e.type} ${e.key} ${JSON.stringify(e.value)}`;

export function storeContract(tap: Test, name: string, makeStore: MakeStore, opts: ContractOptions = {}): void {
  const withStore = (title: string, fn: (t: Test, s: Store) => Promise<void>, storeOpts: { maxEvents?: number } = {}) =>
    tap.test(`${name}: ${title}`, async (t) => {
      const s = await makeStore(storeOpts);
      t.teardown(() => s.close());
      await fn(t, s);
    });

  withStore('create, get, update, delete and their errors', async (t, s) => {
    t.equal(await s.get('/nodes/a'), undefined, 'missing key reads as undefined');
    const a = await s.create('/nodes/a', { ip: '10.0.0.1' });
    t.same(a.value, { ip: '10.0.0.1' });
    t.ok(a.createRevision > 0 && a.modRevision === a.createRevision, 'create sets both revisions');
    await rejects(t, s.create('/nodes/a', {}), 'AlreadyExists', 'second create');
    t.same(await s.get('/nodes/a'), a, 'get returns what create returned');
    const b = await s.update('/nodes/a', { ip: '10.0.0.2' });
    t.ok(b.modRevision > a.modRevision, 'update bumps modRevision');
    t.equal(b.createRevision, a.createRevision, 'update keeps createRevision');
    await rejects(t, s.update('/nodes/a', {}, { expectedModRevision: a.modRevision }), 'Conflict', 'update with a stale modRevision');
    const c = await s.update('/nodes/a', { ip: '10.0.0.3' }, { expectedModRevision: b.modRevision });
    t.same((await s.get('/nodes/a'))!.value, { ip: '10.0.0.3' }, 'update with the right modRevision');
    await rejects(t, s.update('/nodes/zz', {}), 'NotFound', 'update of a missing key');
    await rejects(t, s.delete('/nodes/a', { expectedModRevision: b.modRevision }), 'Conflict', 'delete with a stale modRevision');
    const d = await s.delete('/nodes/a', { expectedModRevision: c.modRevision });
    t.same(d.object.value, { ip: '10.0.0.3' }, 'delete returns the last object');
    t.ok(d.revision > c.modRevision, 'delete has its own revision');
    t.equal(await s.get('/nodes/a'), undefined, 'gone after delete');
    await rejects(t, s.delete('/nodes/a'), 'NotFound', 'delete of a missing key');
    const again = await s.create('/nodes/a', 1);
    t.ok(again.createRevision > d.revision, 're-create gets a new createRevision');
  });

  withStore('keys and values are validated; values are copies', async (t, s) => {
    for (const bad of ['', 'nodes/a', '/nodes/', '/nodes//a', '/Nodes/a', '/nodes/a b', '/nodes/ä']) {
      await rejects(t, s.create(bad, 1), 'InvalidKey', `key ${JSON.stringify(bad)}`);
    }
    await rejects(t, s.get('/x/'), 'InvalidKey', 'get with a trailing slash');
    await rejects(t, s.create('/x', undefined), 'InvalidValue', 'undefined value');
    const v = { list: [1, 2] };
    await s.create('/config/cluster', v);
    v.list.push(3);
    const got = await s.get<{ list: number[] }>('/config/cluster');
    t.same(got!.value, { list: [1, 2] }, 'mutating the written object changes nothing stored');
    got!.value.list.push(4);
    t.same((await s.get('/config/cluster'))!.value, { list: [1, 2] }, 'mutating a read object changes nothing stored');
  });

  withStore('revisions increase with every write; revision() is the latest', async (t, s) => {
    const start = await s.revision();
    const revs: number[] = [];
    for (let i = 0; i < 10; i++) revs.push((await s.create(`/pods/ns/p${i}`, i)).modRevision);
    revs.push((await s.update('/pods/ns/p0', 'x')).modRevision);
    revs.push((await s.delete('/pods/ns/p1')).revision);
    t.ok(revs[0]! > start, 'first write is after the starting revision');
    t.ok(revs.every((r, i) => i === 0 || r > revs[i - 1]!), 'strictly increasing', { revs });
    t.equal(await s.revision(), revs[revs.length - 1], 'revision() is the last write');
  });

  withStore('list: only under the prefix, sorted, with a snapshot revision', async (t, s) => {
    for (const k of ['/services/b/x', '/services/a/y', '/services/a/x', '/servicesx/a', '/services', '/endpoints/a/x']) await s.create(k, k);
    const l = await s.list('/services');
    t.same(l.items.map((o) => o.key), ['/services/a/x', '/services/a/y', '/services/b/x'], "strictly under '/services', sorted");
    t.same((await s.list('/services/')).items, l.items, "'/services/' is the same prefix");
    t.same((await s.list('/services/a')).items.map((o) => o.key), ['/services/a/x', '/services/a/y']);
    t.equal((await s.list('/')).items.length, 6, "'/' lists everything");
    t.same((await s.list('/nothing')).items, []);
    t.equal(l.revision, await s.revision(), 'list revision is the store revision');
    const o = l.items[0]!;
    t.same(o.value, '/services/a/x');
    t.ok(o.createRevision > 0 && o.modRevision >= o.createRevision, 'items carry revisions');
  });

  withStore('txn: atomic, reads its own writes, one revision for all writes', async (t, s) => {
    await s.create('/alloc/bitmap', { used: [] });
    const before = await s.revision();
    const failing = s.txn(async (tx) => {
      tx.put('/alloc/bitmap', { used: [1] });
      tx.put('/services/ns/a', { ip: 1 });
      throw new Error('boom');
    });
    await t.rejects(failing, /boom/, 'a throwing txn rejects with its error');
    t.equal(await s.revision(), before, 'a throwing txn writes nothing');
    t.same((await s.get('/alloc/bitmap'))!.value, { used: [] });
    t.equal(await s.get('/services/ns/a'), undefined);
    const r = await s.txn(async (tx) => {
      const bm = await tx.get<{ used: number[] }>('/alloc/bitmap');
      tx.put('/alloc/bitmap', { used: [...bm!.value.used, 7] });
      tx.put('/services/ns/a', { ip: 7 });
      tx.delete('/nothing/here');
      t.same((await tx.get('/services/ns/a'))!.value, { ip: 7 }, 'txn reads its own write');
      return 'done';
    });
    t.equal(r.result, 'done');
    t.ok(r.revision > before);
    t.equal((await s.get('/alloc/bitmap'))!.modRevision, r.revision, 'both keys written at the txn revision');
    t.equal((await s.get('/services/ns/a'))!.modRevision, r.revision);
    const ro = await s.txn(async (tx) => (await tx.get('/services/ns/a'))!.value);
    t.same(ro, { result: { ip: 7 }, revision: r.revision }, 'a read-only txn writes nothing');
    await s.txn(async (tx) => tx.delete('/services/ns/a'));
    t.equal(await s.get('/services/ns/a'), undefined, 'txn delete');
  });

  withStore('txn: 100 concurrent increments and allocations lose nothing', async (t, s) => {
    await s.create('/alloc/counter', 0);
    await Promise.all(Array.from({ length: 100 }, () => s.txn(async (tx) => {
      const c = await tx.get<number>('/alloc/counter');
      tx.put('/alloc/counter', c!.value + 1);
    })));
    t.equal((await s.get('/alloc/counter'))!.value, 100, 'counter is 100');
    // The allocator pattern: read the bitmap, take the first free slot, record the owner.
    const owners = await Promise.all(Array.from({ length: 50 }, (_, i) => s.txn(async (tx) => {
      const bm = (await tx.get<number[]>('/alloc/slots'))?.value ?? [];
      let slot = 0;
      while (bm.includes(slot)) slot++;
      tx.put('/alloc/slots', [...bm, slot]);
      tx.put(`/services/ns/s${i}`, { slot });
      return slot;
    })));
    t.equal(new Set(owners.map((o) => o.result)).size, 50, '50 distinct slots');
    t.equal((await s.get<number[]>('/alloc/slots'))!.value.length, 50, 'bitmap has all 50');
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => s.create('/nodes/race', 1)));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one of 20 racing creates wins');
  });

  withStore('watch: from a revision, in order, ADDED/MODIFIED/DELETED, then live', async (t, s) => {
    const a = await s.create('/pods/ns/a', 1);
    await s.create('/pods/ns/b', 2);
    await s.update('/pods/ns/a', 3);
    const c = collector();
    const h = await s.watch('/pods', a.modRevision, c.onEvent);
    await s.delete('/pods/ns/b');
    await s.txn(async (tx) => {
      tx.put('/pods/ns/c', 4);
      tx.put('/pods/ns/d', 5);
    });
    const evs = await c.wait(5);
    h.close();
    t.same(evs.map(brief), ['ADDED /pods/ns/b 2', 'MODIFIED /pods/ns/a 3', 'DELETED /pods/ns/b 2', 'ADDED /pods/ns/c 4', 'ADDED /pods/ns/d 5'],
      'history after the revision, then live; DELETED carries the last value');
    t.ok(evs.every((e, i) => i === 0 || e.revision >= evs[i - 1]!.revision), 'revision order');
    t.ok(evs[0]!.revision > a.modRevision, 'starts after fromRevision');
    t.equal(evs[3]!.revision, evs[4]!.revision, 'one txn, one revision');
    const l = await s.list('/pods');
    const c2 = collector();
    const h2 = await s.watch('/pods', l.revision, c2.onEvent);
    await s.create('/pods/ns/e', 6);
    await c2.wait(1);
    await sleep(100);
    h2.close();
    t.same(c2.events.map(brief), ['ADDED /pods/ns/e 6'], 'watch from list().revision sees only what came after the list');
  });

  withStore('watch: only the prefix', async (t, s) => {
    const start = await s.revision();
    const c = collector();
    const h = await s.watch('/services/ns1', start, c.onEvent);
    await s.create('/services/ns1/a', 1);
    await s.create('/services/ns10/a', 2);
    await s.create('/endpoints/ns1/a', 3);
    await s.create('/services/ns1/b', 4);
    await c.wait(2);
    await sleep(150);
    h.close();
    t.same(c.events.map((e) => e.key), ['/services/ns1/a', '/services/ns1/b']);
  });

  withStore('watch: a revision older than the history is Gone', async (t, s) => {
    const first = await s.create('/pods/ns/p0', 0);
    for (let i = 1; i < 20; i++) await s.create(`/pods/ns/p${i}`, i);
    const now = await s.revision();
    if (opts.forget) await opts.forget(s, now);
    await rejects(t, s.watch('/pods', first.modRevision - 1, () => undefined), 'Gone', 'watch from before the history');
    const c = collector();
    const h = await s.watch('/pods', now, c.onEvent);
    await s.create('/pods/ns/late', 1);
    t.same((await c.wait(1)).map(brief), ['ADDED /pods/ns/late 1'], 'a watch from the current revision still works');
    h.close();
  }, { maxEvents: 5 });

  withStore('close: a closed watch gets nothing more; a closed store refuses calls', async (t, s) => {
    const c = collector();
    const h: WatchHandle = await s.watch('/nodes', await s.revision(), c.onEvent);
    await s.create('/nodes/a', 1);
    await c.wait(1);
    h.close();
    h.close();
    await s.create('/nodes/b', 1);
    await sleep(200);
    t.equal(c.events.length, 1, 'no event after close()');
    const c2 = collector();
    await s.watch('/nodes', await s.revision(), c2.onEvent);
    await s.close();
    await s.close();
    await rejects(t, s.get('/nodes/a'), 'Closed', 'get after close');
    await rejects(t, s.create('/nodes/c', 1), 'Closed', 'create after close');
  });
}
