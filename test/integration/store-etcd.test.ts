// The etcd store against a real etcd (Debian package etcd-server) started here on 127.0.0.1 with
// free ports and a temp data dir, stopped by PID at the end: the shared Store contract. Skips
// when the etcd binary is missing.
import t from 'tap';
import { EtcdStore } from '../../src/controlplane/store/etcd.js';
import { storeContract } from '../lib/store-contract.js';
import { haveEtcd, startEtcd } from '../lib/etcd.js';

if (!haveEtcd()) {
  t.comment('etcd not installed (Debian package etcd-server): skipping the etcd store tests');
  t.test('etcd store contract', { skip: 'etcd binary not found (apt-get install etcd-server)' }, () => undefined);
} else {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const url = etcd.url;
  let n = 0;
  // Every store gets its own key prefix in the one etcd; revisions are etcd's, shared by all.
  storeContract(t, 'etcd', async () => new EtcdStore({ hosts: url, prefix: `/podwire-test${n++}` }), {
    forget: (s, revision) => (s as EtcdStore).compact(revision),
  });

  // Txns are serialized within one store, so the contract never makes etcd's compare fail; two
  // stores on one prefix (two control planes) do, and the optimistic retry must lose nothing.
  t.test('etcd: two control planes incrementing one counter lose no update', async (t) => {
    const [a, b] = [new EtcdStore({ hosts: url, prefix: '/podwire-ha' }), new EtcdStore({ hosts: url, prefix: '/podwire-ha' })];
    t.teardown(async () => {
      await a.close();
      await b.close();
    });
    let attempts = 0;
    const inc = (s: EtcdStore) => s.txn(async (tx) => {
      attempts++;
      tx.put('/alloc/counter', ((await tx.get<number>('/alloc/counter'))?.value ?? 0) + 1);
    });
    await Promise.all(Array.from({ length: 60 }, (_, i) => inc(i % 2 ? a : b)));
    t.equal((await a.get('/alloc/counter'))!.value, 60, 'counter is 60');
    t.ok(attempts > 60, `conflicts were retried (${attempts} attempts)`);
  });
}
