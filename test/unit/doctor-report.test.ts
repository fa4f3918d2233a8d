// `podwire doctor`'s report, pure (src/cli/debug/doctor.ts): the agents' findings plus the CLI's
// own (agent-down, controlplane-unreachable, podcidr-mismatch against the control plane's Node),
// the exit code (0 / 1 / 3 when nothing answered) and the text output.
import t from 'tap';
import { painter } from '../../src/cli/debug/output.js';
import { buildDoctorReport, doctorExitCode, renderDoctor, type DoctorAgentAnswer, type DoctorInput, type Finding } from '../../src/cli/debug/doctor.js';

const warn: Finding = { check: 'rp-filter', severity: 'warning', node: 'node1', message: 'strict', fix: 'loosen it' };
const err: Finding = { check: 'ip-forward', severity: 'error', node: 'node2', message: 'off', fix: 'sysctl -w net.ipv4.ip_forward=1' };
const up = (node: string, podCidr: string, findings: Finding[] = []): DoctorAgentAnswer => ({ ok: true, answer: { node, podCidr, findings } });

function input(over: Partial<DoctorInput> = {}): DoctorInput {
  return {
    where: 'lab pw-x-',
    controlPlane: { server: 'unix:/run/cp.sock', reachable: true },
    nodes: [{ name: 'node1', podCidr: '10.244.1.0/24' }, { name: 'node2', podCidr: '10.244.2.0/24' }],
    agents: new Map([['node1', up('node1', '10.244.1.0/24')], ['node2', up('node2', '10.244.2.0/24')]]),
    statusCommand: 'podwire status --lab pw-x-',
    ...over,
  };
}

t.test('healthy, and a warning alone is still healthy', async (t) => {
  const i = input();
  const r = buildDoctorReport(i);
  t.same(r, { healthy: true, summary: { nodes: 2, errors: 0, warnings: 0 }, findings: [] });
  t.equal(doctorExitCode(r, i), 0);
  t.equal(renderDoctor(r, 'table', painter(false)), '2 nodes checked, 0 errors, 0 warnings: healthy');
  const w = input({ agents: new Map([['node1', up('node1', '10.244.1.0/24', [warn])], ['node2', up('node2', '10.244.2.0/24')]]) });
  const rw = buildDoctorReport(w);
  t.equal(rw.healthy, true);
  t.equal(doctorExitCode(rw, w), 0);
});

t.test('agent findings sorted by node, errors first; exit 1', async (t) => {
  const i = input({ agents: new Map([['node1', up('node1', '10.244.1.0/24', [warn])], ['node2', up('node2', '10.244.2.0/24', [err])]]) });
  const r = buildDoctorReport(i);
  t.same(r.findings.map((f) => `${f.node} ${f.check}`), ['node1 rp-filter', 'node2 ip-forward']);
  t.same(r.summary, { nodes: 2, errors: 1, warnings: 1 });
  t.equal(doctorExitCode(r, i), 1);
  const text = renderDoctor(r, 'table', painter(false));
  t.match(text, /^WARNING  node1  rp-filter: strict\n {16}fix: loosen it\nERROR    node2  ip-forward: off\n {16}fix: sysctl -w net\.ipv4\.ip_forward=1\n2 nodes checked, 1 error, 1 warning: problems found$/);
  t.notMatch(text, /\x1b\[/);
  t.match(renderDoctor(r, 'table', painter(true)), /\x1b\[31mERROR/);
});

t.test('agent-down', async (t) => {
  const i = input({ agents: new Map([['node1', up('node1', '10.244.1.0/24')], ['node2', { ok: false, error: 'nothing listens on /x.sock (agent stopped?)' }]]) });
  const r = buildDoctorReport(i);
  t.equal(r.findings.length, 1);
  t.match(r.findings[0], { check: 'agent-down', severity: 'error', node: 'node2', message: /nothing listens/, fix: /podwire-agent/ });
  t.equal(doctorExitCode(r, i), 1);
});

t.test('podcidr-mismatch between the agent and the control plane', async (t) => {
  const i = input({ agents: new Map([['node1', up('node1', '10.244.9.0/24')], ['node2', up('node2', '10.244.2.0/24')]]) });
  const r = buildDoctorReport(i);
  t.equal(r.findings.length, 1);
  t.match(r.findings[0], { check: 'podcidr-mismatch', severity: 'error', node: 'node1', message: /uses podCIDR 10\.244\.9\.0\/24, the control plane's Node has 10\.244\.1\.0\/24/, fix: /restart podwire-agent on node1/ });
  const none = input({ nodes: [{ name: 'node1' }] , agents: new Map([['node1', up('node1', '10.244.1.0/24')]]) });
  t.match(buildDoctorReport(none).findings, [{ check: 'podcidr-mismatch', message: /has no podCIDR/ }]);
});

t.test('controlplane-unreachable: exit 1 while an agent answers, 3 when nothing does', async (t) => {
  const cp = { server: 'http://127.0.0.1:6443', reachable: false, error: 'ECONNREFUSED' };
  const i = input({ controlPlane: cp, nodes: [{ name: 'node1' }], agents: new Map([['node1', up('node1', '10.244.1.0/24')]]) });
  const r = buildDoctorReport(i);
  t.same(r.findings.map((f) => [f.check, f.node]), [['controlplane-unreachable', '']], 'no podCIDR comparison without the control plane');
  t.match(r.findings[0]!.message, /127\.0\.0\.1:6443 does not answer: ECONNREFUSED/);
  t.equal(doctorExitCode(r, i), 1);
  const dead = input({ controlPlane: cp, nodes: [{ name: 'node1' }], agents: new Map([['node1', { ok: false, error: 'no socket' }]]) });
  const rd = buildDoctorReport(dead);
  t.same(rd.findings.map((f) => f.check), ['controlplane-unreachable', 'agent-down']);
  t.equal(doctorExitCode(rd, dead), 3);
  t.match(renderDoctor(rd, 'table', painter(false)), /^ERROR    -      controlplane-unreachable:/);
});
