// `podwire ping SRC DST [-c N] [--lab PREFIX] [-o json]`: ICMP echo from inside pod SRC's netns,
// sent by the agent of SRC's node (POST /v1/debug/ping), to DST (a pod, node, service IP or IP).
// The summary and exit code are pure (debug/ping.ts).
import { readLabStates } from '../lab/lab.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { agentRequest } from './debug/agent.js';
import { formatJson } from './debug/output.js';
import { resolveName } from './debug/resolve.js';
import { readCluster, describeResolved } from './debug/cluster.js';
import { resolveTarget, TARGET_FLAGS } from './debug/target.js';
import { NETNS_ANNOTATION } from './lab-exec.js';
import { pingExitCode, renderPing, type PingAnswer, type PingReport } from './debug/ping.js';


const PING_FLAGS: FlagSpecs = {
  count: { type: 'int', alias: 'c', default: 3, min: 1, max: 100, help: 'echo requests to send' },
  'interval-ms': { type: 'int', default: 200, min: 10, max: 10_000, help: 'between two requests' },
  'timeout-ms': { type: 'int', default: 1000, min: 10, max: 10_000, help: 'how long to wait for the last reply' },
  output: { type: 'string', alias: 'o', help: 'json (default: ping(8)-style lines and summary)' },
  ...TARGET_FLAGS,
};

export const PING_USAGE = `usage: podwire ping SRC-POD DST [-c N] [--lab PREFIX] [-o json]
  ICMP echo (IPv4) from inside pod SRC's netns to DST: a pod (NAME, NS/NAME, IP), node, service IP or IP
  exit 0 every reply came, 1 any loss, 2 usage error, 3 the control plane or SRC's agent cannot be reached
ping flags:
${flagHelp(PING_FLAGS)}`;

export async function pingCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, PING_FLAGS);
  if (positional.length !== 2) throw new UsageError(`ping takes SRC and DST (got ${positional.length} argument${positional.length === 1 ? '' : 's'})\n${PING_USAGE}`);
  const output = flags.output as string | undefined;
  if (output !== undefined && output !== 'json') throw new UsageError(`-o ${output}: ping prints json or its default summary`);
  const count = flags.count as number;
  const intervalMs = flags['interval-ms'] as number;
  const timeoutMs = flags['timeout-ms'] as number;
  const totalMs = (count - 1) * intervalMs + timeoutMs;
  if (totalMs > 30_000) throw new UsageError(`-c ${count} every ${intervalMs} ms + a ${timeoutMs} ms timeout is ${totalMs} ms; a ping may take at most 30000 ms`);
  const target = resolveTarget({ flags, env: process.env, labStates: readLabStates });
  const cluster = await readCluster(target);
  const src = resolveName(positional[0]!, cluster, ['pod']);
  const dst = resolveName(positional[1]!, cluster, ['pod', 'node', 'service', 'ip']);
  if (src.kind !== 'pod') throw new UsageError(`SRC ${positional[0]} must be a pod`);
  if (!src.node) throw new UsageError(`pod ${src.namespace}/${src.name} is not scheduled on a node yet (no spec.nodeName)`);
  const dstIp = dst.ip;
  if (!dstIp) throw new UsageError(`${describeResolved(dst)} has no InternalIP or ExternalIP address to ping`);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(dstIp) || !/^\d+\.\d+\.\d+\.\d+$/.test(src.ip)) throw new UsageError(`ping is IPv4 only for now (${src.ip} → ${dstIp})`);
  const hint = src.pod.metadata.annotations?.[NETNS_ANNOTATION];
  const body = { srcIp: src.ip, ...(hint ? { netnsHint: hint } : {}), dst: dstIp, count, intervalMs, timeoutMs };
  const answer = await agentRequest<PingAnswer>(target, src.node, 'POST', '/v1/debug/ping', body, totalMs + 10_000);
  const report: PingReport = { source: describeResolved(src), destination: describeResolved(dst), node: src.node, ...answer };
  console.log(output === 'json' ? formatJson(report) : renderPing(report));
  return pingExitCode(answer);
}
