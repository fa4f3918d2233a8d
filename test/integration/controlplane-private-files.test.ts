// What the control plane puts on disk is its owner's alone, from the first moment, whatever the
// umask: the unix socket is bound under umask 0177 (not chmod'ed afterwards: strace shows the
// umask in force at bind()), and state.db with its -wal and -shm files is 0600.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { SqliteStore } from '../../src/controlplane/store/sqlite.js';
import { CONTROLPLANE_MAIN, initDataDir } from '../lib/controlplane-process.js';
import { freePort } from '../lib/etcd.js';

const mode = (file: string): string => (fs.statSync(file).mode & 0o777).toString(8);
const haveStrace = spawnSync('strace', ['-V']).status === 0;

t.test('state.db, -wal and -shm are 0600 under umask 0, and an existing 0644 file is tightened', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-sqlite-mode-'));
  const previous = process.umask(0);
  t.teardown(() => {
    process.umask(previous);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const file = path.join(dir, 'state.db');
  const s = new SqliteStore({ path: file });
  await s.create('/nodes/a', { x: 1 });
  t.same([mode(file), mode(`${file}-wal`), mode(`${file}-shm`)], ['600', '600', '600'], 'db, WAL and SHM are 0600');
  await s.close();

  const old = path.join(dir, 'old.db');
  fs.writeFileSync(old, '', { mode: 0o644 });
  const again = new SqliteStore({ path: old });
  await again.create('/nodes/b', { x: 2 });
  t.same([mode(old), mode(`${old}-wal`), mode(`${old}-shm`)], ['600', '600', '600'], 'a database made 0644 by an older podwire becomes 0600');
  await again.close();
});

t.test('the control plane binds its unix socket under umask 0177 (no window with the umask\'s mode)', { skip: haveStrace ? false : 'strace not installed' }, async (t) => {
  const dir = initDataDir();
  const sock = path.join(dir, 'cp.sock');
  const trace = path.join(dir, 'strace.out');
  const port = await freePort();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // umask 000: without the fix the socket would be created 0777 and chmod'ed only afterwards.
  const cmd = `umask 000 && exec node ${CONTROLPLANE_MAIN} --data-dir ${dir} --listen 127.0.0.1:${port} --unix-socket ${sock} --log-level warn`;
  const child = spawn('strace', ['-f', '-qq', '-e', 'trace=umask,bind', '-o', trace, 'sh', '-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise((r) => child.on('close', r));
  // strace's child is the control plane (sh execs node): signal it, and strace exits with it.
  const tracee = (): number | undefined => Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || undefined;
  t.teardown(async () => {
    const pid = child.exitCode === null ? tracee() : undefined;
    if (pid) process.kill(pid, 'SIGTERM');
    await exited;
  });
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(sock) || !fs.readFileSync(trace, 'utf8').includes(sock)) {
    if (child.exitCode !== null || Date.now() > deadline) return t.fail(`the control plane did not listen on ${sock}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200)); // the chmod (if any) after listen
  t.equal(mode(sock), '600', 'the socket ends up 0600');
  t.same([mode(path.join(dir, 'state.db')), mode(path.join(dir, 'state.db-wal')), mode(path.join(dir, 'state.db-shm'))], ['600', '600', '600'], 'state.db and its WAL files are 0600');

  // The umask in force at bind(): the last umask() call before it sets it.
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const bindAt = lines.findIndex((l) => l.includes('bind(') && l.includes(`sun_path="${sock}"`));
  t.ok(bindAt >= 0, 'bind() of the socket traced');
  const umasks = lines.slice(0, bindAt).map((l) => /umask\((0[0-7]*)\)/.exec(l)?.[1]).filter((m): m is string => m !== undefined);
  t.equal(umasks.at(-1), '0177', `umask at bind() is 0177 (umask calls before it: ${umasks.join(', ') || 'none'})`);
});
