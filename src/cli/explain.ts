// `podwire explain SRC DST[:PORT[/PROTO]] [--lab PREFIX] [-o table|json]`: the path one packet takes,
// hop by hop, computed from live state by each node's agent (POST /v1/debug/explain-hop): SRC's
// node first, then every node the packet continues on. Following and the verdict are pure
// (debug/explain.ts).
import { readLabStates } from '../lab/lab.js';
import { isIp } from '../net/ip.js';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { agentRequest } from './debug/agent.js';
import { colourEnabled, formatJson, painter } from './debug/output.js';
import { parseDestination, resolveName } from './debug/resolve.js';
import { readCluster, describeResolved } from './debug/cluster.js';
import { resolveTarget, TARGET_FLAGS } from './debug/target.js';
import { NETNS_ANNOTATION } from './lab-exec.js';
import { explainExitCode, followPath, renderExplain, verdictOf, type ExplainHopAnswer, type ExplainReport } from './debug/explain.js';

const EXPLAIN_FLAGS: FlagSpecs = {
  output: { type: 'string', alias: 'o', help: 'table (default) or json' },
  ...TARGET_FLAGS,
};

export const EXPLAIN_USAGE = `usage: podwire explain SRC DST[:PORT[/PROTO]] [--lab PREFIX] [-o table|json]
  the path of one packet from SRC (a pod or node) to DST (a pod, node, service or IP; NODE:NODEPORT for a
  NodePort), hop by hop from live state: pod eth0 → veth → bridge → service/NodePort DNAT → route lookup →
  masquerade → vxlan/next hop → node → bridge → pod
  exit 0 delivered, 1 dropped or rejected, 2 usage error, 3 the control plane or an agent cannot be reached
explain flags:
${flagHelp(EXPLAIN_FLAGS)}`;


export async function explainCommand(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, EXPLAIN_FLAGS);
  if (positional.length !== 2) throw new UsageError(`explain takes SRC and DST[:PORT[/PROTO]] (got ${positional.length} argument${positional.length === 1 ? '' : 's'})\n${EXPLAIN_USAGE}`);
  const output = (flags.output as string | undefined) ?? 'table';
  if (output !== 'table' && output !== 'json') throw new UsageError(`-o ${output}: explain prints table or json`);
  const spec = parseDestination(positional[1]!);
  const target = resolveTarget({ flags, env: process.env, labStates: readLabStates });
  const cluster = await readCluster(target);
  const src = resolveName(positional[0]!, cluster, ['pod', 'node']);
  const dst = resolveName(spec.what, cluster, ['pod', 'node', 'service', 'ip']);
  const srcNode = src.kind === 'pod' ? src.node : src.kind === 'node' ? src.name : undefined;
  if (!srcNode) throw new UsageError(`${describeResolved(src)} is not scheduled on a node yet (no spec.nodeName)`);
  const srcIp = src.kind === 'pod' || src.kind === 'node' ? src.ip : undefined;
  if (!srcIp) throw new UsageError(`${describeResolved(src)} has no InternalIP or ExternalIP address`);
  if (!dst.ip) throw new UsageError(`${describeResolved(dst)} has no InternalIP or ExternalIP address`);
  if (!isIp(srcIp, 4) || !isIp(dst.ip, 4)) throw new UsageError(`explain is IPv4 only for now (${srcIp} → ${dst.ip})`);
  const hint = src.kind === 'pod' ? src.pod.metadata.annotations?.[NETNS_ANNOTATION] : undefined;
  const hops = await followPath({ node: srcNode, dst: dst.ip, ...(spec.port !== undefined ? { port: spec.port } : {}), iif: src.kind === 'pod' ? 'pod' : 'local' }, (req) =>
    agentRequest<ExplainHopAnswer>(target, req.node, 'POST', '/v1/debug/explain-hop', {
      src: req.src ?? srcIp, dst: req.dst, protocol: spec.protocol, iif: req.iif,
      ...(req.port !== undefined ? { port: req.port } : {}), ...(req.via ? { via: req.via } : {}), ...(hint && req.iif === 'pod' ? { srcNetnsHint: hint } : {}),
    }),
  );
  const portText = spec.port !== undefined ? `:${spec.port}/${spec.protocol}` : '';
  const report: ExplainReport = { source: describeResolved(src), destination: `${describeResolved(dst)}${portText}`, verdict: verdictOf(hops), hops };
  console.log(output === 'json' ? formatJson(report) : renderExplain(report, painter(colourEnabled(process.stdout, process.env))));
  return explainExitCode(report);
}
