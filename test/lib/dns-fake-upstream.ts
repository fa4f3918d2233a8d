// A fake upstream resolver on a loopback port (or the host and port given) for the DNS server's tests: UDP and TCP answering
// `<anything>.example.test` A 192.0.2.53, `nx.example.test` NXDOMAIN with an SOA, `big.example.test`
// 60 A records over TCP and TC over UDP, and counting the questions it got (`name TYPE udp|tcp`). Also a relay ("stub resolver") that sends every datagram on to another
// port and the answer back: the loopback stub of a forwarding loop.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';

export interface FakeUpstream {
  port: number;
  questions: string[];
  close(): Promise<void>;
}

function reply(msg: Buffer, transport: 'udp' | 'tcp', questions: string[]): Buffer | undefined {
  let q;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
  const question = q.questions?.[0];
  if (!question) return undefined;
  questions.push(`${question.name} ${question.type} ${transport}`);
  const name = question.name.toLowerCase();
  const nx = name === 'nx.example.test' || !name.endsWith('example.test');
  const big = name === 'big.example.test';
  const tc = big && transport === 'udp';
  const count = big ? 60 : 1;
  return dnsPacket.encode({
    type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (nx ? 3 : 0) | (tc ? dnsPacket.TRUNCATED_RESPONSE : 0), questions: q.questions,
    answers: nx || tc || question.type !== 'A' ? [] : Array.from({ length: count }, (_, i) => ({ type: 'A' as const, name: question.name, ttl: 60, data: `192.0.2.${53 + i}` })),
    authorities: nx ? [{ type: 'SOA', name: 'example.test', ttl: 60, data: { mname: 'ns.example.test', rname: 'h.example.test', minimum: 60 } }] : [],
  });
}

/**
 * A fake upstream on UDP and TCP of one port. With bindPort 0 the UDP port is picked by the kernel
 * and TCP takes the same number, which another process may hold (EADDRINUSE, seen under CI's
 * parallel files): then it tries another UDP port, as the DnsServer does.
 */
export async function fakeUpstream(host = '127.0.0.1', bindPort = 0): Promise<FakeUpstream> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fakeUpstreamOnce(host, bindPort);
    } catch (err) {
      if (bindPort !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 10) throw err;
    }
  }
}

async function fakeUpstreamOnce(host: string, bindPort: number): Promise<FakeUpstream> {
  const sock = dgram.createSocket('udp4');
  const questions: string[] = [];
  sock.on('message', (msg, rinfo) => {
    const answer = reply(msg, 'udp', questions);
    if (answer) sock.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(bindPort, host, () => (sock.off('error', reject), resolve()));
  });
  const port = sock.address().port;
  const tcp = net.createServer((conn) => {
    let buf = Buffer.alloc(0);
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const answer = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), 'tcp', questions);
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (answer) conn.write(Buffer.concat([Buffer.from([answer.length >> 8, answer.length & 255]), answer]));
      }
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, host, () => (tcp.off('error', reject), resolve()));
    });
  } catch (err) {
    await new Promise<void>((r) => sock.close(() => r()));
    throw err;
  }
  const close = async (): Promise<void> => {
    await Promise.all([new Promise<void>((r) => sock.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
  };
  return { port, questions, close };
}

export interface Relay {
  port: number;
  relayed: number;
  close(): Promise<void>;
}

/** Sends each datagram to targetHost:targetPort() and relays the answer back to its sender. */
export async function relay(targetPort: () => number, host = '127.0.0.1', targetHost = '127.0.0.1', bindPort = 0): Promise<Relay> {
  const sock = dgram.createSocket('udp4');
  const state: Relay = { port: 0, relayed: 0, close: () => new Promise((r) => sock.close(() => r())) };
  sock.on('message', (msg, client) => {
    state.relayed++;
    const out = dgram.createSocket('udp4');
    const timer = setTimeout(() => out.close(), 3000);
    out.on('message', (answer) => {
      clearTimeout(timer);
      out.close();
      sock.send(answer, client.port, client.address);
    });
    out.send(msg, targetPort(), targetHost);
  });
  await new Promise<void>((r) => sock.bind(bindPort, host, () => r()));
  state.port = sock.address().port;
  return state;
}
