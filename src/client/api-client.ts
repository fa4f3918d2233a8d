// A small client for the control plane API (and so for the subset of kube-apiserver it mirrors):
// JSON requests with a bearer token over http or https (custom CA), errors as ApiClientError
// carrying the server's Status, and watch streams parsed from newline-delimited JSON.
import http from 'node:http';
import https from 'node:https';
import type { KubeObject, ObjectList, Status, WatchEventBody } from '../api/objects.js';

export interface ClientOptions {
  /** http://HOST:PORT or https://HOST:PORT */
  server: string;
  token?: string;
  /** PEM CA bundle for an https server with its own certificate. */
  ca?: string | Buffer;
  /** Per-request timeout for non-watch requests (ms, default 30 s). */
  timeoutMs?: number;
  /** Talk HTTP over this unix socket instead (the agent's local API); `server` is then only a label. */
  socketPath?: string;
  /** https: replaces the host name check (e.g. pin the certificate by its fingerprint); an Error refuses it. */
  checkServerIdentity?: (host: string, cert: import('node:tls').PeerCertificate) => Error | undefined;
}

export class ApiClientError extends Error {
  constructor(
    message: string,
    readonly code: number, // HTTP status; 0 when the server was not reached
    readonly status?: Status,
  ) {
    super(message);
    this.name = 'ApiClientError';
  }
  get reason(): string | undefined {
    return this.status?.reason;
  }
}

export interface ResourceRef {
  plural: string; // nodes | pods | services | endpoints
  namespace?: string; // absent: cluster-scoped, or all namespaces for a list
  name?: string;
}

export function resourcePath(ref: ResourceRef): string {
  const base = ref.namespace ? `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/${ref.plural}` : `/api/v1/${ref.plural}`;
  return ref.name ? `${base}/${encodeURIComponent(ref.name)}` : base;
}

export interface WatchStream {
  close(): void;
  /** Resolves when the stream ends (server closed it, close() was called); rejects on a network error. */
  done: Promise<void>;
}

export interface CallOptions {
  /** Aborting it destroys the request (its connect, its socket) and rejects with code 0. */
  signal?: AbortSignal;
}

export class ApiClient {
  private readonly url: URL;
  private readonly agent: http.Agent;
  /** Requests whose socket may still be open (connecting, waiting, streaming). */
  private readonly live = new Set<http.ClientRequest>();
  private closed = false;

  constructor(readonly opts: ClientOptions) {
    try {
      this.url = new URL(opts.server);
    } catch {
      throw new Error(`server ${JSON.stringify(opts.server)} is not a URL; expected e.g. http://127.0.0.1:6443`);
    }
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new Error(`server ${opts.server}: only http:// and https:// are supported`);
    // Plain HTTP over a unix socket opens a connection per request: that costs microseconds, and a
    // caller whose event loop was blocked longer than the server's keep-alive (a script in
    // spawnSync) would otherwise reuse a connection the server already closed and get ECONNRESET.
    // Over TCP and TLS connections are pooled; Node frees one a second before the server's
    // Keep-Alive: timeout=N hint (72 s for podwire's servers).
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ca: opts.ca, ...(opts.checkServerIdentity ? { checkServerIdentity: opts.checkServerIdentity } : {}) }) : new http.Agent({ keepAlive: !opts.socketPath });
  }

  /** Requests not yet finished (for tests: 0 once every caller has stopped). */
  get inFlight(): number {
    return this.live.size;
  }

  /** Ends every request of this client (connecting, waiting or streaming) and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const req of this.live) req.destroy();
    this.live.clear();
    this.agent.destroy();
  }

  private open(method: string, path: string, headers: Record<string, string>, signal?: AbortSignal): http.ClientRequest {
    if (this.closed) throw new ApiClientError(`${method} ${this.opts.server}${path}: this client was closed`, 0);
    if (signal?.aborted) throw new ApiClientError(`${method} ${this.opts.server}${path}: aborted`, 0);
    const mod = this.url.protocol === 'https:' ? https : http;
    const where = this.opts.socketPath
      ? { socketPath: this.opts.socketPath }
      : { protocol: this.url.protocol, hostname: this.url.hostname.replace(/^\[|\]$/g, ''), port: this.url.port || (this.url.protocol === 'https:' ? 443 : 80) };
    const req = mod.request({
      ...where,
      method,
      path,
      agent: this.agent,
      ...(signal ? { signal } : {}),
      headers: { accept: 'application/json', ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}), ...headers },
    });
    this.live.add(req);
    req.once('close', () => this.live.delete(req));
    return req;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json', call: CallOptions = {}): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = this.open(method, path, payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}, call.signal);
      req.setTimeout(this.opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`no answer within ${this.opts.timeoutMs ?? 30_000} ms`)));
      // A failure settles the call only once the request is closed, so a caller that moves on
      // (a stopped informer) leaves no socket of it behind. 'close' always follows 'error'.
      let failure: Error | undefined;
      req.on('error', (e) => (failure ??= e));
      req.on('close', () => reject(new ApiClientError(`${method} ${this.opts.server}${path}: ${failure?.message ?? 'the connection closed before the answer was complete'}`, 0)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(new ApiClientError(`${method} ${path}: ${e.message}`, 0)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          let parsed: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('json') && text !== '') {
            try {
              parsed = JSON.parse(text);
            } catch {
              return reject(new ApiClientError(`${method} ${path}: the server sent invalid JSON (HTTP ${code})`, code));
            }
          }
          if (code >= 200 && code < 300) return resolve(parsed as T);
          const status = isStatus(parsed) ? parsed : undefined;
          reject(new ApiClientError(status?.message ?? `${method} ${path}: HTTP ${code}: ${String(text).slice(0, 200)}`, code, status));
        });
      });
      req.end(payload);
    });
  }

  list<T extends KubeObject>(ref: ResourceRef, query: Record<string, string> = {}, call: CallOptions = {}): Promise<ObjectList<T>> {
    return this.request('GET', withQuery(resourcePath(ref), query), undefined, 'application/json', call);
  }
  get<T extends KubeObject>(ref: ResourceRef): Promise<T> {
    return this.request('GET', resourcePath(ref));
  }
  create<T extends KubeObject>(ref: ResourceRef, obj: unknown): Promise<T> {
    return this.request('POST', resourcePath({ ...ref, name: undefined }), obj);
  }
  update<T extends KubeObject>(ref: ResourceRef, obj: unknown): Promise<T> {
    return this.request('PUT', resourcePath(ref), obj);
  }
  patch<T extends KubeObject>(ref: ResourceRef, mergePatch: unknown): Promise<T> {
    return this.request('PATCH', resourcePath(ref), mergePatch, 'application/merge-patch+json');
  }
  delete<T = KubeObject>(ref: ResourceRef): Promise<T> {
    return this.request('DELETE', resourcePath(ref));
  }

  /**
   * Opens `GET path?watch=1&…` and calls onEvent for each event line. A non-2xx answer (e.g. 410
   * for a too-old resourceVersion) rejects with ApiClientError before any event.
   */
  async watch(ref: ResourceRef, query: Record<string, string>, onEvent: (ev: WatchEventBody) => void, call: CallOptions = {}): Promise<WatchStream> {
    const path = withQuery(resourcePath(ref), { ...query, watch: '1' });
    return new Promise<WatchStream>((resolve, reject) => {
      const req = this.open('GET', path, {}, call.signal);
      let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
      const done = new Promise<void>((res, rej) => (settle = { resolve: res, reject: rej }));
      done.catch(() => undefined); // callers that never await it must not crash the process
      let closed = false;
      // done settles when the request has closed (its socket too), not when close() is called.
      const close = () => {
        closed = true;
        req.destroy();
      };
      let failure: Error | undefined;
      req.on('error', (e) => (failure ??= e));
      let response: http.IncomingMessage | undefined;
      // However the request ends (server gone, client closed, aborted), the stream is over: a
      // stream cut before its last chunk is an error, one that ended (or that we closed) is not.
      req.on('close', () => {
        const why = failure?.message ?? (response ? 'the connection was lost' : 'the connection closed before the server answered');
        const err = new ApiClientError(`watch ${path}: ${why}`, 0);
        reject(err);
        if (closed || (response?.complete && !failure)) settle?.resolve();
        else settle?.reject(err);
      });
      req.on('response', (res) => {
        response = res;
        const code = res.statusCode ?? 0;
        if (code < 200 || code >= 300) {
          readStatus(res, (status) => reject(new ApiClientError(status?.message ?? `watch ${path}: HTTP ${code}`, code, status)));
          return;
        }
        resolve({ close, done });
        readLines(res, (line) => {
          if (closed) return false;
          let ev: WatchEventBody;
          try {
            ev = JSON.parse(line) as WatchEventBody;
          } catch {
            failure = new ApiClientError(`the server sent a line that is not JSON: ${line.slice(0, 80)}`, 0);
            req.destroy(); // done rejects with it once the request is closed
            return false;
          }
          onEvent(ev);
          return true;
        });
      });
      req.end();
    });
  }
}

/**
 * The Status an error answer carries, if its body is one. A callback at 'end', not a promise: the
 * request's 'close' may be queued behind it and must not reject the watch first.
 */
function readStatus(res: http.IncomingMessage, then: (status: Status | undefined) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => {
    let status: Status | undefined;
    try {
      const p = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (isStatus(p)) status = p;
    } catch {
      /* not JSON: the message says the code */
    }
    then(status);
  });
}

/** Each non-blank line of a streamed body, as it completes; onLine returns false to stop reading. */
function readLines(res: http.IncomingMessage, onLine: (line: string) => boolean): void {
  let buffered = '';
  let reading = true;
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while (reading && (nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() !== '') reading = onLine(line);
    }
  });
}

export function withQuery(path: string, query: Record<string, string>): string {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== '')).toString();
  return q ? `${path}?${q}` : path;
}

export function isStatus(v: unknown): v is Status {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'Status';
}
