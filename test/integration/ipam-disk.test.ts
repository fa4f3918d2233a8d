// The disk IPAM on a real filesystem (a temp dir, removed at the end): layout and record format,
// 50 processes allocating at once, kill -9 at random instants, hostile names, the lock timeout.
// No root and no network needed.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { FileIpam } from '../../src/ipam/ipam.js';
import { CURSOR_PREFIX, DiskStore, LOCK_FILE, TMP_PREFIX } from '../../src/ipam/disk-store.js';
import { decodeOwner } from '../../src/ipam/store.js';
import { IpamError, type RangeSet } from '../../src/ipam/types.js';

// ~15 s on an idle 2-core machine, 80 node processes in all; give a loaded one room beyond tap's 30 s default.
t.setTimeout(120_000);

const worker = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'lib', 'ipam-worker.js');
const dual: RangeSet[] = [[{ subnet: '10.1.2.0/24' }], [{ subnet: 'fd00::/120' }]];

function tempDataDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-ipam-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'networks');
}

interface Run {
  child: ChildProcess;
  out: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  line: (want: string) => Promise<void>;
}

// tap hands its loaders (process info, coverage) to children through NODE_OPTIONS: several times
// the start-up cost of a bare node, which 50 workers would pay. The workers need none of it.
const workerEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS_')));

function run(mode: string, args: object): Run {
  const child = spawn(process.execPath, [worker, mode, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'], env: workerEnv });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => {
    for (const w of waiters.splice(0)) w();
    resolve({ code, signal });
  }));
  const line = (want: string) => new Promise<void>((resolve, reject) => {
    const check = () => {
      if (out.split('\n').includes(want)) resolve();
      else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`worker ${mode} exited before "${want}": ${out}${err}`));
      else waiters.push(check);
    };
    check();
  });
  return { child, out: () => out + err, exited, line };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every name in the network dir, classified; reservation records parsed. */
function inspect(netDir: string) {
  const names = fs.readdirSync(netDir).sort();
  const temps = names.filter((n) => n.startsWith(TMP_PREFIX));
  const cursors = names.filter((n) => n.startsWith(CURSOR_PREFIX));
  const records: Array<{ name: string; owner: ReturnType<typeof decodeOwner> }> = [];
  for (const name of names.filter((n) => n !== LOCK_FILE && !temps.includes(n) && !cursors.includes(n))) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(netDir, name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released by a live worker meanwhile
      throw e;
    }
    records.push({ name, owner: decodeOwner(text) });
  }
  return { names, temps, cursors, records };
}

t.test('layout: one file per IP with "<containerId>\\n<ifname>\\n", cursors, lock; release removes', async (t) => {
  const dataDir = tempDataDir(t);
  const ipam = new FileIpam(dataDir);
  t.same(ipam.allocate('podnet', { containerId: 'c1', ifname: 'eth0' }, dual).map((a) => a.address), ['10.1.2.2/24', 'fd00::2/120']);
  ipam.allocate('podnet', { containerId: 'c2', ifname: 'eth0' }, dual);
  const dir = path.join(dataDir, 'podnet');
  t.same(fs.readdirSync(dir).sort(), ['10.1.2.2', '10.1.2.3', 'fd00::2', 'fd00::3', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
  t.equal(fs.readFileSync(path.join(dir, '10.1.2.3'), 'utf8'), 'c2\neth0\n');
  t.equal(fs.readFileSync(path.join(dir, 'fd00::2'), 'utf8'), 'c1\neth0\n');
  t.equal(fs.readFileSync(path.join(dir, 'last_reserved_ip.0'), 'utf8'), '10.1.2.3', "host-local's cursor format");
  t.equal(fs.statSync(path.join(dir, '10.1.2.2')).mode & 0o777, 0o644);
  t.equal(fs.statSync(path.join(dir, '10.1.2.2')).nlink, 1, 'the temp link is gone');

  // A stray temp file (a writer killed mid-write) is deleted by the next lock holder.
  fs.writeFileSync(path.join(dir, '.tmp-99999-deadbeef'), 'c9\n');
  t.same(ipam.release('podnet', { containerId: 'c1', ifname: 'eth0' }).map((r) => r.ip), ['10.1.2.2', 'fd00::2']);
  t.same(fs.readdirSync(dir).sort(), ['10.1.2.3', 'fd00::3', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);

  // Foreign files and symlinks are never read or removed; a torn record is reported and GC'd.
  fs.writeFileSync(path.join(dir, 'README'), 'not ours');
  fs.symlinkSync('/etc/hostname', path.join(dir, '10.1.2.77'));
  fs.writeFileSync(path.join(dir, '10.1.2.88'), 'c3\n');
  t.same(ipam.list('podnet').map((r) => `${r.ip}|${r.containerId}`), ['10.1.2.3|c2', '10.1.2.88|', 'fd00::3|c2']);
  t.same(ipam.gc('podnet', [{ containerId: 'c2', ifname: 'eth0' }]).map((r) => r.ip), ['10.1.2.88']);
  t.ok(fs.existsSync(path.join(dir, 'README')) && fs.lstatSync(path.join(dir, '10.1.2.77')).isSymbolicLink(), 'untouched');
  t.same(ipam.free('podnet', dual), [252, 253]);
});

t.test('50 processes allocating at once in a /24 all succeed with distinct IPs', async (t) => {
  const dataDir = tempDataDir(t);
  const rangeSets: RangeSet[] = [[{ subnet: '10.20.0.0/24' }]];
  const t0 = Date.now();
  // A generous lock timeout: on a loaded CI machine 50 waiters must still all get their turn.
  const runs = Array.from({ length: 50 }, (_, i) =>
    run('allocate', { dataDir, network: 'conc', owner: { containerId: `c${i}`, ifname: 'eth0' }, rangeSets, barrier: true, lockTimeoutMs: 60_000 }));
  t.teardown(() => runs.forEach((r) => r.child.kill('SIGKILL')));
  await Promise.all(runs.map((r) => r.line('ready')));
  const t1 = Date.now();
  for (const r of runs) r.child.stdin!.end('go\n');
  const results = await Promise.all(runs.map(async (r) => ({ ...(await r.exited), out: r.out() })));
  t.comment(`50 worker processes started in ${t1 - t0} ms, then allocated all at once in ${Date.now() - t1} ms`);
  const failed = results.filter((r) => r.code !== 0);
  t.same(failed, [], 'every process succeeded');
  const ips = results.map((r) => (JSON.parse(r.out.replace(/^ready\n/, '')) as Array<{ address: string }>)[0]!.address);
  t.equal(new Set(ips).size, 50, 'no IP handed out twice');
  t.ok(ips.every((a) => /^10\.20\.0\.(\d+)\/24$/.test(a) && Number(a.split('.')[3]!.split('/')[0]) >= 2), 'all in range, none is the gateway');
  const listed = new FileIpam(dataDir).list('conc');
  t.same(listed.map((r) => `${r.ip}/24`).sort(), [...ips].sort(), 'the directory holds exactly those');
  t.same(new Set(listed.map((r) => r.containerId)).size, 50, 'one per owner');
});

t.test('kill -9 at random instants leaves only complete records or stray temps; GC cleans everything', async (t) => {
  const dataDir = tempDataDir(t);
  const rangeSets: RangeSet[] = [[{ subnet: '10.30.0.0/16' }], [{ subnet: 'fd30::/112' }]];
  const KILLS = 30;
  const LANES = 3;
  const dir = path.join(dataDir, 'killnet');
  let kills = 0;
  let started = 0;
  let midWrite = 0;
  const torn: string[] = [];
  const t0 = Date.now();
  const lane = async (): Promise<void> => {
    while (started < KILLS) {
      const r = run('loop', { dataDir, network: 'killnet', prefix: `w${started++}`, rangeSets });
      await r.line('ready');
      await sleep(Math.random() * 120);
      r.child.kill('SIGKILL');
      const { signal } = await r.exited;
      t.equal(signal, 'SIGKILL', 'worker died by SIGKILL, not by an error');
      if (signal !== 'SIGKILL') t.comment(r.out());
      kills++;
      // Right after the kill, while the other lanes keep writing: every visible record is complete.
      const now = inspect(dir);
      if (now.temps.some((n) => n.startsWith(`${TMP_PREFIX}${r.child.pid}-`))) midWrite++;
      torn.push(...now.records.filter((x) => x.owner === undefined).map((x) => x.name));
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  const before = inspect(dir);
  t.comment(`${kills} kills in ${Date.now() - t0} ms, ${midWrite} of them left a temp file (killed mid-write); at the end: ${before.records.length} reservations, ${before.temps.length} temp files`);
  t.equal(kills, KILLS);
  t.same(torn, [], 'no incomplete record was ever visible after a kill');
  t.ok(before.records.length > 0, 'the workers did reserve addresses');
  t.same(before.records.filter((r) => r.owner === undefined).map((r) => r.name), [], 'every reservation file is complete (parseable, owner non-empty)');
  const perOwnerSet = new Map<string, number>();
  for (const r of before.records) {
    const k = `${r.owner?.containerId}|${r.name.includes(':') ? 6 : 4}`;
    perOwnerSet.set(k, (perOwnerSet.get(k) ?? 0) + 1);
  }
  t.same([...perOwnerSet].filter(([, n]) => n > 1), [], 'no owner holds two addresses of one range set');
  t.same(before.cursors, ['last_reserved_ip.0', 'last_reserved_ip.1']);

  const released = new FileIpam(dataDir).gc('killnet', []);
  t.equal(released.length, before.records.length, 'GC released every reservation');
  t.same(fs.readdirSync(dir).sort(), ['last_reserved_ip.0', 'last_reserved_ip.1', 'lock'], 'only the lock and cursors remain: no reservation, no temp');
});

t.test('hostile network names and data dirs never escape dataDir', async (t) => {
  const dataDir = tempDataDir(t);
  const parent = path.dirname(dataDir);
  fs.mkdirSync(dataDir);
  const ipam = new FileIpam(dataDir);
  const owner = { containerId: 'c1', ifname: 'eth0' };
  for (const name of ['..', '.', '../escape', 'a/b', '/abs', '', 'a\0b', '.hidden', '-x', 'n'.repeat(200), 'x/../../escape']) {
    t.throws(() => ipam.allocate(name, owner, dual), { name: 'IpamError', kind: 'invalid', message: /network name/ }, JSON.stringify(name));
    t.throws(() => new DiskStore(dataDir, name), { name: 'IpamError', kind: 'invalid' });
  }
  t.same(fs.readdirSync(parent), ['networks'], 'nothing created next to dataDir');
  t.same(fs.readdirSync(dataDir), [], 'nothing created inside it either');
  for (const bad of ['relative/dir', '', 'a\0b']) t.throws(() => new FileIpam(bad), { kind: 'invalid', message: /dataDir .*: must be an absolute path/ });

  // A network dir that is a symlink (planted by someone else) is never followed.
  const elsewhere = path.join(parent, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.symlinkSync(elsewhere, path.join(dataDir, 'evil'));
  t.throws(() => ipam.allocate('evil', owner, dual), { kind: 'io', message: /not a directory/ });
  t.same(fs.readdirSync(elsewhere), [], 'nothing written through the symlink');
  t.equal(ipam.allocate('a..b', owner, dual).length, 2, '".." inside a name is one harmless component');
  t.ok(fs.statSync(path.join(dataDir, 'a..b')).isDirectory());
});

t.test('lock: held by another process → busy after the timeout; kill -9 of the holder frees it', async (t) => {
  const dataDir = tempDataDir(t);
  const holder = run('hold', { dataDir, network: 'locked' });
  t.teardown(() => void holder.child.kill('SIGKILL'));
  await holder.line('locked');
  const ipam = new FileIpam(dataDir, { lockTimeoutMs: 300 });
  const owner = { containerId: 'c1', ifname: 'eth0' };
  const t0 = Date.now();
  t.throws(() => ipam.allocate('locked', owner, dual), { name: 'IpamError', kind: 'busy', message: /lock is held by another process for more than 300 ms; try again later/ });
  const waited = Date.now() - t0;
  t.ok(waited >= 290 && waited < 3000, `waited ${waited} ms`);
  t.throws(() => ipam.list('locked'), IpamError, 'reads wait for the lock too');
  t.equal(ipam.allocate('other', owner, dual).length, 2, 'other networks are not blocked');

  holder.child.kill('SIGKILL');
  await holder.exited;
  t.same(ipam.allocate('locked', owner, dual).map((a) => a.address), ['10.1.2.2/24', 'fd00::2/120'], 'the kernel dropped the dead holder\'s lock');
});

t.test('measure: allocate + release on disk with fsync', async (t) => {
  const dataDir = tempDataDir(t);
  const N = 60;
  for (const fsync of [true, false]) {
    const ipam = new FileIpam(dataDir, { fsync });
    const net = fsync ? 'sync' : 'nosync';
    let alloc = 0n;
    let rel = 0n;
    for (let i = 0; i < N; i++) {
      const owner = { containerId: `c${i}`, ifname: 'eth0' };
      const a = process.hrtime.bigint();
      ipam.allocate(net, owner, dual);
      const b = process.hrtime.bigint();
      if (i % 2 === 0) ipam.release(net, owner);
      rel += i % 2 === 0 ? process.hrtime.bigint() - b : 0n;
      alloc += b - a;
    }
    t.comment(`fsync=${fsync}: allocate (2 range sets) ${(Number(alloc) / N / 1e6).toFixed(2)} ms, release ${(Number(rel) / (N / 2) / 1e6).toFixed(2)} ms (mean of ${N}, ${N / 2} held at the end)`);
    t.equal(ipam.list(net).length, N, `${N / 2} owners × 2 addresses`);
  }
});
