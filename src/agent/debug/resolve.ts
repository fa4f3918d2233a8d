// POST /v1/debug/resolve {srcIp, netnsHint?, server, name, timeoutMs}: an A lookup of `name` from
// inside a pod's netns, sent to `server` port 53 (the cluster DNS address), for `podwire
// connectivity --dns`. A short child in the pod's netns (execInNetns) runs node:dns's Resolver
// (one try, no search path: the name is asked as given) and prints {ms, addresses} as JSON, or the
// resolver's error code (ENOTFOUND is NXDOMAIN, ETIMEOUT no answer). Answers {ok, ms, addresses?, error?}.
import type { FastifyInstance } from 'fastify';
import { isIp } from '../../net/ip.js';
import { execInNetns } from '../../netns/exec.js';
import { registerPodRoute, type PodRouteDeps } from './request.js';

export interface ResolveRequest {
  srcIp: string;
  netnsHint?: string;
  server: string;
  name: string;
  timeoutMs: number;
}

export interface ResolveResult {
  ok: boolean;
  ms: number | null;
  addresses?: string[];
  error?: string;
}

const FIELDS = ['srcIp', 'netnsHint', 'server', 'name', 'timeoutMs'];
// A DNS name as the API's objects make them: labels of letters, digits, '-' and '_', dots between.
const DNS_NAME = /^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$/;

/** The validated request, or what is wrong with the body. */
export function validateResolveRequest(body: unknown): ResolveRequest | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body must be a JSON object {srcIp, netnsHint?, server, name, timeoutMs}';
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !FIELDS.includes(k));
  if (unknown.length) return `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`;
  if (typeof b.srcIp !== 'string' || !isIp(b.srcIp, 4)) return `srcIp must be an IPv4 address (got ${JSON.stringify(b.srcIp)})`;
  if (typeof b.server !== 'string' || !isIp(b.server, 4)) return `server must be an IPv4 address (got ${JSON.stringify(b.server)})`;
  if (typeof b.name !== 'string' || !DNS_NAME.test(b.name)) return `name must be a DNS name (got ${JSON.stringify(b.name)})`;
  if (b.netnsHint !== undefined && (typeof b.netnsHint !== 'string' || b.netnsHint === '' || b.netnsHint.length > 4096)) return 'netnsHint must be a non-empty path';
  if (!Number.isInteger(b.timeoutMs) || (b.timeoutMs as number) < 10 || (b.timeoutMs as number) > 10_000) return `timeoutMs must be an integer 10-10000 (got ${JSON.stringify(b.timeoutMs)})`;
  return { srcIp: b.srcIp, server: b.server, name: b.name, timeoutMs: b.timeoutMs as number, ...(typeof b.netnsHint === 'string' ? { netnsHint: b.netnsHint } : {}) };
}

// argv[1..3]: server, name, timeout.
const SCRIPT = `const r=new (require('node:dns').promises.Resolver)({timeout:+process.argv[3],tries:1});r.setServers([process.argv[1]]);
const t0=performance.now();r.resolve4(process.argv[2]).then((a)=>{console.log(JSON.stringify({ms:+(performance.now()-t0).toFixed(3),addresses:a}));process.exit(0)},
(e)=>{console.log(e.code||e.message);process.exit(1)});`;

const WHY: Record<string, string> = { ENOTFOUND: 'NXDOMAIN', ENODATA: 'no A record (NODATA)', ETIMEOUT: 'no answer', ECONNREFUSED: 'refused', ESERVFAIL: 'SERVFAIL', EREFUSED: 'REFUSED' };

export async function resolveFrom(netnsPath: string, req: ResolveRequest): Promise<ResolveResult> {
  // The margin covers starting node on a busy machine; the lookup's own limit is the Resolver's.
  const r = await execInNetns(netnsPath, process.execPath, ['-e', SCRIPT, req.server, req.name, String(req.timeoutMs)], { timeoutMs: req.timeoutMs + 5000 });
  const out = r.stdout.trim();
  if (out.startsWith('{')) {
    // Printed only once the answer is in (a kill right after it does not undo the answer).
    try {
      const a = JSON.parse(out) as { ms: number; addresses: string[] };
      if (typeof a.ms === 'number' && Array.isArray(a.addresses)) return { ok: true, ms: a.ms, addresses: a.addresses.map(String) };
    } catch {
      // fall through: reported below
    }
    return { ok: false, ms: null, error: `the resolver child printed ${JSON.stringify(out.slice(0, 200))}` };
  }
  const why = out || r.stderr.trim().split('\n')[0] || (r.signal ? `killed (${r.signal})` : `exit ${r.code}`);
  return { ok: false, ms: null, error: `A ${req.name} from ${req.server}: ${WHY[why] ? `${WHY[why]} (${why})` : why}` };
}

export function registerResolveRoutes(app: FastifyInstance, deps: PodRouteDeps): void {
  registerPodRoute(app, '/v1/debug/resolve', deps, validateResolveRequest, resolveFrom, (req, netns) => `resolve ${req.name} from ${req.srcIp} (netns ${netns}) at ${req.server}`);
}
