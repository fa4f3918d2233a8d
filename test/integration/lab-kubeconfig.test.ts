// `podwire lab up --keep` as a playground: the kubeconfig and podwire.json it writes let kubectl and
// podwire, run from the machine's own shell (this process: the root netns), reach the lab's
// control plane through the forwarder on 127.0.0.1, which adds no link, address or route to the
// root netns; `lab down` kills the forwarder (by PID) and removes the files.
import t from 'tap';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readLabStates } from '../../src/lab/lab.js';
import { isAlive } from '../../src/lab/procs.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { CLI } from '../lib/cli.js';
import { FORWARDER_BIN, waitReady } from '../../src/lab/forwarder-start.js';
import { spawn } from 'node:child_process';

const haveKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 180_000, env: { ...process.env, NO_COLOR: '1', ...env } }, (err, out, errOut) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: errOut }));
  });
}
const podwire = (args: string[], env: Record<string, string> = {}) => run(process.execPath, [CLI, ...args], env);

/** The root netns as `ip` shows it: links, addresses, routes (what the lab must not change). */
function rootNetns(): string {
  return ['link', 'addr', 'route'].map((o) => execFileSync('ip', ['-o', o, 'show'], { encoding: 'utf8' }).replace(/\s+(RX|TX|valid_lft|preferred_lft)\S*.*$/gm, '')).join('\n');
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

t.test('lab up --keep: kubectl and podwire from the root netns, lab down removes the forwarder and files', { skip: SKIP_NOT_ROOT }, async (t) => {
  const prefix = `pw-kc${process.pid.toString(36)}-`;
  const before = rootNetns();
  const up = await podwire(['lab', 'up', '--nodes', '2', '--pods-per-node', '1', '--backend', 'host-gw', '--prefix', prefix, '--keep']);
  t.teardown(() => podwire(['lab', 'down', '--prefix', prefix]));
  t.equal(up.code, 0, up.err.trim().slice(0, 300));
  const kubeconfig = /^export KUBECONFIG=(\S+)$/m.exec(up.out)?.[1];
  const podwireConfig = /^export PODWIRE_CONFIG=(\S+)$/m.exec(up.out)?.[1];
  t.ok(kubeconfig && podwireConfig, 'lab up --keep prints the export lines');
  const state = readLabStates().find((s) => s.prefix === prefix)!;
  t.ok(state.access, 'the access is recorded in the lab state');
  const { server, forwarderPid } = state.access!;
  t.match(server, /^https:\/\/127\.0\.0\.1:\d+$/, 'served on loopback');
  t.same([state.access!.kubeconfig, state.access!.podwireConfig], [kubeconfig, podwireConfig]);
  const forwarder = state.procs.find((p) => p.pid === forwarderPid);
  t.ok(forwarder && isAlive(forwarder), 'the forwarder is a tracked, running process of the lab');
  for (const f of [kubeconfig!, podwireConfig!]) t.equal(fs.statSync(f).mode & 0o777, 0o600, `${path.basename(f)} is 0600`);
  t.equal(rootNetns(), before, 'no link, address or route added to the root netns');
  const port = Number(new URL(server).port);
  const listeners = execFileSync('ss', ['-Htlnp'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`pid=${forwarderPid},`));
  t.same(listeners.map((l) => l.trim().split(/\s+/)[3]), [`127.0.0.1:${port}`], 'its only socket in the root netns: one listener on 127.0.0.1');

  // A clean HOME: nothing but the printed files configures the clients.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-kc-home-'));
  t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, PODWIRE_CONFIG: podwireConfig!, KUBECONFIG: kubeconfig! };
  const pw = await podwire(['get', 'nodes', '-o', 'json'], env);
  t.equal(pw.code, 0, `podwire get nodes (${pw.err.trim()})`);
  t.same((JSON.parse(pw.out) as { items: { metadata: { name: string } }[] }).items.map((n) => n.metadata.name).sort(), ['node1', 'node2'], 'podwire sees the lab nodes');
  if (haveKubectl) {
    const kc = await run('kubectl', ['--kubeconfig', kubeconfig!, 'get', 'nodes', '-o', 'json'], { HOME: home, KUBECONFIG: '' });
    t.equal(kc.code, 0, `kubectl get nodes (${kc.err.trim()})`);
    t.same((JSON.parse(kc.out) as { items: { metadata: { name: string } }[] }).items.map((n) => n.metadata.name).sort(), ['node1', 'node2'], 'kubectl sees the lab nodes');
    const svc = await run('kubectl', ['get', 'services', 'echo', '-o', 'jsonpath={.spec.type}'], env);
    t.equal(svc.out, 'NodePort', 'kubectl with KUBECONFIG set as printed: the lab\'s echo service');
  } else t.comment('kubectl not installed: its checks skipped');

  const down = await podwire(['lab', 'down', '--prefix', prefix]);
  t.equal(down.code, 0, down.out);
  t.notOk(isAlive(forwarder!), 'lab down killed the forwarder');
  t.notOk(await connects(port), `nothing listens on 127.0.0.1:${port} any more`);
  t.notOk(fs.existsSync(kubeconfig!) || fs.existsSync(podwireConfig!), 'kubeconfig and podwire.json removed');
  t.equal(rootNetns(), before, 'the root netns as it was');
});

t.test('the forwarder alone: pipes tcp → unix, bounded connections, exits when the watched file goes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-fwd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'echo.sock');
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(sock, r));
  t.teardown(() => echo.close());
  const watch = path.join(dir, 'state.json');
  fs.writeFileSync(watch, '{}');
  const log = path.join(dir, 'forwarder.log');
  const out = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [FORWARDER_BIN, '--forward', `tcp:127.0.0.1:0=unix:${sock}`, '--forward', `unix:${path.join(dir, 'in.sock')}=unix:${sock}`, '--max-connections', '2', '--watch', watch], { stdio: ['ignore', 'pipe', out] });
  fs.closeSync(out);
  t.teardown(() => child.kill('SIGKILL'));
  const ready = await waitReady(child, 'forwarder', log);
  t.equal(ready.pid, child.pid);
  t.match(ready.listening[0], /^tcp:127\.0\.0\.1:[1-9]\d*$/, 'port 0 reported as the real port');
  t.equal(ready.listening[1], `unix:${path.join(dir, 'in.sock')}`);
  t.equal(fs.statSync(path.join(dir, 'in.sock')).mode & 0o777, 0o600, 'unix listener 0600');
  const port = Number(ready.listening[0]!.split(':')[2]);
  const roundTrip = (opts: net.NetConnectOpts) => new Promise<string>((resolve, reject) => {
    const s = net.connect(opts, () => s.end('ping'));
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d)).on('end', () => resolve(got)).on('error', reject);
  });
  t.equal(await roundTrip({ host: '127.0.0.1', port }), 'ping', 'tcp listener → unix target');
  t.equal(await roundTrip({ path: path.join(dir, 'in.sock') }), 'ping', 'unix listener → unix target');
  // Two held connections fill the listener; the third is closed at once.
  const held = await Promise.all([0, 1].map(() => new Promise<net.Socket>((r) => { const s = net.connect({ host: '127.0.0.1', port }, () => r(s)); })));
  await new Promise((r) => setTimeout(r, 100));
  const third = await new Promise<string>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write('x'));
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d)).on('close', () => resolve(got)).on('error', () => undefined);
  });
  t.equal(third, '', 'a connection over --max-connections is closed unanswered');
  for (const s of held) s.destroy();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  fs.rmSync(watch);
  t.equal(await exited, 0, 'exits 0 once the watched file is gone');
  t.notOk(fs.existsSync(path.join(dir, 'in.sock')), 'and removes its unix socket');
});
