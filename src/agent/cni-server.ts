// The CNI fast path's agent side: POST /v1/cni on the local socket runs one plugin command
// (src/cni/dispatch.ts, the same code the Node plugin runs for itself, on the same IPAM files and
// locks) for the native client (native/podwire-cni.c), which prints the answer and exits with its
// status. Requests for one container ID run one after another, in arrival order (a DEL that comes
// while its ADD runs waits for it); different containers' requests overlap; a bounded number wait
// at all, beyond which the answer is CNI error 11 (try again later) at once. With a CniDel, a DEL
// is answered once the pod is cut off and finished in the background (cni-del.ts); the container's
// next request waits for that too, and an ADD that finds no free IP while DELs are still releasing
// theirs is retried once they have.
//
// Wire format (a contract with the C client):
//   request  POST /v1/cni, application/json {"env": {"CNI_COMMAND": "ADD", ...}, "stdin": "<config>"}
//   answer   200, text/plain: the plugin's stdout; header x-cni-exit: 0 or 1 (its exit status)
//            404 (no CNI server: --cni-server off): nothing ran, the client runs the Node plugin
//            other 4xx/5xx: the request itself was refused (the client answers CNI error 4 / 11)
import type { FastifyInstance } from 'fastify';
import { CNI_ERR, CniError } from '../cni/errors.js';
import { errorVersion, executeCni, type CniHooks, type CniOutcome } from '../cni/dispatch.js';
import type { CniDel } from './cni-del.js';

/** A request's limits: a CNI config is small (the plugin itself refuses stdin over 16 MiB). */
export const CNI_STDIN_LIMIT = 16 << 20;
const ENV_LIMIT = 128;
const ENV_VALUE_LIMIT = 64 << 10;
const ENV_KEY = /^CNI_[A-Z0-9_]{1,64}$/;

export interface CniServerOptions {
  /** Requests admitted at once, running or waiting (default 64); more get CNI error 11. */
  maxPending?: number;
  /** The command runner (tests); default the plugin's own dispatch. */
  execute?: (vars: Readonly<Record<string, string>>, stdin: string, hooks?: CniHooks) => Promise<CniOutcome>;
  /** Fast DELs (answered once the pod is cut off); without it a DEL does all its work before answering. */
  del?: CniDel;
  /** After each request (metrics, logs). */
  onDone?: (r: { command: string; code: number; seconds: number }) => void;
}

export interface CniRequestBody {
  env: Record<string, string>;
  stdin: string;
}

/** Checks a request body; the message says what is wrong. Only CNI_* variables are kept. */
export function parseCniRequest(body: unknown): CniRequestBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('the body must be a JSON object {"env": {...}, "stdin": "..."}');
  const { env, stdin } = body as Record<string, unknown>;
  if (typeof stdin !== 'string') throw new Error('"stdin" must be a string (the network config)');
  if (Buffer.byteLength(stdin) > CNI_STDIN_LIMIT) throw new Error(`"stdin" is larger than ${CNI_STDIN_LIMIT} bytes`);
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new Error('"env" must be an object of strings');
  const entries = Object.entries(env as Record<string, unknown>);
  if (entries.length > ENV_LIMIT) throw new Error(`"env" has ${entries.length} variables, more than ${ENV_LIMIT}`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw new Error(`"env".${k} must be a string`);
    if (v.length > ENV_VALUE_LIMIT) throw new Error(`"env".${k} is longer than ${ENV_VALUE_LIMIT} characters`);
    if (ENV_KEY.test(k)) out[k] = v;
  }
  return { env: out, stdin };
}

export class CniServer {
  private readonly tails = new Map<string, Promise<unknown>>();
  private pending = 0;
  private readonly counts = { requests: 0, failed: 0, refused: 0 };
  private readonly maxPending: number;
  private readonly execute: NonNullable<CniServerOptions['execute']>;

  constructor(private readonly opts: CniServerOptions = {}) {
    this.maxPending = opts.maxPending ?? 64;
    this.execute = opts.execute ?? executeCni;
  }

  /** Requests admitted and not answered yet. */
  get inFlight(): number {
    return this.pending;
  }

  /** For /v1/status: requests answered (failed: a CNI error; refused: over the limit) and in flight. */
  stats(): { requests: number; failed: number; refused: number; inFlight: number; del?: ReturnType<CniDel['stats']> } {
    return { ...this.counts, inFlight: this.pending, ...(this.opts.del ? { del: this.opts.del.stats() } : {}) };
  }

  /** Runs one request in its container's order; never throws. */
  async handle(req: CniRequestBody): Promise<CniOutcome> {
    const command = req.env.CNI_COMMAND ?? '';
    if (this.pending >= this.maxPending) {
      this.counts.refused++;
      const e = new CniError(CNI_ERR.TRY_AGAIN_LATER, `the podwire agent has ${this.pending} CNI requests in progress (its limit)`, 'try again later');
      return { code: 1, stdout: JSON.stringify(e.toJSON(errorVersion(req.stdin))) + '\n' };
    }
    this.pending++;
    const t0 = performance.now();
    // VERSION, STATUS and GC name no container: they need no order.
    const key = req.env.CNI_CONTAINERID ?? '';
    const before = key ? this.tails.get(key) : undefined;
    let settled: Promise<void> | undefined;
    const del = this.opts.del;
    const hooks: CniHooks | undefined = del && {
      del: (env, conf) => {
        settled = del.detach(req.env, req.stdin, env, conf);
        settled.catch(() => undefined); // handled: CniDel reports its failures, and the tail below waits for it
      },
    };
    const mine = (before ?? Promise.resolve()).then(() => this.run(command, req, hooks));
    const tail = mine.then(() => settled).catch(() => undefined);
    if (key) {
      this.tails.set(key, tail);
      // Forgotten once done, DEL's background part included (unless a later request queued behind it).
      void tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    }
    let out: CniOutcome | undefined;
    try {
      out = await mine.catch((err: unknown) => {
        const e = new CniError(CNI_ERR.KERNEL, `the podwire agent failed running ${command}: ${(err as Error).message}`);
        return { code: 1 as const, stdout: JSON.stringify(e.toJSON(errorVersion(req.stdin))) + '\n' };
      });
      return out;
    } finally {
      this.pending--;
      this.counts.requests++;
      if (out?.code !== 0) this.counts.failed++;
      this.opts.onDone?.({ command, code: out?.code ?? 1, seconds: (performance.now() - t0) / 1000 });
    }
  }

  /** One command; an ADD that found no free IP is run again once pending DELs have released theirs. */
  private async run(command: string, req: CniRequestBody, hooks: CniHooks | undefined): Promise<CniOutcome> {
    const out = await this.execute(req.env, req.stdin, hooks);
    if (command !== 'ADD' || out.code === 0 || !this.opts.del?.pending || errorCode(out.stdout) !== CNI_ERR.IPAM_EXHAUSTED) return out;
    await this.opts.del.drain();
    return this.execute(req.env, req.stdin, hooks);
  }

  /** POST /v1/cni on the local API. */
  register(app: FastifyInstance): void {
    app.post('/v1/cni', { bodyLimit: CNI_STDIN_LIMIT + (1 << 20) }, async (req, reply) => {
      let body: CniRequestBody;
      try {
        body = parseCniRequest(req.body);
      } catch (e) {
        return reply.code(400).type('text/plain').send(`podwire agent: bad CNI request: ${(e as Error).message}\n`);
      }
      const out = await this.handle(body);
      return reply.code(200).header('x-cni-exit', String(out.code)).type('text/plain').send(out.stdout);
    });
  }
}

function errorCode(stdout: string): number | undefined {
  try {
    return (JSON.parse(stdout) as { code?: number }).code;
  } catch {
    return undefined;
  }
}
