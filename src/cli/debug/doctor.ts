// `podwire doctor`'s report (pure): the agents' findings (their checks run in each node's netns,
// src/agent/debug/doctor-checks.ts), plus what only the CLI can tell: an agent that does not
// answer (agent-down), a control plane that does not (controlplane-unreachable), and a node whose
// agent holds another podCIDR than the control plane's Node (podcidr-mismatch). Its rendering and
// exit code too. The CLI may not import src/agent: the finding shape is typed again here.
import type { Paint } from './output.js';
import { EXIT, type DebugOutput } from './output.js';

export type Severity = 'error' | 'warning';

export interface Finding {
  check: string;
  severity: Severity;
  /** The node the finding is about; "" for the control plane's own. */
  node: string;
  message: string;
  fix: string;
}

/** GET /v1/debug/doctor as the CLI reads it (src/agent/debug/doctor.ts DoctorAnswer; facts not used). */
export interface DoctorAgentView {
  node: string;
  podCidr?: string;
  findings: Finding[];
}

export type DoctorAgentAnswer = { ok: true; answer: DoctorAgentView } | { ok: false; error: string };

export interface DoctorInput {
  where: string;
  controlPlane: { server: string; reachable: boolean; error?: string };
  /** The nodes checked; podCidr as the control plane's Node has it (absent when it is unreachable). */
  nodes: { name: string; podCidr?: string }[];
  agents: Map<string, DoctorAgentAnswer>;
  /** How to run podwire status for this target (in fixes). */
  statusCommand: string;
}

export interface DoctorReport {
  healthy: boolean;
  summary: { nodes: number; errors: number; warnings: number };
  findings: Finding[];
}

export function buildDoctorReport(input: DoctorInput): DoctorReport {
  const findings: Finding[] = [];
  const cp = input.controlPlane;
  if (!cp.reachable) {
    findings.push({ check: 'controlplane-unreachable', severity: 'error', node: '', message: `the control plane at ${cp.server} does not answer: ${cp.error ?? 'unknown error'}`, fix: `start or reach the control plane (check --server/--token, or the lab with podwire lab status); then ${input.statusCommand}` });
  }
  for (const n of input.nodes) {
    const a = input.agents.get(n.name);
    if (!a) continue;
    if (!a.ok) {
      findings.push({ check: 'agent-down', severity: 'error', node: n.name, message: `the agent of ${n.name} does not answer: ${a.error}`, fix: `start podwire-agent on ${n.name} (systemctl restart podwire-agent; see its log with journalctl -u podwire-agent); nothing on the node is repaired while it is down` });
      continue;
    }
    findings.push(...a.answer.findings.map((f) => ({ ...f, node: f.node || n.name })));
    const mine = a.answer.podCidr;
    if (cp.reachable && n.podCidr && mine && mine !== n.podCidr) {
      findings.push({ check: 'podcidr-mismatch', severity: 'error', node: n.name, message: `the agent of ${n.name} uses podCIDR ${mine}, the control plane's Node has ${n.podCidr}: routes to this node's pods on other nodes go elsewhere`, fix: `restart podwire-agent on ${n.name} (it re-registers and takes the Node's podCIDR); pods started before keep addresses from ${mine}: re-create them` });
    } else if (cp.reachable && n.podCidr === undefined) {
      findings.push({ check: 'podcidr-mismatch', severity: 'error', node: n.name, message: `the control plane's Node ${n.name} has no podCIDR${mine ? ` (the agent uses ${mine})` : ''}`, fix: `restart podwire-agent on ${n.name} so that it registers again; see ${input.statusCommand}` });
    }
  }
  const rank = (f: Finding) => (f.severity === 'error' ? 0 : 1);
  findings.sort((a, b) => a.node.localeCompare(b.node) || rank(a) - rank(b));
  const errors = findings.filter((f) => f.severity === 'error').length;
  return { healthy: errors === 0, summary: { nodes: input.nodes.length, errors, warnings: findings.length - errors }, findings };
}

/** 0 no error finding, 1 any, 3 when nothing at all answered (neither control plane nor an agent). */
export function doctorExitCode(report: DoctorReport, input: Pick<DoctorInput, 'controlPlane' | 'agents'>): number {
  const anyAgent = [...input.agents.values()].some((a) => a.ok);
  if (!input.controlPlane.reachable && !anyAgent) return EXIT.UNREACHABLE;
  return report.healthy ? EXIT.OK : EXIT.PROBLEM;
}

/** One block per finding (its fix indented under it), then a summary line. */
export function renderDoctor(report: DoctorReport, _mode: DebugOutput, paint: Paint): string {
  const lines: string[] = [];
  const width = Math.max(0, ...report.findings.map((f) => (f.node || '-').length));
  for (const f of report.findings) {
    const sev = f.severity === 'error' ? paint('bad', 'ERROR  ') : paint('warn', 'WARNING');
    lines.push(`${sev}  ${(f.node || '-').padEnd(width)}  ${paint('bold', f.check)}: ${f.message}`);
    lines.push(`${' '.repeat(9 + width + 2)}fix: ${f.fix}`);
  }
  const s = report.summary;
  const tail = report.healthy ? paint('ok', 'healthy') : paint('bad', 'problems found');
  lines.push(`${s.nodes} node${s.nodes === 1 ? '' : 's'} checked, ${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}: ${tail}`);
  return lines.join('\n');
}
