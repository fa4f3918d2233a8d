// `podwire trace`'s agent routes. On every node the probe may cross:
//   POST /v1/debug/trace/start {id, src, sport, proto, alsoFrom?, ttlMs?}: this node's trace table marks the
//     probe (trace-table.ts) and an nft monitor reads its trace events (trace-session.ts);
//   POST /v1/debug/trace/stop {id}: {node, events, truncated, ended?} — the events parsed
//     (trace-parse.ts), the table gone.
// On the source pod's node:
//   POST /v1/debug/trace/probe {srcIp, netnsHint?, sport, dst, dport, proto, timeoutMs}: the probe
//     from inside the pod's netns, from the fixed source port: a TCP connect (closed at once), or
//     one UDP datagram and a wait for any answer. {ok, ms, error?}.
// The trace table is the only change these routes make to the node, and it goes away by itself.
import type { FastifyInstance } from 'fastify';
import { isIp } from '../../net/ip.js';
import type { CommandRunner } from '../../exec/runner.js';
import { failure, registerPodRoute, sendStatus, type PodRouteDeps } from './request.js';
import { runNetnsChild } from './netns-child.js';
import { TraceSession } from './trace-session.js';
import { TRACE_ID, traceTablesIn, type TraceMatch, type TraceProto } from './trace-table.js';

export const TRACE_TTL_MS = 10_000;
const MAX_TTL_MS = 30_000;
/** At most this many traces at once on a node (each is a table and an nft child). */
const MAX_SESSIONS = 8;
const MAX_ALSO_FROM = 8;

export interface TraceStartRequest extends TraceMatch {
  ttlMs: number;
}

export interface TraceProbeRequest {
  srcIp: string;
  netnsHint?: string;
  sport: number;
  dst: string;
  dport: number;
  proto: TraceProto;
  timeoutMs: number;
}

export interface TraceProbeResult {
  ok: boolean;
  ms: number | null;
  error?: string;
}

const isObject = (b: unknown): b is Record<string, unknown> => typeof b === 'object' && b !== null && !Array.isArray(b);
const isPort = (p: unknown): p is number => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;
const unknownFields = (b: Record<string, unknown>, known: string[]): string | undefined => {
  const extra = Object.keys(b).filter((k) => !known.includes(k));
  return extra.length ? `unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')}` : undefined;
};

export function validateTraceStart(body: unknown): TraceStartRequest | string {
  if (!isObject(body)) return 'the body must be a JSON object {id, src, sport, proto, alsoFrom?, ttlMs?}';
  const extra = unknownFields(body, ['id', 'src', 'sport', 'proto', 'alsoFrom', 'ttlMs']);
  if (extra) return extra;
  if (typeof body.id !== 'string' || !TRACE_ID.test(body.id)) return `id must be 4-16 lower-case letters or digits (got ${JSON.stringify(body.id)})`;
  if (!isIp(body.src, 4)) return `src must be an IPv4 address (got ${JSON.stringify(body.src)}); trace is IPv4 only`;
  if (!isPort(body.sport)) return `sport must be an integer 1-65535 (got ${JSON.stringify(body.sport)})`;
  if (body.proto !== 'TCP' && body.proto !== 'UDP') return `proto must be TCP or UDP (got ${JSON.stringify(body.proto)})`;
  if (body.ttlMs !== undefined && (!Number.isInteger(body.ttlMs) || (body.ttlMs as number) < 1000 || (body.ttlMs as number) > MAX_TTL_MS)) return `ttlMs must be an integer 1000-${MAX_TTL_MS} (got ${JSON.stringify(body.ttlMs)})`;
  const also = body.alsoFrom;
  if (also !== undefined && (!Array.isArray(also) || also.length > MAX_ALSO_FROM || !also.every((a) => isIp(a, 4)))) return `alsoFrom must be a list of at most ${MAX_ALSO_FROM} IPv4 addresses (got ${JSON.stringify(also)})`;
  return { id: body.id, src: body.src, sport: body.sport, proto: body.proto, ...(also ? { alsoFrom: also as string[] } : {}), ttlMs: (body.ttlMs as number | undefined) ?? TRACE_TTL_MS };
}

export function validateTraceProbe(body: unknown): TraceProbeRequest | string {
  if (!isObject(body)) return 'the body must be a JSON object {srcIp, netnsHint?, sport, dst, dport, proto, timeoutMs}';
  const extra = unknownFields(body, ['srcIp', 'netnsHint', 'sport', 'dst', 'dport', 'proto', 'timeoutMs']);
  if (extra) return extra;
  if (!isIp(body.srcIp, 4)) return `srcIp must be an IPv4 address (got ${JSON.stringify(body.srcIp)})`;
  if (!isIp(body.dst, 4)) return `dst must be an IPv4 address (got ${JSON.stringify(body.dst)})`;
  if (body.netnsHint !== undefined && (typeof body.netnsHint !== 'string' || body.netnsHint === '' || body.netnsHint.length > 4096)) return 'netnsHint must be a non-empty path';
  if (!isPort(body.sport)) return `sport must be an integer 1-65535 (got ${JSON.stringify(body.sport)})`;
  if (!isPort(body.dport)) return `dport must be an integer 1-65535 (got ${JSON.stringify(body.dport)})`;
  if (body.proto !== 'TCP' && body.proto !== 'UDP') return `proto must be TCP or UDP (got ${JSON.stringify(body.proto)})`;
  if (!Number.isInteger(body.timeoutMs) || (body.timeoutMs as number) < 10 || (body.timeoutMs as number) > 10_000) return `timeoutMs must be an integer 10-10000 (got ${JSON.stringify(body.timeoutMs)})`;
  return { srcIp: body.srcIp, dst: body.dst, sport: body.sport, dport: body.dport, proto: body.proto, timeoutMs: body.timeoutMs as number, ...(typeof body.netnsHint === 'string' ? { netnsHint: body.netnsHint } : {}) };
}

// argv[1..6]: proto, srcIp, sport, dst, dport, timeout. Prints the ms to the answer (TCP: the
// handshake; UDP: any datagram back), else the error code; exit 0 answered, 1 not.
const PROBE = `const [proto,src,sport,dst,dport,tmo]=process.argv.slice(1);const t0=performance.now();
const done=(ok,text)=>{console.log(text);process.exit(ok?0:1)};
setTimeout(()=>done(false,'no answer within '+tmo+' ms'),+tmo);
if(proto==='TCP'){const s=require('node:net').connect({host:dst,port:+dport,localAddress:src,localPort:+sport});
s.on('connect',()=>{const ms=(performance.now()-t0).toFixed(3);s.destroy();done(true,ms)});s.on('error',(e)=>done(false,e.code||e.message));}
else{const s=require('node:dgram').createSocket('udp4');s.on('error',(e)=>done(false,e.code||e.message));
s.bind({address:src,port:+sport},()=>s.connect(+dport,dst,(e)=>{if(e)return done(false,e.code||e.message);
s.on('message',()=>done(true,(performance.now()-t0).toFixed(3)));s.send('podwire trace probe\\n');}));}`;

export async function probeFrom(netnsPath: string, req: TraceProbeRequest): Promise<TraceProbeResult> {
  const r = await runNetnsChild(netnsPath, PROBE, [req.proto, req.srcIp, String(req.sport), req.dst, String(req.dport), String(req.timeoutMs)], req.timeoutMs);
  return r.ok ? { ok: true, ms: r.ms } : { ok: false, ms: null, error: `${req.proto} probe ${req.srcIp}:${req.sport} → ${req.dst}:${req.dport}: ${r.why}` };
}

let staleSwept = false;

/**
 * Removes the trace tables an earlier run of this agent left (killed mid-trace: no ttl timer ran).
 * Best effort, at start: a failure is returned for the log, never thrown.
 */
export function removeStaleTraceTables(runner: CommandRunner): string[] {
  const problems: string[] = [];
  try {
    const r = runner.run('nft', ['list', 'tables', 'inet']);
    if (r.code !== 0) return [`nft list tables inet: ${r.stderr.trim()}`];
    for (const name of traceTablesIn(r.stdout)) {
      const d = runner.run('nft', ['delete', 'table', 'inet', name]);
      if (d.code !== 0 && !/No such file or directory/.test(d.stderr)) problems.push(`deleting table inet ${name}: ${d.stderr.trim()}`);
    }
  } catch (e) {
    problems.push((e as Error).message);
  }
  return problems;
}

export function registerTraceRoutes(app: FastifyInstance, deps: PodRouteDeps & { runner: CommandRunner }): void {
  const sessions = new Map<string, TraceSession>();
  const first = !staleSwept;
  staleSwept = true;
  // Once per process (the routes are registered on the local socket and on the HTTPS endpoint): a
  // second sweep could remove a trace that the first server's routes have just started.
  if (first) for (const p of removeStaleTraceTables(deps.runner)) app.log.warn(`podwire trace: stale trace tables of an earlier run: ${p}`);
  app.addHook('onClose', async () => {
    for (const s of sessions.values()) s.close();
  });

  app.post('/v1/debug/trace/start', async (request, reply) => {
    const req = validateTraceStart(request.body);
    if (typeof req === 'string') return sendStatus(reply, failure(400, req));
    if (sessions.has(req.id)) return sendStatus(reply, failure(409, `trace ${req.id} is already running on node ${deps.nodeName}; stop it first (POST /v1/debug/trace/stop)`));
    if (sessions.size >= MAX_SESSIONS) return sendStatus(reply, failure(429, `node ${deps.nodeName} already runs ${sessions.size} traces; wait for them to end (at most ${MAX_TTL_MS / 1000} s)`));
    try {
      const s = await TraceSession.start(req, deps.runner, req.ttlMs, () => {
        if (sessions.get(req.id) === s) sessions.delete(req.id);
      });
      sessions.set(req.id, s);
      return { node: deps.nodeName, id: req.id, ttlMs: req.ttlMs };
    } catch (e) {
      return sendStatus(reply, failure(500, `trace ${req.id} on node ${deps.nodeName}: ${(e as Error).message}`));
    }
  });

  app.post('/v1/debug/trace/stop', async (request, reply) => {
    const body = request.body;
    const id = isObject(body) ? body.id : undefined;
    if (typeof id !== 'string' || !TRACE_ID.test(id)) return sendStatus(reply, failure(400, `the body must be {id} with the id given to /v1/debug/trace/start (got ${JSON.stringify(body)})`));
    const s = sessions.get(id);
    if (!s) return sendStatus(reply, failure(404, `no trace ${id} on node ${deps.nodeName} (never started, already stopped, or ended after its ttl)`));
    sessions.delete(id);
    try {
      return await s.stop(deps.nodeName);
    } catch (e) {
      s.close();
      return sendStatus(reply, failure(500, `stopping trace ${id} on node ${deps.nodeName}: ${(e as Error).message}`));
    }
  });

  registerPodRoute(app, '/v1/debug/trace/probe', deps, validateTraceProbe, probeFrom, (req, netns) => `probe from ${req.srcIp} (netns ${netns}) to ${req.dst}:${req.dport}`);
}
