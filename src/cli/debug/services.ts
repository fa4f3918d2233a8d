// `podwire services [NAME|NS/NAME]`: the report (each node's agent answer of GET
// /v1/debug/services, merged: one entry per service, port and endpoint, the counters summed over
// the nodes asked and kept per node), its tables and the exit code. Pure. The CLI may not import
// src/agent, so the agent's JSON (src/agent/debug/services-view.ts) is typed again here with the
// fields the command reads; the JSON contract is in src/cli/README.md.
import { EXIT, renderTable, type Cell, type DebugOutput, type Paint } from './output.js';
import { UsageError } from '../../flags/flags.js';

export interface AgentEndpoint {
  ip: string; port: number; ready: boolean; serving: boolean; terminating: boolean; local: boolean; packets: number | null; bytes: number | null;
}
export interface AgentPort { name: string; port: number; protocol: string; nodePort: number | null; endpoints: AgentEndpoint[]; unsplit?: { packets: number; bytes: number } }
export interface AgentService { namespace: string; name: string; type: string; clusterIPs: string[]; externalIPs: string[]; loadBalancerIPs: string[]; ports: AgentPort[] }
export interface AgentServicesAnswer { node: string; mode: string; services: AgentService[] }

/** One node's answer, or why there is none (`reached` false: the agent did not answer; `unknown`: a 404 for the name, with the services it has). */
export type ServicesNodeAnswer =
  | { node: string; ok: true; answer: AgentServicesAnswer }
  | { node: string; ok: false; reached: boolean; error: string; known?: string[] };

export interface NodeCount { packets: number | null; bytes: number | null; local: boolean }
export interface EndpointReport {
  ip: string; port: number; ready: boolean; serving: boolean; terminating: boolean;
  /** Summed over the nodes that answered; null when a node could not split its count by endpoint. */
  packets: number | null;
  bytes: number | null;
  /** Per node (its own DNATs: connections that entered the service on that node). */
  nodes: Record<string, NodeCount>;
}
export interface PortReport { name: string; port: number; protocol: string; nodePort: number | null; endpoints: EndpointReport[] }
export interface ServiceReport { namespace: string; name: string; type: string; clusterIPs: string[]; externalIPs: string[]; loadBalancerIPs: string[]; ports: PortReport[] }
export interface ServicesNode { node: string; agent: 'up' | 'down'; mode: string | null; error: string | null }
export interface ServicesReport {
  /** What was asked: every service, or NAME / NS/NAME. */
  query: { namespace: string | null; name: string | null };
  nodes: ServicesNode[];
  services: ServiceReport[];
}

/** NAME or NS/NAME → the agent query. */
export function parseServiceArg(arg: string | undefined): { namespace?: string; name?: string } {
  if (arg === undefined) return {};
  const parts = arg.split('/');
  const ok = (s: string) => /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(s);
  if (parts.length > 2 || parts.some((p) => !ok(p))) throw new UsageError(`${JSON.stringify(arg)} is not a service name (NAME or NAMESPACE/NAME, lowercase letters, digits, '-' and '.')`);
  return parts.length === 2 ? { namespace: parts[0], name: parts[1] } : { name: parts[0] };
}

const add = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b);

export function buildServicesReport(query: { namespace?: string; name?: string }, answers: ServicesNodeAnswer[]): ServicesReport {
  const services = new Map<string, ServiceReport>();
  const nodes: ServicesNode[] = [];
  for (const a of answers) {
    if (!a.ok) {
      nodes.push({ node: a.node, agent: a.reached ? 'up' : 'down', mode: null, error: a.error });
      continue;
    }
    nodes.push({ node: a.node, agent: 'up', mode: a.answer.mode, error: null });
    for (const s of a.answer.services) {
      const id = `${s.namespace}/${s.name}`;
      let svc = services.get(id);
      if (!svc) {
        svc = { namespace: s.namespace, name: s.name, type: s.type, clusterIPs: s.clusterIPs, externalIPs: s.externalIPs, loadBalancerIPs: s.loadBalancerIPs, ports: [] };
        services.set(id, svc);
      }
      for (const p of s.ports) {
        let port = svc.ports.find((x) => x.port === p.port && x.protocol === p.protocol && x.name === p.name);
        if (!port) {
          port = { name: p.name, port: p.port, protocol: p.protocol, nodePort: p.nodePort, endpoints: [] };
          svc.ports.push(port);
        }
        for (const e of p.endpoints) {
          let ep = port.endpoints.find((x) => x.ip === e.ip && x.port === e.port);
          if (!ep) {
            ep = { ip: e.ip, port: e.port, ready: e.ready, serving: e.serving, terminating: e.terminating, packets: 0, bytes: 0, nodes: {} };
            port.endpoints.push(ep);
          }
          ep.nodes[a.node] = { packets: e.packets, bytes: e.bytes, local: e.local };
          ep.packets = add(ep.packets, e.packets);
          ep.bytes = add(ep.bytes, e.bytes);
        }
      }
    }
  }
  const list = [...services.values()].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  return { query: { namespace: query.namespace ?? null, name: query.name ?? null }, nodes, services: list };
}

/**
 * 3 when an agent did not answer (the counters would be partial), else 0: a listed service without
 * endpoints is not a failure of this command (podwire explain / doctor judge health). An unknown
 * name is a usage error, raised before (unknownServiceError).
 */
export function servicesExitCode(report: ServicesReport): number {
  if (report.nodes.some((n) => n.agent === 'down')) return EXIT.UNREACHABLE;
  if (report.nodes.some((n) => n.error !== null)) return EXIT.PROBLEM;
  return EXIT.OK;
}

const num = (n: number | null) => (n === null ? '?' : String(n));
const ipsText = (s: ServiceReport) => s.clusterIPs.join(',') || 'None';
const portText = (p: PortReport) => `${p.port}${p.nodePort !== null ? `:${p.nodePort}` : ''}/${p.protocol}${p.name ? ` (${p.name})` : ''}`;
const stateCell = (e: EndpointReport): Cell => (e.ready ? { text: 'ready', style: 'ok' } : e.serving ? { text: e.terminating ? 'terminating' : 'serving', style: 'warn' } : { text: 'not ready', style: 'bad' });

/** One row per (service, port, endpoint); a port without endpoints gets one row saying so. -o wide adds external/LB IPs and the counts per node. */
export function renderServices(report: ServicesReport, mode: Exclude<DebugOutput, 'json'>, paint: Paint): string {
  const wide = mode === 'wide';
  const asked = report.nodes.filter((n) => n.agent === 'up' && n.error === null).map((n) => n.node);
  const headers = ['SERVICE', 'TYPE', 'CLUSTER-IP', ...(wide ? ['EXTERNAL-IP'] : []), 'PORT', 'ENDPOINT', 'STATE', 'CONNECTIONS', 'BYTES', ...(wide ? asked.map((n) => `ON ${n}`) : [])];
  const rows: Cell[][] = [];
  for (const s of report.services) {
    const head = [`${s.namespace}/${s.name}`, s.type, ipsText(s), ...(wide ? [[...s.externalIPs, ...s.loadBalancerIPs].join(',') || '-'] : [])];
    for (const p of s.ports) {
      if (p.endpoints.length === 0) rows.push([...head, portText(p), { text: '(no endpoints)', style: 'warn' }, '-', '-', '-', ...(wide ? asked.map(() => '-') : [])]);
      for (const e of p.endpoints) {
        rows.push([...head, portText(p), `${e.ip}:${e.port}`, stateCell(e), num(e.packets), num(e.bytes),
          ...(wide ? asked.map((n) => { const c = e.nodes[n]; return c ? `${num(c.packets)}/${num(c.bytes)}${c.local ? ' (local)' : ''}` : '-'; }) : [])]);
      }
    }
  }
  const out = [report.services.length ? renderTable(headers, rows, paint) : 'no services in the proxies asked'];
  const eps = report.services.reduce((n, s) => n + s.ports.reduce((m, p) => m + p.endpoints.length, 0), 0);
  const down = report.nodes.filter((n) => n.error !== null);
  out.push(`${report.services.length} service${report.services.length === 1 ? '' : 's'}, ${eps} endpoint${eps === 1 ? '' : 's'}; connections DNATed to each endpoint (the first packet of each; bytes: of those packets) ${asked.length > 1 ? `summed over ${asked.length} nodes (${asked.join(', ')}; -o wide: per node)` : `on ${asked[0] ?? 'no node'}`}`);
  if (report.services.some((s) => s.ports.some((p) => p.endpoints.some((e) => e.packets === null)))) out.push('?: a node counts that port as a whole (numgen map pick over 8 or more endpoints in its own chain), not per endpoint');
  for (const n of down) out.push(paint('bad', `  ${n.node}: ${n.error}`));
  return out.join('\n');
}
