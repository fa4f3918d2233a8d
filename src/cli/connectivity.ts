// `podwire connectivity [--services] [--dns] [--concurrency N] [--lab PREFIX] [-o wide|json]`: the
// full pod ↔ pod matrix (with --services pod → service port, with --dns pod → service name)
// across all nodes. Each probe runs in the source pod's existing netns, by its node's agent: ICMP
// echo (POST /v1/debug/ping, count 1) for pods, a TCP connect (POST /v1/debug/connect) for
// services, an A lookup at the cluster DNS address (POST /v1/debug/resolve) for names. The plan, summary, matrix and
// exit code are pure (debug/connectivity.ts).
import type { ClusterConfig, Endpoints, Pod, Service } from '../api/objects.js';
import { readLabStates } from '../lab/lab.js';
import { isIp } from '../net/ip.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { agentRequest, AgentRequestError } from './debug/agent.js';
import { colourEnabled, formatJson, painter, parseDebugOutput } from './debug/output.js';
import { fromControlPlane, readCluster } from './debug/cluster.js';
import { resolveTarget, TARGET_FLAGS, type DebugTarget } from './debug/target.js';
import { NETNS_ANNOTATION } from './lab-exec.js';
import type { PingAnswer } from './debug/ping.js';
import { buildReport, connectivityExitCode, mapBounded, planProbes, renderMatrix, type DnsRef, type PairResult, type PodRef, type Probe, type ServiceRef, type SkippedDestination } from './debug/connectivity.js';

const CONNECTIVITY_FLAGS: FlagSpecs = {
  services: { type: 'bool', help: 'also a TCP connect from every pod to every ClusterIP TCP service port' },
  dns: { type: 'bool', help: 'also resolve every service\'s name NAME.NS.svc.ZONE (A, at the cluster DNS address) from every pod; ok when the answer is its ClusterIP' },
  concurrency: { type: 'int', default: 8, min: 1, max: 64, help: 'probes in flight at once' },
  'timeout-ms': { type: 'int', default: 1000, min: 10, max: 10_000, help: 'per probe' },
  output: { type: 'string', alias: 'o', help: 'wide (with each pair\'s time) or json (default: the matrix)' },
  ...TARGET_FLAGS,
};

export const CONNECTIVITY_USAGE = `usage: podwire connectivity [--services] [--dns] [--concurrency N] [--lab PREFIX] [-o wide|json]
  every Running pod pings every other (from inside its own netns, by its node's agent); with
  --services every pod also connects (TCP) to every ClusterIP service port (a service without a
  ready endpoint is listed as not probed); with --dns every pod also looks up every ClusterIP
  service's name at the cluster DNS address (its node's DNS server answers). No probe pods.
  exit 0 all ok, 1 any failure, 2 usage error, 3 the control plane or an agent cannot be reached
connectivity flags:
${flagHelp(CONNECTIVITY_FLAGS)}`;


export function podRefs(pods: Pod[]): PodRef[] {
  return pods
    .filter((p) => p.status?.phase === 'Running' && p.status.podIP && isIp(p.status.podIP, 4) && p.spec?.nodeName)
    .map((p) => {
      const hint = p.metadata.annotations?.[NETNS_ANNOTATION];
      return { name: `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`, ip: p.status!.podIP!, node: p.spec!.nodeName!, ...(hint ? { netnsHint: hint } : {}) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Each ClusterIP TCP service port to probe. With `endpoints` (the cluster's Endpoints), a service
 * whose Endpoints hold no ready address is not probed but listed in `skipped`: a connect to it can
 * only be refused, which says nothing about the network (explain and doctor name such a service).
 */
export function serviceRefs(services: Service[], endpoints?: Endpoints[]): { refs: ServiceRef[]; skipped: SkippedDestination[] } {
  const ready = endpoints && new Set(endpoints.filter((e) => (e.subsets ?? []).some((s) => (s.addresses ?? []).length > 0)).map((e) => `${e.metadata.namespace ?? 'default'}/${e.metadata.name}`));
  const refs: ServiceRef[] = [];
  const skipped: SkippedDestination[] = [];
  for (const s of services) {
    const ip = s.spec.clusterIP;
    if (!ip || !isIp(ip, 4) || (s.spec.type ?? 'ClusterIP') === 'ExternalName') continue;
    const key = `${s.metadata.namespace ?? 'default'}/${s.metadata.name}`;
    for (const p of s.spec.ports ?? []) {
      if ((p.protocol ?? 'TCP') !== 'TCP') continue;
      const name = `${key}:${p.port}`;
      if (ready && !ready.has(key)) skipped.push({ destination: name, reason: 'no ready endpoint (nothing to connect to; see podwire explain)' });
      else refs.push({ name, ip, port: p.port });
    }
  }
  const byName = (a: { name?: string; destination?: string }, b: { name?: string; destination?: string }) => (a.name ?? a.destination!).localeCompare(b.name ?? b.destination!);
  return { refs: refs.sort(byName), skipped: skipped.sort(byName) };
}

/** Each service with an IPv4 ClusterIP, by its FQDN in the cluster zone (headless and ExternalName ones have no single answer to check). */
export function dnsRefs(services: Service[], zone: string): DnsRef[] {
  return services
    .filter((s) => s.spec.clusterIP && isIp(s.spec.clusterIP, 4) && (s.spec.type ?? 'ClusterIP') !== 'ExternalName')
    .map((s) => ({ name: `${s.metadata.name}.${s.metadata.namespace ?? 'default'}.svc.${zone}`, ip: s.spec.clusterIP! }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const readClusterConfig = (target: DebugTarget): Promise<ClusterConfig['spec']> =>
  fromControlPlane(target, 'read the cluster config (clusterDNS, clusterDomain)', async (c) => (await c.request<ClusterConfig>('GET', '/api/v1/clusterconfig')).spec);

const listEndpoints = (target: DebugTarget): Promise<Endpoints[]> =>
  fromControlPlane(target, 'list Endpoints', async (c) => (await c.list<Endpoints>({ plural: 'endpoints' })).items);

async function runProbe(target: DebugTarget, p: Probe, timeoutMs: number, clusterDns?: string): Promise<PairResult> {
  const base = { source: p.source.name, destination: p.destination, kind: p.kind };
  const hint = p.source.netnsHint ? { netnsHint: p.source.netnsHint } : {};
  try {
    if (p.kind === 'pod') {
      const a = await agentRequest<PingAnswer>(target, p.source.node, 'POST', '/v1/debug/ping', { srcIp: p.source.ip, ...hint, dst: p.ip, count: 1, intervalMs: 10, timeoutMs }, timeoutMs + 10_000);
      return a.received > 0 ? { ...base, ok: true, ms: a.rttMs?.avg ?? null } : { ...base, ok: false, ms: null, error: `no echo reply from ${p.ip} within ${timeoutMs} ms` };
    }
    if (p.kind === 'dns') {
      const a = await agentRequest<{ ok: boolean; ms: number | null; addresses?: string[]; error?: string }>(target, p.source.node, 'POST', '/v1/debug/resolve', { srcIp: p.source.ip, ...hint, server: clusterDns, name: p.destination, timeoutMs }, timeoutMs + 10_000);
      if (!a.ok) return { ...base, ok: false, ms: null, error: a.error ?? 'lookup failed' };
      const got = a.addresses ?? [];
      return got.includes(p.ip) ? { ...base, ok: true, ms: a.ms } : { ...base, ok: false, ms: null, error: `A ${p.destination} from ${clusterDns}: ${got.join(', ') || 'no address'}, not the ClusterIP ${p.ip}` };
    }
    const a = await agentRequest<{ ok: boolean; ms: number | null; error?: string }>(target, p.source.node, 'POST', '/v1/debug/connect', { srcIp: p.source.ip, ...hint, dst: p.ip, port: p.port, timeoutMs }, timeoutMs + 10_000);
    return { ...base, ok: a.ok === true, ms: a.ok ? a.ms : null, ...(a.ok ? {} : { error: a.error ?? 'connect failed' }) };
  } catch (e) {
    if (e instanceof AgentRequestError) return { ...base, ok: false, ms: null, error: `agent of ${p.source.node}: ${e.message}` };
    throw e;
  }
}

export async function connectivityCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, CONNECTIVITY_FLAGS);
  if (positional.length) throw new UsageError(`connectivity takes no arguments (got ${positional.join(' ')})\n${CONNECTIVITY_USAGE}`);
  const output = parseDebugOutput(flags.output as string | undefined);
  const timeoutMs = flags['timeout-ms'] as number;
  const target = resolveTarget({ flags, env: process.env, labStates: readLabStates });
  const { pods, services } = await readCluster(target);
  const refs = podRefs(pods);
  const svc = flags.services ? serviceRefs(services, await listEndpoints(target)) : { refs: [], skipped: [] };
  const config = flags.dns ? await readClusterConfig(target) : undefined;
  const probes = planProbes(refs, svc.refs, config ? dnsRefs(services, config.clusterDomain) : []);
  const progress = process.stderr.isTTY === true;
  const results = await mapBounded(probes, flags.concurrency as number, (p) => runProbe(target, p, timeoutMs, config?.clusterDNS), progress ? (n) => process.stderr.write(`\r${n}/${probes.length} probes`) : undefined);
  if (progress && probes.length) process.stderr.write('\r\x1b[K');
  const report = buildReport(results, svc.skipped);
  if (output === 'json') console.log(formatJson(report));
  else if (!probes.length) console.log(`no probes, nothing tested: ${refs.length} Running pod${refs.length === 1 ? '' : 's'} with an IPv4 address (need at least 2${flags.services || flags.dns ? ', or 1 and a ClusterIP service' : ''})`);
  else console.log(renderMatrix(report, painter(colourEnabled(process.stdout, process.env)), output === 'wide'));
  return connectivityExitCode(report);
}
