// POST /v1/debug/connect {srcIp, netnsHint?, dst, port, timeoutMs}: a TCP connect from inside a
// pod's netns (IPv4), for `podwire connectivity --services`. A short child process is forked in
// the pod's netns (execInNetns) running node:net's connect; it exits 0 connected (printing the
// handshake's ms, timed in the child so the fork is not counted), 1 not, and is killed after
// timeoutMs + a margin. Answers {ok, ms, error?}; nothing is sent beyond the handshake.
import type { FastifyInstance } from 'fastify';
import { isIp } from '../../net/ip.js';
import { registerPodRoute, type PodRouteDeps } from './request.js';
import { runNetnsChild } from './netns-child.js';

export interface ConnectRequest {
  srcIp: string;
  netnsHint?: string;
  dst: string;
  port: number;
  timeoutMs: number;
}

export interface ConnectResult {
  ok: boolean;
  ms: number | null;
  error?: string;
}


/** The validated request, or what is wrong with the body. */
export function validateConnectRequest(body: unknown): ConnectRequest | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body must be a JSON object {srcIp, netnsHint?, dst, port, timeoutMs}';
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !['srcIp', 'netnsHint', 'dst', 'port', 'timeoutMs'].includes(k));
  if (unknown.length) return `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`;
  if (typeof b.srcIp !== 'string' || !isIp(b.srcIp, 4)) return `srcIp must be an IPv4 address (got ${JSON.stringify(b.srcIp)})`;
  if (typeof b.dst !== 'string' || !isIp(b.dst, 4)) return `dst must be an IPv4 address (got ${JSON.stringify(b.dst)})`;
  if (b.netnsHint !== undefined && (typeof b.netnsHint !== 'string' || b.netnsHint === '' || b.netnsHint.length > 4096)) return 'netnsHint must be a non-empty path';
  if (!Number.isInteger(b.port) || (b.port as number) < 1 || (b.port as number) > 65535) return `port must be an integer 1-65535 (got ${JSON.stringify(b.port)})`;
  if (!Number.isInteger(b.timeoutMs) || (b.timeoutMs as number) < 10 || (b.timeoutMs as number) > 10_000) return `timeoutMs must be an integer 10-10000 (got ${JSON.stringify(b.timeoutMs)})`;
  return { srcIp: b.srcIp, dst: b.dst, port: b.port as number, timeoutMs: b.timeoutMs as number, ...(typeof b.netnsHint === 'string' ? { netnsHint: b.netnsHint } : {}) };
}

// argv[1..3]: dst, port, timeout. Prints the handshake's duration in ms, or the error code.
const SCRIPT = `const t0=performance.now();const s=require('node:net').connect({host:process.argv[1],port:+process.argv[2]});
const t=setTimeout(()=>{console.log('timed out after '+process.argv[3]+' ms');process.exit(1)},+process.argv[3]);
s.on('connect',()=>{clearTimeout(t);console.log((performance.now()-t0).toFixed(3));s.destroy();process.exit(0)});
s.on('error',(e)=>{console.log(e.code||e.message);process.exit(1)});`;

export async function connectFrom(netnsPath: string, req: ConnectRequest): Promise<ConnectResult> {
  const r = await runNetnsChild(netnsPath, SCRIPT, [req.dst, String(req.port), String(req.timeoutMs)], req.timeoutMs);
  return r.ok ? { ok: true, ms: r.ms } : { ok: false, ms: null, error: `TCP connect to ${req.dst}:${req.port}: ${r.why}` };
}

export function registerConnectRoutes(app: FastifyInstance, deps: PodRouteDeps): void {
  registerPodRoute(app, '/v1/debug/connect', deps, validateConnectRequest, connectFrom, (req, netns) => `connect from ${req.srcIp} (netns ${netns}) to ${req.dst}:${req.port}`);
}
