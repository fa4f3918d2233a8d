// The DNS server (src/dns/server.ts) on 127.0.0.1, port 0, queried with dig (bind9-dnsutils) over
// UDP and TCP: records, truncation then TCP for a 40-endpoint headless service, forwarding to a
// fake upstream (cache, NXDOMAIN, SERVFAIL when it is gone), an index update, loops refused
// (our own address; a loopback relay leading back to us), TCP pipelining and idle timeout.
import t from 'tap';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { promisify } from 'node:util';
import { buildDnsIndex } from '../../src/dns/records.js';
import { DnsServer } from '../../src/dns/server.js';
import { fakeUpstream, relay } from '../lib/dns-fake-upstream.js';
import { decode, headlessEndpoints, query, service } from '../lib/dns-fixtures.js';

const run = promisify(execFile);
const haveDig = await run('dig', ['-v']).then(() => true, () => false);

const index = buildDnsIndex({
  services: [
    service('web', 'default', { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }] }),
    service('big', 'data', { clusterIP: 'None' }),
    service('ext', 'default', { type: 'ExternalName', externalName: 'www.example.test' }),
  ],
  endpoints: [headlessEndpoints('big', 'data', 40)],
});

async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args]);
  return stdout;
}
const status = (out: string): string | undefined => /status: (\w+)/.exec(out)?.[1];
const answers = (out: string): number => Number(/ANSWER: (\d+)/.exec(out)?.[1] ?? -1);

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

t.test('dig over UDP and TCP, truncation then TCP, forwarding, update', { skip: !haveDig && 'dig not installed (bind9-dnsutils; scripts/bootstrap installs it)' }, async (t) => {
  const upstream = await fakeUpstream();
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: upstream.port }] });
  await server.start();
  t.teardown(async () => {
    await server.stop();
    await upstream.close();
  });
  const port = server.address.port;
  t.equal(await dig(port, '+short', 'web.default.svc.cluster.local', 'A'), '10.96.0.20\n', 'UDP A');
  t.equal(await dig(port, '+tcp', '+short', 'WEB.default.svc.cluster.local', 'A'), '10.96.0.20\n', 'TCP A, any case');
  t.equal(await dig(port, '+short', '_http._tcp.web.default.svc.cluster.local', 'SRV'), '0 100 80 web.default.svc.cluster.local.\n', 'SRV');
  t.equal(await dig(port, '+short', '-x', '10.96.0.20'), 'web.default.svc.cluster.local.\n', 'PTR');
  t.equal(await dig(port, '+short', 'dns-version.cluster.local', 'TXT'), '"1.1.0"\n', 'TXT');
  const nx = await dig(port, 'nope.default.svc.cluster.local');
  t.equal(status(nx), 'NXDOMAIN');
  t.match(nx, /AUTHORITY: 1/, 'with the SOA');
  const nodata = await dig(port, 'web.default.svc.cluster.local', 'TXT');
  t.same([status(nodata), answers(nodata)], ['NOERROR', 0], 'NODATA');
  const big = await dig(port, '+noedns', 'big.data.svc.cluster.local', 'A');
  t.match(big, /Truncated, retrying in TCP mode/, 'UDP answer truncated at 512 bytes …');
  t.equal(answers(big), 40, '… and dig gets all 40 over TCP');
  const ignored = await dig(port, '+noedns', '+ignore', 'big.data.svc.cluster.local', 'A');
  t.match(ignored, /flags: qr aa tc rd ra/, 'TC set on the UDP answer');
  t.equal(answers(await dig(port, '+bufsize=1232', '+ignore', 'big.data.svc.cluster.local', 'A')), 40, 'EDNS 1232: all 40 fit in UDP');
  t.equal(await dig(port, '+short', 'www.example.test', 'A'), '192.0.2.53\n', 'forwarded');
  await dig(port, '+short', 'WWW.example.test', 'A');
  t.equal(upstream.questions.filter((q) => /^www\.example\.test A udp$/i.test(q)).length, 1, 'the second one from the cache');
  t.equal(answers(await dig(port, '+bufsize=1232', '+ignore', 'big.example.test', 'A')), 60, 'upstream TC over UDP: asked again over TCP, 60 A records fit our 1232-byte UDP answer');
  t.same(upstream.questions.filter((q) => q.startsWith('big.example.test')), ['big.example.test A udp', 'big.example.test A tcp'], 'the upstream saw UDP then TCP');
  const bigPlain = await dig(port, '+noedns', 'big.example.test', 'A');
  t.match(bigPlain, /Truncated, retrying in TCP mode/, 'no EDNS: our answer truncated at 512 …');
  t.equal(answers(bigPlain), 60, '… and all 60 over TCP, from the cache');
  t.equal(await dig(port, '+short', 'ext.default.svc.cluster.local', 'A'), 'www.example.test.\n192.0.2.53\n', 'ExternalName: CNAME, then the target forwarded');
  t.equal(status(await dig(port, 'nx.example.test', 'A')), 'NXDOMAIN', 'upstream NXDOMAIN relayed');
  t.equal(status(await dig(port, '+norecurse', 'www.example.test', 'A')), 'REFUSED', 'outside the zone without RD');
  t.equal(status(await dig(port, 'cluster.local', 'AXFR')), undefined, 'AXFR …');
  t.match(await dig(port, '+tcp', 'cluster.local', 'AXFR'), /Transfer failed|REFUSED/, '… refused');
  server.update(buildDnsIndex({ services: [service('new', 'default', { clusterIP: '10.96.0.30' })], endpoints: [] }));
  t.equal(await dig(port, '+short', 'new.default.svc.cluster.local'), '10.96.0.30\n', 'after update: the new service');
  t.equal(status(await dig(port, 'web.default.svc.cluster.local')), 'NXDOMAIN', 'after update: the old one gone');
  await upstream.close();
  const gone = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: upstream.port }], upstreamTimeoutMs: 300, loopProbe: false });
  await gone.start();
  t.teardown(() => gone.stop());
  t.equal(status(await dig(gone.address.port, 'down.example.test')), 'SERVFAIL', 'the upstream gone: SERVFAIL');
  upstream.close = async () => {}; // closed above, for the SERVFAIL case
});

t.test('loops: our own address refused; a loopback relay leading back to us found by the probe', async (t) => {
  const port = await freePort();
  const self = new DnsServer(index, { listen: { host: '127.0.0.1', port }, upstreams: [{ host: '127.0.0.1', port }] });
  await self.start();
  t.teardown(() => self.stop());
  t.match(self.loops, [/upstream 127\.0\.0\.1:\d+ refused: it is this server's own listen address/]);
  t.same(self.forwarder.upstreams, [], 'not forwarded to');
  let server: DnsServer | undefined;
  const stub = await relay(() => server?.address.port ?? 9);
  const upstream = await fakeUpstream();
  server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: stub.port }, { host: '127.0.0.1', port: upstream.port }], upstreamTimeoutMs: 500 });
  await server.start();
  t.teardown(async () => {
    await server?.stop();
    await stub.close();
    await upstream.close();
  });
  t.match(server.loops, [new RegExp(`upstream 127\\.0\\.0\\.1:${stub.port} sent our loop probe [0-9a-f]+\\.[0-9a-f]+\\.loop-probe\\.podwire\\.invalid back to this server`)]);
  t.same(server.forwarder.upstreams, [{ host: '127.0.0.1', port: upstream.port }], 'the relay removed, the real upstream kept');
  const before = stub.relayed;
  const reply = await udpQuery(server.address.port, query('www.example.test', 'A'));
  t.equal(decode(reply).answers?.[0].type, 'A', 'forwarded to the real upstream');
  t.equal(stub.relayed, before, 'nothing more through the loop');
});

t.test('loops: two servers forwarding to each other; the second one started finds it', async (t) => {
  const [portA, portB] = [await freePort(), await freePort()];
  const b = new DnsServer(index, { listen: { host: '127.0.0.1', port: portB }, upstreams: [{ host: '127.0.0.1', port: portA }], loopProbeTimeoutMs: 300, upstreamTimeoutMs: 300 });
  await b.start(); // A is not up yet: B's probe is lost, B finds nothing
  const a = new DnsServer(index, { listen: { host: '127.0.0.1', port: portA }, upstreams: [{ host: '127.0.0.1', port: portB }], upstreamTimeoutMs: 1000 });
  await a.start();
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  t.same(b.loops, [], 'B: its probe went nowhere');
  t.match(a.loops, [new RegExp(`upstream 127\\.0\\.0\\.1:${portB} sent our loop probe`)], 'A: its probe came back through B');
  t.same(a.forwarder.upstreams, [], 'A no longer forwards to B');
  const reply = decode(await udpQuery(portB, query('www.example.test', 'A')));
  t.equal(reply.rcode, 'SERVFAIL', 'B → A → (no upstream left: REFUSED) → B answers SERVFAIL, no endless ping-pong');
});

function udpQuery(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no UDP answer in 2 s'));
    }, 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(bytes, port, '127.0.0.1');
  });
}

t.test('TCP: pipelined queries on one connection, malformed ones among them; idle timeout', async (t) => {
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [], tcpIdleMs: 300 });
  await server.start();
  t.teardown(() => server.stop());
  const sock = net.connect(server.address.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const frame = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
  const garbage = Buffer.from([0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]); // a header, then no question
  sock.write(Buffer.concat([frame(query('web.default.svc.cluster.local', 'A', { id: 1 })), frame(garbage), frame(query('big.data.svc.cluster.local', 'A', { id: 3 })), frame(Buffer.alloc(0))]));
  const replies = await new Promise<Buffer[]>((resolve) => {
    let buf = Buffer.alloc(0);
    const got: Buffer[] = [];
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        got.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (got.length === 3) resolve(got);
    });
  });
  const byId = new Map(replies.map((r) => [decode(r).id, decode(r)]));
  t.equal(byId.get(1)?.answers?.length, 1, 'first query answered');
  t.equal(byId.get(3)?.answers?.length, 40, 'third: all 40 over TCP');
  t.equal(byId.get(2)?.rcode, 'FORMERR', 'the malformed one: FORMERR; the empty frame: nothing');
  const closed = await new Promise<boolean>((r) => {
    const timer = setTimeout(() => r(false), 2000);
    sock.once('close', () => {
      clearTimeout(timer);
      r(true);
    });
  });
  t.ok(closed, 'an idle connection is closed after tcpIdleMs');
});

t.test('bounds: forwarded questions in flight, log lines per interval', async (t) => {
  const silent = dgram.createSocket('udp4'); // an upstream that never answers
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  const lines: string[] = [];
  const sink = { warn: (_o: unknown, m: string) => lines.push(m), info: (_o: unknown, m: string) => lines.push(m) };
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: silent.address().port }], upstreamTimeoutMs: 1500, maxForwarding: 1, loopProbe: false, log: sink, logLines: 5, logIntervalMs: 60_000 });
  await server.start();
  t.teardown(async () => {
    await server.stop();
    silent.close();
  });
  const port = server.address.port;
  const slow = udpQuery(port, query('slow.example.test', 'A', { id: 1 }));
  const started = Date.now();
  const second = decode(await udpQuery(port, query('other.example.test', 'A', { id: 2 })));
  t.equal(second.rcode, 'SERVFAIL', 'the second forwarded question while one is in flight: SERVFAIL …');
  t.ok(Date.now() - started < 1000, '… at once, not after the timeout');
  t.equal(decode(await slow).rcode, 'SERVFAIL', 'the first: SERVFAIL after the upstream timed out');
  lines.length = 0;
  const flood = dgram.createSocket('udp4');
  for (let i = 0; i < 50; i++) await new Promise<void>((r) => flood.send(Buffer.alloc(3), port, '127.0.0.1', () => r()));
  flood.close();
  await udpQuery(port, query('web.default.svc.cluster.local', 'A'));
  t.ok(lines.length <= 5, `50 dropped packets: ${lines.length} log lines (at most 5 per interval)`);
  t.ok(server.stats.dropped >= 50, 'all 50 counted as dropped');
});

t.test('TCP connections are bounded', async (t) => {
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [], maxTcpConnections: 2 });
  await server.start();
  t.teardown(() => server.stop());
  const open = async () => {
    const s = net.connect(server.address.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    return s;
  };
  const socks = [await open(), await open(), await open()];
  const closed = await new Promise<boolean>((r) => {
    const timer = setTimeout(() => r(false), 1000);
    socks[2].once('close', () => {
      clearTimeout(timer);
      r(true);
    });
  });
  t.ok(closed, 'the third connection is closed by the server');
  t.notOk(socks[0].destroyed, 'the first two stay');
  socks.forEach((s) => s.destroy());
});
