// Fuzzing the DNS server (src/dns): 2,000 random and 2,000 mutated packets (fast-check, seeded)
// through the pure handler, which must never throw and whose every answer must decode with the
// question it was asked; then the same kinds of packets at a running server over UDP and TCP,
// which must still answer a good query afterwards.
import t from 'tap';
import fc from 'fast-check';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { handleQuery } from '../../src/dns/handler.js';
import { buildDnsIndex } from '../../src/dns/records.js';
import { DnsServer } from '../../src/dns/server.js';
import { decode, headlessEndpoints, query, service } from '../lib/dns-fixtures.js';

const index = buildDnsIndex({
  services: [service('web', 'default', { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }] }), service('big', 'data', { clusterIP: 'None' })],
  endpoints: [headlessEndpoints('big', 'data', 40)],
});
const seeds = [
  query('web.default.svc.cluster.local', 'A'),
  query('_http._tcp.web.default.svc.cluster.local', 'SRV', { edns: 1232 }),
  query('big.data.svc.cluster.local', 'A', { edns: 4096 }),
  query('20.0.96.10.in-addr.arpa', 'PTR'),
  query('example.com', 'AAAA', { edns: 512 }),
  // a label with a '.' byte: "a.b" as one label, then cluster.local
  Buffer.concat([Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('a.b'), Buffer.from([7]), Buffer.from('cluster'), Buffer.from([5]), Buffer.from('local'), Buffer.from([0, 0, 1, 0, 1])]),
];

const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert')), { minLength: 1, maxLength: 6 })).map(([seed, edits]) => {
  let b = Buffer.from(seed);
  for (const [at, value, kind] of edits) {
    const i = at % Math.max(1, b.length);
    if (kind === 'set') b[i] = value;
    else if (kind === 'cut') b = b.subarray(0, i);
    else b = Buffer.concat([b.subarray(0, i), Buffer.from([value]), b.subarray(i)]);
  }
  return b;
});
const random = fc.uint8Array({ minLength: 0, maxLength: 600 }).map((a) => Buffer.from(a));

/** A compression pointer in the question (legal, rare): its echo is uncompressed, not byte-equal. */
function hasPointer(b: Buffer): boolean {
  for (let off = 12; off < b.length && b[off] !== 0; off += b[off] + 1) if (b[off] & 0xc0) return true;
  return false;
}

function questionEnd(b: Buffer): number {
  let off = 12;
  while (b[off] !== 0) off += b[off] + 1;
  return off + 5;
}

function checkHandler(bytes: Buffer, transport: 'udp' | 'tcp'): void {
  const r = handleQuery(bytes, transport, index);
  if (r.kind === 'answer') {
    const p = dnsPacket.decode(r.bytes);
    const echoed = p.questions?.length ? r.bytes.subarray(12, questionEnd(r.bytes)) : undefined;
    if (echoed && !hasPointer(bytes) && echoed.compare(bytes.subarray(12, 12 + echoed.length)) !== 0) {
      throw new Error('the question not echoed byte for byte');
    }
    if (!p.flag_qr) throw new Error('an answer without QR');
    if (p.id !== bytes.readUInt16BE(0)) throw new Error('the id not echoed');
    if (transport === 'udp' && r.bytes.length > 4096) throw new Error(`${r.bytes.length} bytes over UDP`);
  } else if (r.kind === 'drop' && /handler failed/.test(r.reason)) {
    throw new Error(r.reason);
  }
}

t.test('the handler on 2,000 random and 2,000 mutated packets', async (t) => {
  fc.assert(fc.property(random, (b) => checkHandler(b, 'udp')), { numRuns: 2000, seed: 16 });
  fc.assert(fc.property(mutated, fc.constantFrom('udp' as const, 'tcp' as const), (b, tr) => checkHandler(b, tr)), { numRuns: 2000, seed: 17 });
  t.pass('no throw, every answer decodes with its id');
});

t.test('a running server takes 2,000 bad packets over UDP and TCP and still answers', async (t) => {
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [], maxTcpConnections: 16 });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.address.port;
  const packets = [...fc.sample(random, { numRuns: 1000, seed: 18 }), ...fc.sample(mutated, { numRuns: 1000, seed: 19 })];
  const udp = dgram.createSocket('udp4');
  for (let i = 0; i < packets.length; i++) {
    await new Promise<void>((r) => udp.send(packets[i], port, '127.0.0.1', () => r()));
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  udp.close();
  for (let c = 0; c < 20; c++) {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const chunk = packets.slice(c * 100, c * 100 + 100).map((p) => Buffer.concat([Buffer.from([p.length >> 8, p.length & 255]), p]));
    sock.write(Buffer.concat([...chunk, Buffer.from([0xff, 0xff, 1, 2, 3])])); // and a frame that never completes
    sock.destroy();
  }
  const huge = net.connect(port, '127.0.0.1'); // the largest frame TCP can carry, then a datagram of 9,000 bytes
  huge.on('error', () => {});
  await new Promise((r) => huge.once('connect', r));
  huge.write(Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(65535, 0x41)]));
  const big = dgram.createSocket('udp4');
  await new Promise<void>((r) => big.send(Buffer.alloc(9000, 0x42), port, '127.0.0.1', () => r()));
  big.close();
  await new Promise((r) => setTimeout(r, 300));
  huge.destroy();
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => reject(new Error('no answer after the fuzzing')), 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(query('web.default.svc.cluster.local', 'A'), port, '127.0.0.1');
  });
  t.equal(decode(reply).answers?.[0].type, 'A', 'still answers');
  t.ok(server.stats.queries >= 2002, `${server.stats.queries} packets seen, ${server.stats.dropped} dropped, rcodes ${JSON.stringify(server.stats.rcodes)}`);
});
