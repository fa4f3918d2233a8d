// The netns lab: built only inside its own namespaces, reachable over the underlay, and always torn
// down (normal end, failure during build, SIGINT/SIGTERM; after SIGKILL, `lab down` removes it).
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { Lab, leakCheck } from '../../src/lab/lab.js';
import { newLabPrefix } from '../../src/lab/names.js';
import { runProbes } from '../../src/lab/connectivity.js';
import { listNetns } from '../../src/netns/netns.js';
import { ipJson, SKIP_NOT_ROOT } from '../lib/netns.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');
const rootLinks = () => execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
const withPrefix = (prefix: string) => listNetns().filter((n) => n.startsWith(prefix));

t.test('lab: 3 nodes on an underlay in its own netns, reachable, torn down clean', { skip: SKIP_NOT_ROOT }, async (t) => {
  const before = JSON.parse(rootLinks()).map((l: any) => l.ifname).sort();
  const lab = Lab.create({ nodes: 3 });
  t.teardown(() => lab.destroy());
  t.same(withPrefix(lab.prefix).sort(), [`${lab.prefix}node1`, `${lab.prefix}node2`, `${lab.prefix}node3`, `${lab.prefix}underlay`]);
  const br = ipJson(lab.state.underlayNetns, ['link', 'show', 'dev', 'br0'])[0];
  t.equal(br.linkinfo.info_kind, 'bridge', 'underlay bridge lives in the underlay netns');
  const ports = ipJson(lab.state.underlayNetns, ['link', 'show', 'master', 'br0']).map((l: any) => l.ifname).sort();
  t.same(ports, ['node1', 'node2', 'node3']);
  for (const n of lab.nodes) {
    const eth = ipJson(n.netns, ['addr', 'show', 'dev', 'eth0'])[0];
    t.ok(eth.addr_info.some((a: any) => `${a.local}/${a.prefixlen}` === n.underlayCidr), `${n.name} has ${n.underlayCidr}`);
    t.equal(eth.address, n.mac);
    t.same(ipJson(n.netns, ['link', 'show']).map((l: any) => l.ifname).sort(), ['eth0', 'lo']);
  }
  const probes = lab.nodes.flatMap((a) => lab.nodes.filter((b) => b !== a).map((b) => ({ from: a.name, fromNetns: a.netns, to: b.name, toIp: b.underlayIp, kind: 'ping' as const })));
  const results = await runProbes(probes);
  t.equal(results.filter((r) => r.ok).length, 6, 'all 6 node pairs ping over the underlay');
  const after = JSON.parse(rootLinks()).map((l: any) => l.ifname).sort();
  t.same(after, before, 'the root netns gained no link');
  t.same(lab.destroy(), [], 'leak check is clean');
  t.same(withPrefix(lab.prefix), [], 'no namespace left');
});

t.test('lab: a failure during build removes what was already created', { skip: SKIP_NOT_ROOT }, async (t) => {
  const prefix = newLabPrefix();
  t.throws(() => Lab.create({ nodes: 2, prefix, mtu: 50 }), /invalid mtu 50/);
  t.same(withPrefix(prefix), [], 'underlay netns created before the failure is gone');
  t.throws(() => Lab.create({ nodes: 300 }), /--nodes must be an integer in 1-64/);
  t.throws(() => Lab.create({ nodes: 2, prefix: '../evil-' }), /invalid lab prefix/);
  t.throws(() => Lab.create({ nodes: 60, underlayCidr: '192.0.2.0/28' }), /too small/);
});

interface Holder {
  child: ReturnType<typeof spawn>;
  sleeperPid: number;
}

/** The sleeper is gone, or a zombie left for init to reap (it can no longer hold the netns). */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^\S+ \(.*\) [ZX] /.test(stat);
  } catch {
    return true;
  }
}

function startHolder(prefix: string): Promise<Holder> {
  const child = spawn(process.execPath, [path.join(root, 'dist/test/lib/lab-hold.js'), prefix, '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('lab-hold did not become ready in 20 s')), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /ready \S+ (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, sleeperPid: Number(m[1]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`lab-hold exited early (${code}): ${out}`)));
  });
}

for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  t.test(`lab: ${signal} tears the lab down, including the processes it started`, { skip: SKIP_NOT_ROOT }, async (t) => {
    const prefix = newLabPrefix();
    const { child, sleeperPid } = await startHolder(prefix);
    t.equal(withPrefix(prefix).length, 3, 'lab is up');
    t.notOk(processGone(sleeperPid), 'the process the lab started runs');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    child.kill(signal);
    t.equal(await exited, code, `exit status ${code}`);
    t.same(withPrefix(prefix), [], 'no namespace left');
    t.same(leakCheck({ prefix, procs: [] }), []);
    t.ok(processGone(sleeperPid), 'the process the lab started was killed');
  });
}

t.test('lab: after SIGKILL, `podwire lab down --prefix` removes the leftovers', { skip: SKIP_NOT_ROOT }, async (t) => {
  const prefix = newLabPrefix();
  const { child, sleeperPid } = await startHolder(prefix);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  t.equal(withPrefix(prefix).length, 3, 'SIGKILL leaves the lab behind (nothing can run on SIGKILL)');
  const out = execFileSync(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'lab', 'down', '--prefix', prefix], { encoding: 'utf8' });
  t.match(out, new RegExp(`lab ${prefix}: removed`));
  t.same(withPrefix(prefix), [], 'removed');
  t.ok(processGone(sleeperPid), 'the recorded process was killed by PID');
});
