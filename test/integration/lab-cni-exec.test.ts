// The lab's cniExec (src/lab/cluster.ts) bounds the plugin call: a plugin that never exits is
// killed after the time limit and the lab step fails naming the command, the pod and the node.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cniExec } from '../../src/lab/cluster.js';
import { freshNetns, SKIP_NOT_ROOT } from '../lib/netns.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('lab cniExec: a hung plugin is killed after the time limit and the step fails clearly', { skip: SKIP_NOT_ROOT, timeout: 20_000 }, async (t) => {
  const nodeNetns = freshNetns(t, 'cninode');
  const podNetns = freshNetns(t, 'cnipod');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cniexec-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pidFile = path.join(dir, 'pid');
  const plugin = path.join(dir, 'hang');
  // Records its pid, then waits (as `exec sleep`, so the pid is the process cniExec kills).
  fs.writeFileSync(plugin, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 60\n`, { mode: 0o755 });
  const node = { name: 'node1', netns: nodeNetns, dir, socket: path.join(dir, 'agent.sock') };
  const t0 = Date.now();
  await t.rejects(
    cniExec(node, 'ADD', { name: 'echo-node1-1', netns: podNetns, containerId: 'c'.repeat(64) }, { timeoutMs: 500, plugin }),
    /CNI ADD of pod echo-node1-1 on node1 did not finish within 500 ms; the plugin was killed/,
  );
  const ms = Date.now() - t0;
  t.ok(ms < 5000, `rejected after ${ms} ms`);
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  t.notOk(alive(pid), `the plugin process ${pid} is gone`);
});

t.test('lab cniExec: a plugin that exits in time resolves with its exit code and stdout', { skip: SKIP_NOT_ROOT, timeout: 20_000 }, async (t) => {
  const nodeNetns = freshNetns(t, 'cninode');
  const podNetns = freshNetns(t, 'cnipod');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cniexec-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const plugin = path.join(dir, 'quick');
  fs.writeFileSync(plugin, '#!/bin/sh\ncat >/dev/null\necho "{\\"cmd\\":\\"$CNI_COMMAND\\"}"\nexit 3\n', { mode: 0o755 });
  const node = { name: 'node1', netns: nodeNetns, dir, socket: path.join(dir, 'agent.sock') };
  const r = await cniExec(node, 'DEL', { name: 'p', netns: podNetns, containerId: 'd'.repeat(64) }, { timeoutMs: 5000, plugin });
  t.same(r, { code: 3, stdout: '{"cmd":"DEL"}\n' });
});
