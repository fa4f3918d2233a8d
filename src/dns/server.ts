// The thin shell: UDP and TCP listeners around the pure handler, the forwarder and the loop
// check. A library (no entry point yet): new DnsServer(index, options), start(), update(index)
// after a change (an atomic swap), stop().
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import type { Question } from 'dns-packet';
import { tryParseIp } from '../net/index.js';
import { AnswerCache, answerCode, DEFAULT_ANSWER_CACHE_OPTIONS, type AnswerCacheOptions, type AnswerCacheStats } from './answer-cache.js';
import { DEFAULT_CACHE_OPTIONS, DnsCache, type CacheOptions } from './cache.js';
import { fastParse } from './fast-parse.js';
import { Forwarder, realTransport, upstreamText, type UpstreamTransport } from './forwarder.js';
import { DEFAULT_HANDLER_OPTIONS, forwardedResponse, handleQuery, responseLimit, type ForwardRequest, type HandlerOptions, type Transport } from './handler.js';
import { LOOP_PROBE_SUFFIX, probeName, selfLoop } from './loop.js';
import { DROPPED_ZONE, guardedObserver, qtypeLabel, type CacheKind, type DnsObserver } from './metrics.js';
import { isUnder, normalizeName } from './names.js';
import { RateLimitedLog, silentLog, type LogSink } from './rate-log.js';
import type { DnsIndex } from './records.js';
import type { Upstream } from './resolv-conf.js';
import type { RcodeName } from './wire.js';

export interface DnsServerOptions {
  /** Where to listen, UDP and TCP on the same port (port 0: one free port for both). */
  listen: Upstream;
  upstreams: Upstream[];
  maxUdpSize: number;
  /** The cache of forwarded answers (cache.ts). */
  cache: CacheOptions;
  /** The cache of encoded answers from the index (answer-cache.ts); maxEntries 0: none. */
  answerCache: AnswerCacheOptions;
  /**
   * SO_RCVBUF asked for the UDP socket, bytes (the kernel caps it at net.core.rmem_max and doubles
   * it; `udpRecvBufferSize` says what it gave). A burst or a stall of this process is absorbed here
   * instead of dropped. The kernel counts each datagram's whole buffer (~830 bytes for a query):
   * its default 212,992 held 256 queries (25 ms at 10,000 qps), 4 MiB (8 MiB granted) ~10,000.
   */
  recvBufferSize: number;
  upstreamTimeoutMs: number;
  tcpIdleMs: number;
  maxTcpConnections: number;
  /** Queries of one TCP connection being answered at once; beyond it the socket is paused. */
  maxPipelined: number;
  /** Forwarded questions in flight at once; beyond it SERVFAIL (a flood does not queue up). */
  maxForwarding: number;
  loopProbe: boolean;
  loopProbeTimeoutMs: number;
  log: LogSink;
  logLines: number;
  logIntervalMs: number;
  transport: UpstreamTransport;
  /** Told of each query, cache lookup and upstream exchange (metrics); none: no calls, no clock reads. */
  observer?: DnsObserver;
}

export const DEFAULT_SERVER_OPTIONS: DnsServerOptions = {
  listen: { host: '127.0.0.1', port: 53 },
  upstreams: [],
  maxUdpSize: DEFAULT_HANDLER_OPTIONS.maxUdpSize,
  cache: DEFAULT_CACHE_OPTIONS,
  answerCache: DEFAULT_ANSWER_CACHE_OPTIONS,
  recvBufferSize: 4 * 1024 * 1024,
  upstreamTimeoutMs: 2000,
  tcpIdleMs: 10_000,
  maxTcpConnections: 256,
  maxPipelined: 32,
  maxForwarding: 1000,
  loopProbe: true,
  loopProbeTimeoutMs: 2000,
  log: silentLog,
  logLines: 10,
  logIntervalMs: 10_000,
  transport: realTransport,
};

export interface DnsServerStats {
  queries: number;
  dropped: number;
  rcodes: Record<string, number>;
  truncated: number;
}

/** What the metrics want of one query besides its bytes: the response's rcode, and the question when there was one. */
interface Seen {
  rcode?: RcodeName;
  question?: Question;
}

export class DnsServer {
  readonly options: DnsServerOptions;
  readonly forwarder: Forwarder;
  readonly stats: DnsServerStats = { queries: 0, dropped: 0, rcodes: {}, truncated: 0 };
  /** Upstreams refused as loops, each with why. */
  readonly loops: string[] = [];
  private index: DnsIndex;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private readonly probes = new Map<string, Upstream>();
  private forwarding = 0;
  private readonly answers: AnswerCache;
  private readonly log: RateLimitedLog;
  private readonly observer: DnsObserver | undefined;
  /** CoreDNS's `server` label, `dns://IP:PORT` (the bound port once started). */
  private serverLabel: string;

  constructor(index: DnsIndex, options: Partial<DnsServerOptions> = {}) {
    this.options = { ...DEFAULT_SERVER_OPTIONS, ...options };
    this.index = index;
    this.answers = new AnswerCache(this.options.answerCache);
    this.log = new RateLimitedLog(this.options.log, this.options.logLines, this.options.logIntervalMs);
    const given = this.options.observer;
    const obs = given && guardedObserver(given, (call, err) => this.log.warn({ call, err: err.message }, 'dns: the metrics observer failed'));
    this.observer = obs;
    this.serverLabel = `dns://${upstreamText(this.options.listen)}`;
    const cacheEvents = obs && { hit: (kind: CacheKind) => obs.cacheHit(this.serverLabel, kind), miss: () => obs.cacheMiss(this.serverLabel) };
    const cache = new DnsCache(this.options.cache, Date.now, cacheEvents);
    this.forwarder = new Forwarder([...this.options.upstreams], cache, this.options.transport, this.options.upstreamTimeoutMs, (u, err) =>
      this.log.warn({ upstream: upstreamText(u), err }, 'dns: upstream failed'), obs,
    );
  }

  /** The bound address (port 0 resolved). */
  get address(): Upstream {
    const a = this.udp?.address();
    return a ? { host: a.address, port: a.port } : this.options.listen;
  }

  /** What the kernel gave the UDP socket for SO_RCVBUF (bytes; undefined before start). */
  get udpRecvBufferSize(): number | undefined {
    return this.udp?.getRecvBufferSize();
  }

  get answerCacheStats(): AnswerCacheStats {
    return this.answers.stats;
  }

  /** A new index (LiveDnsIndex.snapshot() after each change): answers from the old one are forgotten. */
  update(index: DnsIndex): void {
    this.index = index;
    this.answers.clear();
  }

  async start(): Promise<void> {
    const { host, port } = this.options.listen;
    for (let attempt = 0; ; attempt++) {
      this.udp = await bindUdp(host, port, this.options.recvBufferSize);
      const bound = this.udp.address().port;
      try {
        this.tcp = await listenTcp(host, bound, (s) => this.onConnection(s));
        break;
      } catch (err) {
        this.udp.close();
        if (port !== 0 || attempt >= 5) throw new Error(`dns: cannot listen on TCP ${host}:${bound}: ${(err as Error).message}`);
      }
    }
    this.tcp.maxConnections = this.options.maxTcpConnections;
    const asked = this.options.recvBufferSize;
    const got = this.udp.getRecvBufferSize(); // Linux reports twice what it granted (its bookkeeping share)
    if (asked > 0 && got < asked) {
      this.options.log.info({ asked, got }, `dns: the UDP receive buffer is ${got} bytes, not the ${asked} asked: the kernel caps it at net.core.rmem_max (x2)`);
    }
    this.serverLabel = `dns://${upstreamText(this.address)}`;
    this.udp.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    this.udp.on('error', (err) => this.log.warn({ err: err.message }, 'dns: UDP socket error'));
    this.refuseSelf();
    if (this.options.loopProbe) await this.probeLoops();
  }

  async stop(): Promise<void> {
    for (const s of this.connections) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ]);
    this.udp = undefined;
    this.tcp = undefined;
  }

  private refuseSelf(): void {
    for (const u of this.forwarder.upstreams) {
      const why = selfLoop(u, [this.address]);
      if (why) this.refuseLoop(u, `upstream ${upstreamText(u)} refused: ${why}`);
    }
  }

  private refuseLoop(u: Upstream, message: string): void {
    this.forwarder.remove(u);
    this.loops.push(message);
    this.options.log.warn({ upstream: upstreamText(u) }, `dns: forwarding loop: ${message}`);
  }

  private async probeLoops(): Promise<void> {
    await Promise.all(
      this.forwarder.upstreams.map(async (u) => {
        const name = probeName();
        this.probes.set(name, u);
        const timeout = new Promise<void>((r) => setTimeout(r, this.options.loopProbeTimeoutMs).unref());
        await Promise.race([this.forwarder.probe(u, { name, type: 'HINFO', class: 'IN' }), timeout]);
      }),
    );
  }

  /** The response to one query, undefined when it is dropped; never rejects. family: the client's, for the metrics. */
  answer(msg: Buffer, transport: Transport, family: 4 | 6 = 4): Promise<Buffer | undefined> {
    try {
      const now = this.answerNow(msg, transport, family);
      return now instanceof Promise ? now : Promise.resolve(now);
    } catch (err) {
      return Promise.reject(err); // unreachable by design; the TCP caller logs it
    }
  }

  /**
   * The response, at once when no upstream is involved (the index, the answer cache: no promise,
   * no microtask), else a promise of it. Never throws or rejects.
   */
  private answerNow(msg: Buffer, transport: Transport, family: 4 | 6): Buffer | undefined | Promise<Buffer | undefined> {
    const obs = this.observer;
    if (!obs) return this.respond(msg, transport, undefined);
    const start = performance.now();
    const seen: Seen = {};
    const bytes = this.respond(msg, transport, seen);
    return bytes instanceof Promise
      ? bytes.then((b) => this.observe(obs, msg, transport, family, start, seen, b))
      : this.observe(obs, msg, transport, family, start, seen, bytes);
  }

  private observe(obs: DnsObserver, msg: Buffer, transport: Transport, family: 4 | 6, start: number, seen: Seen, bytes: Buffer | undefined): Buffer | undefined {
    const q = seen.question;
    const zone = q ? (isUnder(normalizeName(q.name), this.index.zone) ? `${this.index.zone}.` : '.') : DROPPED_ZONE;
    obs.query({
      server: this.serverLabel, zone, proto: transport, family, type: qtypeLabel(q?.type), requestBytes: msg.length,
      ...(bytes ? { rcode: seen.rcode, responseBytes: bytes.length } : {}), seconds: (performance.now() - start) / 1000,
    });
    return bytes;
  }

  /** seen: filled for the metrics (undefined without an observer, so nothing is spent on them). */
  private respond(msg: Buffer, transport: Transport, seen: Seen | undefined): Buffer | undefined | Promise<Buffer | undefined> {
    this.stats.queries++;
    const forwarding = this.forwarder.upstreams.length > 0;
    const fast = fastParse(msg);
    let code: number | undefined;
    if (fast && this.answers.enabled) {
      code = answerCode(fast, transport, responseLimit(fast.opt?.udpPayloadSize, transport, this.options.maxUdpSize), forwarding);
      const hit = this.answers.answer(fast, code, msg);
      if (hit) {
        this.count(hit.entry.rcode, hit.entry.truncated, seen);
        if (seen) seen.question = { name: hit.entry.qname, type: hit.entry.qtype as Question['type'] };
        return hit.bytes;
      }
    }
    const options: HandlerOptions = { maxUdpSize: this.options.maxUdpSize, forwarding };
    const result = handleQuery(msg, transport, this.index, options, fast);
    if (result.kind === 'drop') {
      this.stats.dropped++;
      this.log.warn({ transport, bytes: msg.length }, `dns: dropped a packet: ${result.reason}`);
      return undefined;
    }
    if (result.kind === 'answer') {
      this.count(result.rcode, result.truncated);
      if (seen) {
        seen.rcode = result.rcode;
        if (result.qname !== undefined) seen.question = { name: result.qname, type: result.qtype as Question['type'] };
      }
      if (code !== undefined && fast && result.cacheable && result.qname !== undefined && result.qtype !== undefined) {
        this.answers.store(fast, code, msg, { bytes: result.bytes, rcode: result.rcode, truncated: result.truncated, qname: result.qname, qtype: result.qtype });
      }
      return result.bytes;
    }
    return this.forward(result.request, seen);
  }

  private async forward(req: ForwardRequest, seen: Seen | undefined): Promise<Buffer | undefined> {
    if (seen) seen.question = req.clientQuestion;
    const name = normalizeName(req.question.name);
    const looped = isUnder(name, LOOP_PROBE_SUFFIX) ? this.probes.get(name) : undefined;
    if (looped) {
      // Our own probe came back: never forward it again, that is the loop. Another server's
      // probe is forwarded like any name, so that server finds a loop that runs through us.
      this.refuseLoop(looped, `upstream ${upstreamText(looped)} sent our loop probe ${name} back to this server: it forwards to us`);
      this.probes.delete(name);
      this.count('SERVFAIL', false, seen);
      return forwardedResponse(req, undefined);
    }
    if (this.forwarding >= this.options.maxForwarding) {
      this.log.warn({ inflight: this.forwarding }, 'dns: too many forwarded queries in flight, answering SERVFAIL');
      this.count('SERVFAIL', false, seen);
      this.observer?.forwardRejected();
      return forwardedResponse(req, undefined);
    }
    this.forwarding++;
    try {
      const up = await this.forwarder.resolve(req.question).catch(() => undefined);
      this.count(up?.rcode ?? 'SERVFAIL', false, seen);
      return forwardedResponse(req, up);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'dns: could not encode a forwarded answer');
      if (seen) seen.rcode = 'SERVFAIL';
      return forwardedResponse(req, undefined);
    } finally {
      this.forwarding--;
    }
  }

  private count(rcode: RcodeName, truncated: boolean, seen?: Seen): void {
    if (seen) seen.rcode = rcode;
    this.stats.rcodes[rcode] = (this.stats.rcodes[rcode] ?? 0) + 1;
    if (truncated) this.stats.truncated++;
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let now: Buffer | undefined | Promise<Buffer | undefined>;
    try {
      now = this.answerNow(msg, 'udp', this.observer ? clientFamily(rinfo.family, rinfo.address) : 4);
    } catch (err) {
      return void this.log.warn({ err: (err as Error).message }, 'dns: a UDP query failed');
    }
    if (now instanceof Promise) now.then((bytes) => this.sendUdp(bytes, rinfo), (err: Error) => this.log.warn({ err: err.message }, 'dns: a UDP query failed'));
    else this.sendUdp(now, rinfo);
  }

  private sendUdp(bytes: Buffer | undefined, rinfo: dgram.RemoteInfo): void {
    if (bytes && this.udp) this.udp.send(bytes, rinfo.port, rinfo.address, (err) => err && this.log.warn({ err: err.message, to: rinfo.address }, 'dns: UDP send failed'));
  }

  private onConnection(socket: net.Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.options.tcpIdleMs, () => socket.destroy());
    const family = this.observer ? clientFamily(socket.remoteFamily, socket.remoteAddress) : 4;
    let buf: Buffer = Buffer.alloc(0);
    let inflight = 0;
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        if (++inflight >= this.options.maxPipelined) socket.pause();
        void this.answer(msg, 'tcp', family)
          .then((bytes) => {
            if (bytes && !socket.destroyed) socket.write(Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 255]), bytes]));
          })
          .catch((err: Error) => this.log.warn({ err: err.message }, 'dns: a TCP query failed'))
          .finally(() => {
            if (--inflight < this.options.maxPipelined && socket.isPaused()) socket.resume();
          });
      }
    });
  }
}

/** As CoreDNS's family label: 6 only for a real IPv6 client, not an IPv4-mapped one on a dual-stack socket. */
function clientFamily(family: string | undefined, address: string | undefined): 4 | 6 {
  return family === 'IPv6' && !address?.toLowerCase().startsWith('::ffff:') ? 6 : 4;
}

let lastLiteral = { address: '', family: 0 };

/**
 * dgram resolves every send's address, even an IP literal (dns.lookup: a regex and a nextTick per
 * answer). An answer goes to rinfo's address, a literal: said at once (the last one remembered, as
 * replies to one client come in runs); anything else goes to dns.lookup.
 */
function literalLookup(address: string, family: dns.LookupOneOptions | number, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  if (address === lastLiteral.address) return callback(null, address, lastLiteral.family);
  const f = tryParseIp(address)?.family ?? 0;
  if (!f) return void (typeof family === 'number' ? dns.lookup(address, family, callback) : dns.lookup(address, family, callback));
  lastLiteral = { address, family: f };
  callback(null, address, f);
}

function bindUdp(host: string, port: number, recvBufferSize: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: tryParseIp(host)?.family === 6 ? 'udp6' : 'udp4', lookup: literalLookup, ...(recvBufferSize > 0 ? { recvBufferSize } : {}) });
    sock.once('error', reject);
    sock.bind(port, host, () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}

function listenTcp(host: string, port: number, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(onConnection);
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
