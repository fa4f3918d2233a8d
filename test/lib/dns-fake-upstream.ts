// A fake upstream resolver on a loopback port for the DNS server's tests: UDP (and TCP) answering
// `<anything>.example.test` A 192.0.2.53, `nx.example.test` NXDOMAIN with an SOA, and counting
// the questions it got. Also a relay ("stub resolver") that sends every datagram on to another
// port and the answer back: the loopback stub of a forwarding loop.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

export interface FakeUpstream {
  port: number;
  questions: string[];
  close(): Promise<void>;
}

export async function fakeUpstream(): Promise<FakeUpstream> {
  const sock = dgram.createSocket('udp4');
  const questions: string[] = [];
  sock.on('message', (msg, rinfo) => {
    let q;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    questions.push(`${question.name} ${question.type}`);
    const nx = question.name.toLowerCase() === 'nx.example.test';
    const known = question.name.toLowerCase().endsWith('example.test');
    const reply = dnsPacket.encode({
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (nx || !known ? 3 : 0), questions: q.questions,
      answers: nx || !known || question.type !== 'A' ? [] : [{ type: 'A', name: question.name, ttl: 60, data: '192.0.2.53' }],
      authorities: nx || !known ? [{ type: 'SOA', name: 'example.test', ttl: 60, data: { mname: 'ns.example.test', rname: 'h.example.test', minimum: 60 } }] : [],
    });
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { port: sock.address().port, questions, close: () => new Promise((r) => sock.close(() => r())) };
}

export interface Relay {
  port: number;
  relayed: number;
  close(): Promise<void>;
}

/** Sends each datagram to 127.0.0.1:targetPort() and relays the answer back to its sender. */
export async function relay(targetPort: () => number): Promise<Relay> {
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
    out.send(msg, targetPort(), '127.0.0.1');
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  state.port = sock.address().port;
  return state;
}
