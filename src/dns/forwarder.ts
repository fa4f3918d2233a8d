// Forwarding outside the zone: the cache first, then each upstream in turn (the last one that
// answered first) with a timeout, over UDP and again over TCP when the UDP answer was truncated.
// An upstream's SERVFAIL or REFUSED, a timeout or an answer that is not to our question (id or
// question differ: a stray or spoofed datagram) moves on to the next; all failing is undefined
// (the handler's SERVFAIL). Identical questions in flight share one upstream query.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
import type { Answer, Question } from 'dns-packet';
import { tryParseIp } from '../net/index.js';
import { DnsCache, cacheKey } from './cache.js';
import type { UpstreamAnswer } from './handler.js';
import type { DnsObserver } from './metrics.js';
import type { Upstream } from './resolv-conf.js';
import { FLAG, RCODE, type RcodeName } from './wire.js';

export interface UpstreamTransport {
  /** The upstream's response bytes, or a rejection (timeout, socket error). */
  exchange(upstream: Upstream, query: Buffer, transport: 'udp' | 'tcp', timeoutMs: number): Promise<Buffer>;
}

export const upstreamText = (u: Upstream): string => (u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`);

export interface ForwardStats {
  forwarded: number;
  errors: number;
}

export class Forwarder {
  readonly stats: ForwardStats = { forwarded: 0, errors: 0 };
  private preferred = 0;
  private readonly inflight = new Map<string, Promise<UpstreamAnswer | undefined>>();

  constructor(
    public upstreams: Upstream[],
    readonly cache: DnsCache,
    private readonly transport: UpstreamTransport = realTransport,
    private readonly timeoutMs = 2000,
    private readonly onUpstreamError: (u: Upstream, err: string) => void = () => {},
    private readonly observer?: Pick<DnsObserver, 'forwardRequest' | 'forwardResponse'>,
  ) {}

  remove(u: Upstream): void {
    this.upstreams = this.upstreams.filter((x) => !(x.host === u.host && x.port === u.port));
    this.preferred = 0;
  }

  resolve(q: Question): Promise<UpstreamAnswer | undefined> {
    const cached = this.cache.get(q);
    if (cached) return Promise.resolve(cached);
    const key = cacheKey(q);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.ask(q).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** One query to one upstream, nothing cached (the loop probe). */
  async probe(u: Upstream, q: Question): Promise<void> {
    await this.exchange(u, q).catch(() => undefined);
  }

  private async ask(q: Question): Promise<UpstreamAnswer | undefined> {
    const list = this.upstreams;
    for (let i = 0; i < list.length; i++) {
      const n = (this.preferred + i) % list.length;
      const u = list[n];
      try {
        const answer = await this.exchange(u, q);
        this.stats.forwarded++;
        if (answer.rcode === 'SERVFAIL' || answer.rcode === 'REFUSED') throw new Error(`answered ${answer.rcode}`);
        this.preferred = n;
        this.cache.put(q, answer);
        return answer;
      } catch (err) {
        this.stats.errors++;
        this.onUpstreamError(u, (err as Error).message);
      }
    }
    return undefined;
  }

  /** One question to one upstream (UDP, then TCP after TC); each one is a forward request in the metrics. */
  private async exchange(u: Upstream, q: Question): Promise<UpstreamAnswer> {
    const obs = this.observer;
    if (!obs) return this.exchangeOnce(u, q);
    const to = upstreamText(u);
    const start = performance.now();
    obs.forwardRequest(to);
    const answer = await this.exchangeOnce(u, q);
    obs.forwardResponse(to, answer.rcode, (performance.now() - start) / 1000);
    return answer;
  }

  private async exchangeOnce(u: Upstream, q: Question): Promise<UpstreamAnswer> {
    const id = randomInt(0, 65536);
    const query = dnsPacket.encode({
      type: 'query', id, flags: FLAG.RD,
      questions: [{ name: q.name, type: q.type, class: q.class ?? 'IN' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    });
    let bytes = await this.transport.exchange(u, query, 'udp', this.timeoutMs);
    if (bytes.length >= 4 && bytes.readUInt16BE(2) & FLAG.TC) bytes = await this.transport.exchange(u, query, 'tcp', this.timeoutMs);
    return parseUpstreamResponse(bytes, id, q);
  }
}

/** The records of an upstream's response to (id, q); throws saying why it is not one. */
export function parseUpstreamResponse(bytes: Buffer, id: number, q: Question): UpstreamAnswer {
  const p = dnsPacket.decode(bytes);
  const asked = p.questions?.[0];
  if (p.id !== id || !asked || asked.name.toLowerCase() !== q.name.toLowerCase().replace(/\.$/, '') || asked.type !== q.type) {
    throw new Error(`a response that is not to our query (id ${p.id}, question ${asked?.name ?? 'none'} ${asked?.type ?? ''})`);
  }
  const rcode = ((p as { rcode?: string }).rcode ?? 'SERVFAIL') as string;
  const known: RcodeName = rcode in RCODE ? (rcode as RcodeName) : 'SERVFAIL';
  const strip = (rs: Answer[] | undefined): Answer[] => (rs ?? []).filter((r) => r.type !== 'OPT');
  return { rcode: known, answers: strip(p.answers), authorities: strip(p.authorities), additionals: strip(p.additionals) };
}

function udpExchange(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(tryParseIp(u.host)?.family === 6 ? 'udp6' : 'udp4');
    const done = (err: Error | undefined, bytes?: Buffer): void => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(bytes as Buffer);
    };
    const timer = setTimeout(() => done(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (err) => done(err));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.port === u.port && msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0)) done(undefined, msg);
    });
    sock.send(query, u.port, u.host);
  });
}

function tcpExchange(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.host, port: u.port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`no TCP answer in ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.on('error', fail);
    sock.on('connect', () => sock.write(Buffer.concat([Buffer.from([query.length >> 8, query.length & 255]), query])));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        sock.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.on('end', () => fail(new Error('the upstream closed the TCP connection before answering')));
  });
}

export const realTransport: UpstreamTransport = {
  exchange: (u, query, transport, timeoutMs) => (transport === 'udp' ? udpExchange(u, query, timeoutMs) : tcpExchange(u, query, timeoutMs)),
};
