// The SQLite store on a real file (a temp dir, removed at the end): the shared Store contract,
// reopening the file, and kill -9 of a writing process: every acknowledged write survives.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { SqliteStore } from '../../src/controlplane/store/sqlite.js';
import { storeContract } from '../lib/store-contract.js';

const writer = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'lib', 'store-writer.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-store-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbPath = () => path.join(dir, `s${n++}`, 'store.db');

storeContract(t, 'sqlite', async (opts) => new SqliteStore({ path: dbPath(), ...opts }));

t.test('sqlite: reopening the file keeps objects, revisions and watch history', async (t) => {
  const file = dbPath();
  let s = new SqliteStore({ path: file });
  const a = await s.create('/nodes/a', { ip: '10.0.0.1' });
  await s.create('/services/ns/x', { port: 80 });
  await s.update('/nodes/a', { ip: '10.0.0.2' });
  const rev = await s.revision();
  await s.close();
  s = new SqliteStore({ path: file });
  t.teardown(() => s.close());
  t.equal(await s.revision(), rev, 'same revision');
  t.same((await s.get('/nodes/a'))!.value, { ip: '10.0.0.2' });
  t.equal((await s.get('/nodes/a'))!.createRevision, a.createRevision);
  t.equal((await s.list('/')).items.length, 2);
  const events: string[] = [];
  const h = await s.watch('/', 0, (e) => events.push(`${e.type} ${e.key}`));
  await new Promise((r) => setTimeout(r, 100));
  h.close();
  t.same(events, ['ADDED /nodes/a', 'ADDED /services/ns/x', 'MODIFIED /nodes/a'], 'event history survives the restart');
  t.ok((await s.create('/nodes/b', 1)).modRevision > rev, 'revisions continue after the restart');
  const pragma = (s as unknown as { db: { pragma(q: string, o: object): unknown } }).db;
  t.equal(pragma.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(pragma.pragma('synchronous', { simple: true }), 2, 'synchronous = FULL');
});

// tap hands its loaders to children through NODE_OPTIONS; the writer needs none of it.
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS_')));

t.test('sqlite: kill -9 during a burst loses no acknowledged write', async (t) => {
  for (let round = 0; round < 3; round++) {
    const file = dbPath();
    const child = spawn(process.execPath, [writer, file], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exited = new Promise((r) => child.on('close', r));
    const target = 50 + Math.floor(Math.random() * 300); // acknowledged writes before the kill
    while ((out.match(/\n/g)?.length ?? 0) < target && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await exited;
    t.equal(err, '', 'writer had no error');
    const acked = out.split('\n').filter((l) => l.startsWith('/'));
    const s = new SqliteStore({ path: file });
    const missing = [];
    for (const k of acked) if (!(await s.get(k))) missing.push(k);
    const txns = acked.filter((k) => Number(k.slice('/pods/ns/p'.length)) % 3 === 0).length;
    const counter = (await s.get<number>('/alloc/counter'))?.value ?? 0;
    const stored = (await s.list('/pods')).items.length;
    await s.close();
    t.same(missing, [], `round ${round}: all ${acked.length} acknowledged keys present (${stored} stored)`);
    t.ok(counter >= txns && counter <= txns + 1, 'txn counter matches its acknowledged txns (+1 in flight)', { counter, txns });
    t.ok(stored <= acked.length + 1, 'at most one unacknowledged write got in');
  }
});
