// The etcd store against a real etcd (Debian package etcd-server) started here on 127.0.0.1 with
// free ports and a temp data dir, stopped by PID at the end: the shared Store contract. Skips
// when the etcd binary is missing.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EtcdStore } from '../../src/controlplane/store/etcd.js';
import { storeContract } from '../lib/store-contract.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitHealthy(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited (${child.exitCode}): ${log()}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd not healthy after 20 s: ${log()}`);
}

async function startEtcd(t: Test): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const c = `http://127.0.0.1:${client}`;
  const p = `http://127.0.0.1:${peer}`;
  const child = spawn('etcd', [
    '--name', 'pw-test', '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', c, '--advertise-client-urls', c,
    '--listen-peer-urls', p, '--initial-advertise-peer-urls', p, '--initial-cluster', `pw-test=${p}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (log = (log + s).slice(-4000)));
  const exited = new Promise((r) => child.on('close', r));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await waitHealthy(c, child, () => log);
  return c;
}

const haveEtcd = spawnSync('etcd', ['--version']).status === 0;
if (!haveEtcd) {
  t.comment('etcd not installed (Debian package etcd-server): skipping the etcd store tests');
  t.test('etcd store contract', { skip: 'etcd binary not found (apt-get install etcd-server)' }, () => undefined);
} else {
  const url = await startEtcd(t);
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
