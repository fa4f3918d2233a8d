// prepareNodeSysctls against a fake /proc/sys tree and a fake modprobe.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { prepareNodeSysctls } from '../../src/agent/node-sysctls.js';
import type { CommandResult, CommandRunner } from '../../src/exec/runner.js';

function tree(t: Test, files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-sysctl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [k, v] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, k)), { recursive: true });
    fs.writeFileSync(path.join(dir, k), v + '\n');
  }
  return dir;
}

const read = (dir: string, k: string) => fs.readFileSync(path.join(dir, k), 'utf8').trim();

function runner(onModprobe: () => CommandResult): CommandRunner & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    run(cmd, args) {
      calls.push([cmd, ...args].join(' '));
      if (cmd !== 'modprobe') throw new Error(`unexpected ${cmd}`);
      return onModprobe();
    },
  };
}

const ok: CommandResult = { code: 0, stdout: '', stderr: '' };

t.test('br_netfilter present with the calls off: both set to 1, ip_forward set, no modprobe', async (t) => {
  const dir = tree(t, { 'net/ipv4/ip_forward': '0', 'net/bridge/bridge-nf-call-iptables': '0', 'net/bridge/bridge-nf-call-ip6tables': '0' });
  const r = runner(() => ok);
  t.same(prepareNodeSysctls(r, dir), []);
  t.same(r.calls, [], 'the module is there: modprobe never runs');
  t.equal(read(dir, 'net/ipv4/ip_forward'), '1');
  t.equal(read(dir, 'net/bridge/bridge-nf-call-iptables'), '1');
  t.equal(read(dir, 'net/bridge/bridge-nf-call-ip6tables'), '1');
});

t.test('already right: nothing written', async (t) => {
  const dir = tree(t, { 'net/ipv4/ip_forward': '1', 'net/bridge/bridge-nf-call-iptables': '1' });
  const f = path.join(dir, 'net/bridge/bridge-nf-call-iptables');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(f, old, old);
  const before = fs.statSync(f).mtimeMs;
  t.same(prepareNodeSysctls(runner(() => ok), dir), [], 'no IPv6 key: skipped, no warning');
  t.equal(fs.statSync(f).mtimeMs, before, 'the value that was already 1 is not rewritten');
});

t.test('br_netfilter missing: modprobe loads it, then the calls are set', async (t) => {
  const dir = tree(t, { 'net/ipv4/ip_forward': '1' });
  const r = runner(() => {
    fs.mkdirSync(path.join(dir, 'net/bridge'));
    fs.writeFileSync(path.join(dir, 'net/bridge/bridge-nf-call-iptables'), '0\n');
    return ok;
  });
  t.same(prepareNodeSysctls(r, dir), []);
  t.same(r.calls, ['modprobe br_netfilter']);
  t.equal(read(dir, 'net/bridge/bridge-nf-call-iptables'), '1');
});

t.test('br_netfilter unavailable: one warning that says what fails and what to do; ip_forward still set', async (t) => {
  const dir = tree(t, { 'net/ipv4/ip_forward': '0' });
  const w = prepareNodeSysctls(runner(() => ({ code: 1, stdout: '', stderr: 'modprobe: FATAL: Module br_netfilter not found' })), dir);
  t.equal(w.length, 1);
  t.match(w[0], { key: 'br_netfilter', message: /modprobe br_netfilter exited 1: modprobe: FATAL: Module br_netfilter not found.*same node.*connections fail.*modules-load\.d/ });
  t.equal(read(dir, 'net/ipv4/ip_forward'), '1');
  const missing = prepareNodeSysctls({ run: () => { throw new Error('modprobe is not installed'); } }, dir);
  t.match(missing[0]?.message, /br_netfilter is not available \(modprobe is not installed\)/);
});

t.test('ip_forward that cannot be written throws (the node forwards nothing)', async (t) => {
  const dir = tree(t, {});
  t.throws(() => prepareNodeSysctls(runner(() => ok), path.join(dir, 'missing')), /ENOENT/);
});
