// The thin shell: UDP and TCP listeners around the pure handler, the forwarder and the loop
// check. A library (no entry point yet): new DnsServer(index, options), start(), update(index)
// after a change (an atomic swap), stop().
import dgram from 'node:dgram';
import net from 'node:net';
import { tryParseIp } from '../net/index.js';
import { DEFAULT_CACHE_OPTIONS, DnsCache, type CacheOptions } from './cache.js';
import { Forwarder, realTransport, upstreamText, type UpstreamTransport } from './forwarder.js';
import { DEFAULT_HANDLER_OPTIONS, forwardedResponse, handleQuery, type HandlerOptions, type Transport } from './handler.js';
import { LOOP_PROBE_SUFFIX, probeName, selfLoop } from './loop.js';
import { isUnder, normalizeName } from './names.js';
import { RateLimitedLog, silentLog, type LogSink } from './rate-log.js';
import type { DnsIndex } from './records.js';
import type { Upstream } from './resolv-conf.js';

export interface DnsServerOptions {
  /** Where to listen, UDP and TCP on the same port (port 0: one free port for both). */
  listen: Upstream;
  upstreams: Upstream[];
  maxUdpSize: number;
  cache: CacheOptions;
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
}

export const DEFAULT_SERVER_OPTIONS: DnsServerOptions = {
  listen: { host: '127.0.0.1', port: 53 },
  upstreams: [],
  maxUdpSize: DEFAULT_HANDLER_OPTIONS.maxUdpSize,
  cache: DEFAULT_CACHE_OPTIONS,
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
  private readonly log: RateLimitedLog;

  constructor(index: DnsIndex, options: Partial<DnsServerOptions> = {}) {
    this.options = { ...DEFAULT_SERVER_OPTIONS, ...options };
    this.index = index;
    this.log = new RateLimitedLog(this.options.log, this.options.logLines, this.options.logIntervalMs);
    const cache = new DnsCache(this.options.cache);
    this.forwarder = new Forwarder([...this.options.upstreams], cache, this.options.transport, this.options.upstreamTimeoutMs, (u, err) =>
      this.log.warn({ upstream: upstreamText(u), err }, 'dns: upstream failed'),
    );
  }

  /** The bound address (port 0 resolved). */
  get address(): Upstream {
    const a = this.udp?.address();
    return a ? { host: a.address, port: a.port } : this.options.listen;
  }

  update(index: DnsIndex): void {
    this.index = index;
  }

  async start(): Promise<void> {
    const { host, port } = this.options.listen;
    for (let attempt = 0; ; attempt++) {
      this.udp = await bindUdp(host, port);
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
    this.udp.on('message', (msg, rinfo) => void this.onDatagram(msg, rinfo).catch((err: Error) => this.log.warn({ err: err.message }, 'dns: a UDP query failed')));
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

  /** The response to one query, undefined when it is dropped; never rejects. */
  async answer(msg: Buffer, transport: Transport): Promise<Buffer | undefined> {
    this.stats.queries++;
    const options: HandlerOptions = { maxUdpSize: this.options.maxUdpSize, forwarding: this.forwarder.upstreams.length > 0 };
    const result = handleQuery(msg, transport, this.index, options);
    if (result.kind === 'drop') {
      this.stats.dropped++;
      this.log.warn({ transport, bytes: msg.length }, `dns: dropped a packet: ${result.reason}`);
      return undefined;
    }
    if (result.kind === 'answer') {
      this.count(result.rcode, result.truncated);
      return result.bytes;
    }
    const req = result.request;
    const name = normalizeName(req.question.name);
    const looped = isUnder(name, LOOP_PROBE_SUFFIX) ? this.probes.get(name) : undefined;
    if (looped) {
      // Our own probe came back: never forward it again, that is the loop. Another server's
      // probe is forwarded like any name, so that server finds a loop that runs through us.
      this.refuseLoop(looped, `upstream ${upstreamText(looped)} sent our loop probe ${name} back to this server: it forwards to us`);
      this.probes.delete(name);
      this.count('SERVFAIL', false);
      return forwardedResponse(req, undefined);
    }
    if (this.forwarding >= this.options.maxForwarding) {
      this.log.warn({ inflight: this.forwarding }, 'dns: too many forwarded queries in flight, answering SERVFAIL');
      this.count('SERVFAIL', false);
      return forwardedResponse(req, undefined);
    }
    this.forwarding++;
    try {
      const up = await this.forwarder.resolve(req.question).catch(() => undefined);
      this.count(up?.rcode ?? 'SERVFAIL', false);
      return forwardedResponse(req, up);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'dns: could not encode a forwarded answer');
      return forwardedResponse(req, undefined);
    } finally {
      this.forwarding--;
    }
  }

  private count(rcode: string, truncated: boolean): void {
    this.stats.rcodes[rcode] = (this.stats.rcodes[rcode] ?? 0) + 1;
    if (truncated) this.stats.truncated++;
  }

  private async onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): Promise<void> {
    const bytes = await this.answer(msg, 'udp');
    if (bytes && this.udp) this.udp.send(bytes, rinfo.port, rinfo.address, (err) => err && this.log.warn({ err: err.message, to: rinfo.address }, 'dns: UDP send failed'));
  }

  private onConnection(socket: net.Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.options.tcpIdleMs, () => socket.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let inflight = 0;
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        if (++inflight >= this.options.maxPipelined) socket.pause();
        void this.answer(msg, 'tcp')
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

function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(tryParseIp(host)?.family === 6 ? 'udp6' : 'udp4');
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
