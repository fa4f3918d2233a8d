// POST /v1/debug/ping {srcIp, netnsHint?, dst, count, intervalMs, timeoutMs}: ICMP echo from
// inside a pod's netns (IPv4 only for now). The raw socket is created inside the pod's netns
// (raw-socket opens its fd synchronously in createSocket, so it stays there after withNetns
// switches back); requests carry an identifier unique to this run, replies are matched by
// identifier + sequence (icmp.ts), everything else the socket reads is ignored.
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import { withNetns } from '../../netns/netns.js';
import { registerPodRoute, type PodRouteDeps } from './request.js';
import { encodeEchoRequest, parseEchoReply, summarizePing, validatePingRequest, type PingRequest, type PingResult } from './icmp.js';

interface RawSocket {
  on(ev: 'message', fn: (buf: Buffer, source: string) => void): void;
  on(ev: 'error', fn: (err: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, address: string, after: (err: Error | null, bytes: number) => void): void;
  close(): void;
}
interface RawSocketModule {
  createSocket(opts: { protocol: number; addressFamily?: number }): RawSocket;
  Protocol: { ICMP: number };
  AddressFamily: { IPv4: number };
}
// Loaded on the first ping, not at start: a native addon that fails to load must not keep the
// agent (the node's network) from starting; the ping then fails with that reason.
let rawModule: RawSocketModule | undefined;
function raw(): RawSocketModule {
  try {
    return (rawModule ??= createRequire(import.meta.url)('raw-socket') as RawSocketModule);
  } catch (e) {
    throw new Error(`cannot load the raw-socket module for ICMP (${(e as Error).message}); reinstall podwire (npm ci builds it)`);
  }
}

let nextId = (process.pid * 7919) & 0xffff;

/** Run one ping from the netns at `netnsPath`. Never rejects for lost replies. */
export function pingFrom(netnsPath: string, req: PingRequest): Promise<PingResult> {
  const id = (nextId = (nextId + 1) & 0xffff);
  const r = raw();
  const socket = withNetns(netnsPath, () => r.createSocket({ protocol: r.Protocol.ICMP, addressFamily: r.AddressFamily.IPv4 }));
  return new Promise((resolve, reject) => {
    const sentAt = new Map<number, bigint>();
    const replies = new Map<number, number>();
    const timers: NodeJS.Timeout[] = [];
    let sent = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      timers.forEach(clearTimeout);
      socket.close();
      if (err) reject(err);
      else resolve(summarizePing(req.srcIp, req.dst, sent, [...replies].map(([seq, rttMs]) => ({ seq, rttMs }))));
    };
    socket.on('error', (err) => finish(new Error(`raw ICMP socket in ${netnsPath}: ${err.message}`)));
    socket.on('message', (buf) => {
      const now = process.hrtime.bigint();
      const r = parseEchoReply(buf, id);
      if (!r || r.from !== req.dst) return;
      const at = sentAt.get(r.seq);
      if (at === undefined || replies.has(r.seq)) return;
      replies.set(r.seq, Number(now - at) / 1e6);
      if (replies.size === req.count) finish();
    });
    for (let seq = 1; seq <= req.count; seq++) {
      timers.push(setTimeout(() => {
        const pkt = encodeEchoRequest(id, seq);
        sentAt.set(seq, process.hrtime.bigint());
        socket.send(pkt, 0, pkt.length, req.dst, (err) => {
          if (err) sentAt.delete(seq); // not sent (e.g. ENETUNREACH): counts as lost
        });
        sent++;
      }, (seq - 1) * req.intervalMs));
    }
    timers.push(setTimeout(() => finish(), (req.count - 1) * req.intervalMs + req.timeoutMs));
  });
}

export function registerPingRoutes(app: FastifyInstance, deps: PodRouteDeps): void {
  registerPodRoute(app, '/v1/debug/ping', deps, validatePingRequest, pingFrom, (req, netns) => `ping from ${req.srcIp} (netns ${netns}) to ${req.dst}`);
}
