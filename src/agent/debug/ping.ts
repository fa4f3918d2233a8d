// POST /v1/debug/ping {srcIp, netnsHint?, dst, count, intervalMs, timeoutMs}: ICMP echo from
// inside a pod's netns (IPv4 only for now). The raw socket is created inside the pod's netns
// (raw-socket opens its fd synchronously in createSocket, so it stays there after withNetns
// switches back); requests carry an identifier unique to this run, replies are matched by
// identifier + sequence (icmp.ts), everything else the socket reads is ignored.
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import { withNetns } from '../../netns/netns.js';
import type { Handle } from '../../netlink/handle.js';
import { findPodNetns, noPodMessage } from './pod-netns.js';
import type { Agent } from '../agent.js';
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

export interface PingRouteDeps {
  nodeName: string;
  /** The agent's handle on the node's netns: a pod's netns is only used when its veth peer is here. */
  handle: Handle;
  /** Its podCIDR: only an IP inside it can be one of this node's pods. */
  agent: Pick<Agent, 'networkInput'>;
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

export function registerPingRoutes(app: FastifyInstance, deps: PingRouteDeps): void {
  app.post('/v1/debug/ping', async (request, reply) => {
    const req = validatePingRequest(request.body);
    if (typeof req === 'string') return reply.code(400).send({ kind: 'Status', status: 'Failure', code: 400, message: req });
    const podCidr = deps.agent.networkInput()?.podCidr;
    const netns = findPodNetns({ ip: req.srcIp, node: deps.handle, ...(podCidr ? { podCidr } : {}), ...(req.netnsHint ? { hint: req.netnsHint } : {}) });
    if (!netns) return reply.code(404).send({ kind: 'Status', status: 'Failure', code: 404, message: noPodMessage(deps.nodeName, req.srcIp, podCidr, req.netnsHint) });
    try {
      return await pingFrom(netns, req);
    } catch (e) {
      return reply.code(500).send({ kind: 'Status', status: 'Failure', code: 500, message: `ping from ${req.srcIp} (netns ${netns}) to ${req.dst}: ${(e as Error).message}` });
    }
  });
}
