// The main job as users run it: `podwire lab up` builds the cluster, prints the matrices and the
// verdict line, and leaves nothing behind; with --keep, `podwire lab down` removes the namespaces,
// the processes (control plane, agents, echo servers) and the cluster's files.
import t from 'tap';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { listNetns } from '../../src/netns/netns.js';
import { LAB_STATE_DIR, readLabStates } from '../../src/lab/lab.js';
import { isAlive } from '../../src/lab/procs.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';

const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src', 'cli', 'main.js');

function podwire(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 180_000 }, (err, out, errOut) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: errOut }));
  });
}

t.test('lab up: the whole cluster, every path ok, verdict line, clean teardown', { skip: SKIP_NOT_ROOT }, async (t) => {
  const prefix = `pw-lu${process.pid.toString(36)}-`;
  const r = await podwire(['lab', 'up', '--nodes', '2', '--pods-per-node', '2', '--prefix', prefix]);
  t.equal(r.code, 0, `exit 0 (${r.err.trim().slice(0, 300)})`);
  t.match(r.out, /\+ control plane: 192\.0\.2\.2:6443/, 'progress: control plane');
  t.match(r.out, /\+ node1: agent up, podCIDR 10\.244\.\d+\.0\/24, 1 peers, backend vxlan/, 'progress: agents');
  t.match(r.out, /\+ node2: pod echo-node2-2 10\.244\.\d+\.\d+ \(CNI ADD\)/, 'progress: pods');
  t.match(r.out, /^echo-node1-1\s+-\s+ok\s+ok\s+ok\s+ok\s*$/m, 'matrix row of one pod: every destination ok');
  const lines = r.out.trim().split('\n');
  t.match(r.out, /^echo\s+NodePort\s+10\.96\.\d+\.\d+\s+<none>\s+80:3\d{4}\/TCP\s+4\s/m, 'podwire get services: the echo service with its 4 endpoints');
  t.match(r.out, /^outside\s+-\s+-\s+ok\s+ok\s*$/m, 'the outside host reaches the NodePort on both nodes (no ClusterIP, no by-name column)');
  t.match(r.out, /echo:80 by name/, 'the service matrix has the by-name column (the cluster DNS)');
  t.match(lines.at(-2), /^connectivity: 32\/32 ok$/, 'the verdict: 2 node paths + 4 pods × (3 pods + outside) + 4 pods × (ClusterIP + echo by name) + (2 nodes + outside) × 2 NodePorts');
  t.match(lines.at(-1), /^teardown: clean/);
  t.same(listNetns().filter((n) => n.startsWith(prefix)), [], 'no namespace left');
  t.notOk(fs.existsSync(path.join(LAB_STATE_DIR, `${prefix.replace(/-$/, '')}.d`)), 'no cluster files left');
});

t.test('lab up --keep, then lab down: namespaces, processes and files all go', { skip: SKIP_NOT_ROOT }, async (t) => {
  const prefix = `pw-lk${process.pid.toString(36)}-`;
  const up = await podwire(['lab', 'up', '--nodes', '2', '--pods-per-node', '1', '--backend', 'host-gw', '--prefix', prefix, '--keep']);
  t.teardown(() => podwire(['lab', 'down', '--prefix', prefix]));
  t.equal(up.code, 0, up.err.trim().slice(0, 300));
  t.match(up.out, /kept: lab /);
  const state = readLabStates().find((s) => s.prefix === prefix);
  t.ok(state && state.procs.length >= 6, `recorded processes: control plane, 2 agents, echo servers (${state?.procs.length})`);
  t.ok(state!.procs.every(isAlive), 'all running while kept');
  const down = await podwire(['lab', 'down', '--prefix', prefix]);
  t.equal(down.code, 0);
  t.match(down.out, new RegExp(`lab ${prefix}: removed`));
  t.same(listNetns().filter((n) => n.startsWith(prefix)), []);
  t.ok(state!.procs.every((p) => !isAlive(p)), 'every process it started is gone');
  t.notOk(fs.existsSync(path.join(LAB_STATE_DIR, `${prefix.replace(/-$/, '')}.d`)), 'cluster files removed');
});
