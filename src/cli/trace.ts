// `podwire trace SRC DST:PORT[/PROTO] [--lab PREFIX] [-o wide|json] [--timeout S]`: the live
// version of explain. Explain's path first (which nodes, what it expects), then on every node the
// probe may cross (the lab's nodes, at most MAX_TRACE_NODES, else explain's path) the agent's
// trace starts (POST /v1/debug/trace/start: a table marking only the probe, from a random source
// port, for nftables tracing), the source pod's agent sends the probe from inside the pod
// (/v1/debug/trace/probe), and every agent hands back its trace events (/v1/debug/trace/stop).
// The hops, the backend, the verdict and the agreement with explain are pure (debug/trace.ts).
import { randomBytes, randomInt } from 'node:crypto';
import { readLabStates } from '../lab/lab.js';
import { isIp } from '../net/ip.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { agentRequest } from './debug/agent.js';
import { colourEnabled, formatJson, painter, parseDebugOutput } from './debug/output.js';
import { parseDestination, resolveName } from './debug/resolve.js';
import { readCluster, describeResolved } from './debug/cluster.js';
import { resolveTarget, TARGET_FLAGS, type DebugTarget } from './debug/target.js';
import { NETNS_ANNOTATION } from './lab-exec.js';
import { followPath, verdictOf, type ExplainHopAnswer } from './debug/explain.js';
import { buildTraceReport, explainSnatAddresses, renderTrace, traceExitCode, type NodeTrace, type TraceProbeResult } from './debug/trace.js';

const TRACE_FLAGS: FlagSpecs = {
  output: { type: 'string', alias: 'o', help: 'wide or json (default: a table)' },
  timeout: { type: 'string', help: 'seconds the probe waits for its answer (default 2, at most 10)' },
  ...TARGET_FLAGS,
};

export const TRACE_USAGE = `usage: podwire trace SRC DST:PORT[/PROTO] [--lab PREFIX] [-o wide|json] [--timeout S]
  sends one probe (a TCP connect or a UDP datagram) from inside pod SRC's netns to DST (a pod, node,
  service or IP), traces it with nftables (meta nftrace on that probe only) on every node it crosses,
  and prints each rule it hit with its verdict, the backend a service's DNAT picked, and whether
  podwire explain agrees
  exit 0 delivered (and explain agrees), 1 dropped, rejected or explain disagrees, 2 usage error,
  3 the control plane or an agent cannot be reached
trace flags:
${flagHelp(TRACE_FLAGS)}`;

/** Nodes traced at most: in a larger lab, only explain's path. */
const MAX_TRACE_NODES = 8;
/** Source ports below Linux's ephemeral range (32768-60999) and the NodePort range: no clash with a port in use. */
const SPORT_MIN = 20000;
const SPORT_MAX = 29999;
/** An agent's start waits up to 10 s for its nft monitor (which reads the whole ruleset first); stop up to 3 s. */
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return 2000;
  const s = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || s < 0.1 || s > 10) throw new UsageError(`--timeout ${JSON.stringify(text)}: seconds, 0.1 to 10`);
  return Math.round(s * 1000);
}

function nodesToTrace(target: DebugTarget, path: string[]): string[] {
  const all = target.labAgents ? [...target.labAgents.keys()].sort() : [];
  const nodes = all.length > 0 && all.length <= MAX_TRACE_NODES ? all : path;
  return [...path.filter((n) => nodes.includes(n)), ...nodes.filter((n) => !path.includes(n))];
}

export async function traceCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, TRACE_FLAGS);
  if (positional.length !== 2) throw new UsageError(`trace takes SRC and DST:PORT[/PROTO] (got ${positional.length} argument${positional.length === 1 ? '' : 's'})\n${TRACE_USAGE}`);
  const output = parseDebugOutput(flags.output as string | undefined);
  const timeoutMs = parseTimeout(flags.timeout as string | undefined);
  const spec = parseDestination(positional[1]!);
  if (spec.port === undefined) throw new UsageError(`trace sends a probe to a port: give DST:PORT[/PROTO] (got ${JSON.stringify(positional[1])})`);
  if (spec.protocol === 'SCTP') throw new UsageError('trace probes with TCP or UDP; SCTP is not supported');
  const proto = spec.protocol;
  const port = spec.port;
  const target = resolveTarget({ flags, env: process.env, labStates: readLabStates });
  const cluster = await readCluster(target);
  const src = resolveName(positional[0]!, cluster, ['pod']);
  const dst = resolveName(spec.what, cluster, ['pod', 'node', 'service', 'ip']);
  if (src.kind !== 'pod') throw new UsageError(`trace sends its probe from inside a pod; ${describeResolved(src)} is not one`);
  if (!src.node) throw new UsageError(`${describeResolved(src)} is not scheduled on a node yet (no spec.nodeName)`);
  if (!dst.ip) throw new UsageError(`${describeResolved(dst)} has no InternalIP or ExternalIP address`);
  if (!isIp(src.ip, 4) || !isIp(dst.ip, 4)) throw new UsageError(`trace is IPv4 only for now (${src.ip} → ${dst.ip})`);
  const srcNode = src.node;
  const srcIp = src.ip;
  const dstIp = dst.ip;
  const hint = src.pod.metadata.annotations?.[NETNS_ANNOTATION];

  const explainHops = await followPath({ node: srcNode, dst: dstIp, port, iif: 'pod' }, (req) =>
    agentRequest<ExplainHopAnswer>(target, req.node, 'POST', '/v1/debug/explain-hop', {
      src: req.src ?? srcIp, dst: req.dst, protocol: proto, iif: req.iif,
      ...(req.port !== undefined ? { port: req.port } : {}), ...(req.via ? { via: req.via } : {}), ...(hint && req.iif === 'pod' ? { srcNetnsHint: hint } : {}),
    }),
  );
  const path = [...new Set(explainHops.map((h) => h.node))];
  const nodes = nodesToTrace(target, path.includes(srcNode) ? path : [srcNode, ...path]);

  const id = randomBytes(6).toString('hex');
  const sport = randomInt(SPORT_MIN, SPORT_MAX + 1);
  const ttlMs = Math.min(30_000, timeoutMs + 10_000);
  const started: string[] = [];
  let probe: TraceProbeResult;
  try {
    const starts = await Promise.allSettled(nodes.map(async (n) => {
      await agentRequest(target, n, 'POST', '/v1/debug/trace/start', { id, src: srcIp, sport, proto, alsoFrom: explainSnatAddresses(explainHops), ttlMs }, START_TIMEOUT_MS);
      started.push(n);
    }));
    const failed = starts.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    probe = await agentRequest<TraceProbeResult>(target, srcNode, 'POST', '/v1/debug/trace/probe', {
      srcIp, sport, dst: dstIp, dport: port, proto, timeoutMs, ...(hint ? { netnsHint: hint } : {}),
    }, timeoutMs + 10_000);
  } catch (e) {
    await Promise.allSettled(started.map((n) => agentRequest(target, n, 'POST', '/v1/debug/trace/stop', { id })));
    throw e;
  }
  const traces = await Promise.all(nodes.map((n) => agentRequest<NodeTrace>(target, n, 'POST', '/v1/debug/trace/stop', { id }, STOP_TIMEOUT_MS)));

  const report = buildTraceReport({
    source: describeResolved(src), destination: `${describeResolved(dst)}:${port}/${proto}`, srcNode, traces,
    spec: { src: srcIp, sport, proto }, probe, explainHops, explainVerdict: verdictOf(explainHops),
  });
  console.log(output === 'json' ? formatJson(report) : renderTrace(report, output === 'wide', painter(colourEnabled(process.stdout, process.env))));
  return traceExitCode(report);
}
