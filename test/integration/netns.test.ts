// Named netns against iproute2 (`ip netns`), thread switching, per-netns sysctls and child
// processes. Every change happens in a pw- netns created here and deleted even on failure; the
// root netns is only ever read.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  createNetns, deleteNetns, execInNetns, listNetns, netnsExists, openNetns, spawnInNetns, sysctlGet, sysctlSet,
  withNetns,
} from '../../src/netns/index.js';
import { freshNetns, run, SKIP_NOT_ROOT } from '../lib/netns.js';

interface Teardown {
  teardown(fn: () => void): void;
}

const skip = SKIP_NOT_ROOT;
const threadNetns = (): number => fs.statSync('/proc/thread-self/ns/net').ino;
const netnsInode = (name: string): number => fs.statSync(`/run/netns/${name}`).ino;

/** A unique pw- name, not created yet, removed at teardown by whichever tool made it. */
function plannedName(t: Teardown, label: string): string {
  const name = `pw-t${randomBytes(3).toString('hex')}-${label}`;
  t.teardown(() => {
    if (netnsExists(name)) deleteNetns(name);
  });
  return name;
}

function ipNetnsList(): string[] {
  const out = execFileSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8' }).trim();
  return out ? (JSON.parse(out) as Array<{ name: string }>).map((e) => e.name) : [];
}

t.test('a netns we create is listed by `ip netns` and usable with `ip netns exec`', { skip }, async (t) => {
  const name = plannedName(t, 'ours');
  createNetns(name);
  t.ok(ipNetnsList().includes(name), 'in ip netns list');
  t.ok(listNetns().includes(name), 'in our list');
  const links = JSON.parse(run(name, 'ip', ['-j', 'link'])) as Array<{ ifname: string }>;
  t.same(links.map((l) => l.ifname), ['lo'], 'a new netns has only lo');
  const seen = run(name, 'readlink', ['/proc/self/ns/net']).trim();
  t.equal(seen, `net:[${netnsInode(name)}]`, 'ip netns exec enters the very netns we bind-mounted');
  t.not(netnsInode(name), threadNetns(), 'and it is not ours');
});

t.test('a netns made by `ip netns add` can be opened and entered by us', { skip }, async (t) => {
  const name = plannedName(t, 'iproute');
  execFileSync('ip', ['netns', 'add', name]);
  t.ok(listNetns().includes(name));
  const ref = openNetns(name);
  t.teardown(() => ref.close());
  t.equal(fs.fstatSync(ref.fd).ino, netnsInode(name));
  t.equal(withNetns(ref, threadNetns), netnsInode(name), 'entered through the ref');
  t.equal(withNetns(name, threadNetns), netnsInode(name), 'entered by name');
});

t.test('delete removes a netns for both tools, whichever made it', { skip }, async (t) => {
  const byIp = plannedName(t, 'delip');
  execFileSync('ip', ['netns', 'add', byIp]);
  deleteNetns(byIp);
  t.notOk(ipNetnsList().includes(byIp), 'our delete of an ip-made netns');
  t.notOk(fs.existsSync(`/run/netns/${byIp}`));

  const byUs = plannedName(t, 'delus');
  createNetns(byUs);
  execFileSync('ip', ['netns', 'del', byUs]);
  t.notOk(listNetns().includes(byUs), 'ip netns del of ours');
  t.throws(() => deleteNetns(byUs), { code: 'ENOENT', message: /does not exist/ }, 'deleting twice says so');
});

t.test('creating an existing name fails with EEXIST and leaves the netns intact', { skip }, async (t) => {
  const name = freshNetns(t, 'dup');
  const before = netnsInode(name);
  t.throws(() => createNetns(name), { name: 'NetnsError', code: 'EEXIST', message: new RegExp(`create netns ${name}.*EEXIST.*delete it first`) });
  t.equal(netnsInode(name), before, 'still the same netns');
  t.equal(threadNetns(), fs.statSync('/proc/self/ns/net').ino, 'and we are still home');
  const byIp = plannedName(t, 'dupip');
  execFileSync('ip', ['netns', 'add', byIp]);
  t.throws(() => createNetns(byIp), { code: 'EEXIST' }, 'also for one made by ip netns add');
});

t.test('invalid names are rejected everywhere, before touching the filesystem', { skip }, async (t) => {
  const before = listNetns();
  for (const bad of ['../x', 'a/b', '', 'x'.repeat(65), '.', '..', '-x', 'a b']) {
    const label = JSON.stringify(bad.length > 20 ? `${bad.length} chars` : bad);
    t.throws(() => createNetns(bad), { code: 'EINVAL', message: /invalid netns name/ }, `create ${label}`);
    t.throws(() => openNetns(bad), { code: 'EINVAL' }, `open ${label}`);
    t.throws(() => deleteNetns(bad), { code: 'EINVAL' }, `delete ${label}`);
  }
  t.notOk(fs.existsSync('/run/x'), '../x did not escape /run/netns');
  t.same(listNetns(), before);
  const longest = plannedName(t, 'x'.repeat(64 - 11));
  t.equal(longest.length, 64);
  createNetns(longest);
  t.ok(ipNetnsList().includes(longest), '64 characters is still fine');
});

t.test('opening a missing netns gives a clear error and does not switch', { skip }, async (t) => {
  const home = threadNetns();
  const missing = `pw-t${randomBytes(3).toString('hex')}-missing`;
  t.throws(() => openNetns(missing), { code: 'ENOENT', message: new RegExp(`cannot open netns "${missing}".*does it exist`) });
  t.throws(() => withNetns(missing, () => t.fail('must not run')), { code: 'ENOENT' });
  t.equal(threadNetns(), home);
});

t.test('opening a file that is not a netns gives a clear error', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-netns-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, 'not a namespace');
  t.throws(() => openNetns(file), { code: 'EINVAL', message: /is not a network namespace/ });
  t.throws(() => openNetns(dir), { code: 'EINVAL', message: /is not a network namespace/ }, 'a directory neither');
  const home = threadNetns();
  t.throws(() => withNetns('/proc/self/ns/uts', () => t.fail('must not run')), { code: 'EINVAL', message: /\/proc\/self\/ns\/uts is not a network namespace/ }, 'another namespace type is refused at open');
  t.equal(threadNetns(), home);
});

t.test('withNetns switches only for the duration of the function', { skip }, async (t) => {
  const name = freshNetns(t, 'with');
  const home = threadNetns();
  const inside = withNetns(name, threadNetns);
  t.equal(inside, netnsInode(name), 'inside: the target netns');
  t.not(inside, home);
  t.equal(threadNetns(), home, 'after: back home');

  const boom = new Error('boom');
  t.throws(() => withNetns(name, () => {
    throw boom;
  }), boom, 'the error passes through as is');
  t.equal(threadNetns(), home, 'back home after a throw');
});

t.test('withNetns refuses an async function and still switches back', { skip }, async (t) => {
  const name = freshNetns(t, 'async');
  const home = threadNetns();
  t.throws(() => withNetns(name, async () => 1), { code: 'EINVAL', message: /only synchronous work/ });
  t.equal(threadNetns(), home);
});

t.test('withNetns refuses an async function before running any of it', { skip }, async (t) => {
  const name = freshNetns(t, 'async2');
  let ran = false;
  t.throws(() => withNetns(name, async () => {
    ran = true;
  }));
  t.notOk(ran);
});

t.test('nested withNetns returns to the outer netns', { skip }, async (t) => {
  const a = freshNetns(t, 'outer');
  const b = freshNetns(t, 'inner');
  const seen = withNetns(a, () => {
    withNetns(b, () => undefined);
    return threadNetns();
  });
  t.equal(seen, netnsInode(a));
});

t.test('sysctls are per netns: set in A, unseen in B and in the root netns', { skip }, async (t) => {
  const a = freshNetns(t, 'sysa');
  const b = freshNetns(t, 'sysb');
  const key = 'net.ipv4.ip_forward';
  const rootBefore = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(); // read only, never written
  const initial = sysctlGet(b, key);
  const wanted = initial === '1' ? '0' : '1';
  sysctlSet(a, key, Number(wanted));
  t.equal(sysctlGet(a, key), wanted);
  t.equal(run(a, 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim(), wanted, 'the oracle agrees');
  t.equal(sysctlGet(b, key), initial, 'B unchanged');
  t.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), rootBefore, 'root netns unchanged');
  const ref = openNetns(a);
  t.teardown(() => ref.close());
  t.equal(sysctlGet(ref, 'net.ipv4.conf.lo.forwarding'), wanted, 'by ref; ip_forward is conf.all.forwarding');
  t.throws(() => sysctlGet(a, 'net.ipv4.no_such_key'), /ENOENT/);
  t.throws(() => sysctlSet(a, 'net.ipv4.ip_forward', 'x\n1'), /single line/);
});

t.test('non-net sysctl keys are refused without touching anything', { skip }, async (t) => {
  const a = freshNetns(t, 'sysbad');
  for (const key of ['kernel.hostname', 'vm.swappiness', 'net', 'net.ipv4', 'net.ipv4..ip_forward', 'net/ipv4/ip_forward', 'net.ipv4.conf.all.../../x']) {
    t.throws(() => sysctlSet(a, key, 1), { code: 'EINVAL', message: /only net\.\* keys are per-netns/ }, `set ${key}`);
    t.throws(() => sysctlGet(a, key), { code: 'EINVAL' }, `get ${key}`);
  }
});

t.test('execInNetns runs the child in the netns; the parent stays home', { skip }, async (t) => {
  const name = freshNetns(t, 'exec');
  const home = threadNetns();
  const res = await execInNetns(name, 'ip', ['-j', 'link']);
  t.equal(res.code, 0, res.stderr);
  t.same((JSON.parse(res.stdout) as Array<{ ifname: string }>).map((l) => l.ifname), ['lo']);
  const self = await execInNetns(name, 'readlink', ['/proc/self/ns/net']);
  t.equal(self.stdout.trim(), `net:[${netnsInode(name)}]`);
  t.equal(threadNetns(), home);
  const failed = await execInNetns(name, 'ip', ['link', 'show', 'nosuchdev']);
  t.not(failed.code, 0, 'a failing command resolves with its exit code');
  t.match(failed.stderr, /does not exist/);
  const echoed = await execInNetns(name, 'cat', [], { input: 'hello' });
  t.equal(echoed.stdout, 'hello', 'stdin is passed');
});

t.test('spawnInNetns: a long-running child lives in the netns', { skip }, async (t) => {
  const name = freshNetns(t, 'spawn');
  const child = spawnInNetns(name, 'sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.equal(fs.readlinkSync(`/proc/${child.pid}/ns/net`), `net:[${netnsInode(name)}]`);
  t.not(fs.readlinkSync('/proc/self/ns/net'), `net:[${netnsInode(name)}]`);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
});
