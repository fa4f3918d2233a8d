// The Node side of the DNS tests' client, run inside the client network namespace
// (`ip netns exec pw-... node dns-client-child.js '<json>'`), one JSON command in argv[2], JSON
// lines out:
// - {"op":"resolve","server":IP,"queries":[[method,name],...]}: Node's dns.promises.Resolver
//   (c-ares) with setServers([server]); one line {"results":[{"value":...}|{"code":"ENOTFOUND"}]}.
// - {"op":"lookup","names":[...]}: dns.promises.lookup({all:true}) (getaddrinfo, the netns's
//   /etc/resolv.conf); {"results":[{"value":[addresses]}|{"code":...}]}.
// - {"op":"poll","server":IP,"name":N,"until":"present"|"absent","timeoutMs":T,"intervalMs":I}:
//   resolve4 N until it resolves (present) or is ENOTFOUND (absent): {"polling":true,"state":...}
//   once the first answer is in, then {"at":<Date.now() when seen>,"polls":K,"state":...} or
//   {"timeout":true}.
// - {"op":"fuzz","server":IP,"port":P,"seed":S,"udp":N,"tcp":M}: N random and mutated datagrams
//   over UDP (paced), M as length-prefixed frames over TCP (100 per connection, each connection
//   ending in a frame that never completes, then our FIN), then one 65,535-byte frame and one 9,000-byte datagram;
//   {"sent":{"udp":N,"tcp":M},"replies":R}.
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { query } from './dns-fixtures.js';
import { mulberry32 } from './prng.js';

const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Cmd = Record<string, unknown>;

const METHODS = ['resolve4', 'resolve6', 'resolveSrv', 'resolveTxt', 'resolveCname', 'resolvePtr', 'resolveSoa', 'reverse'] as const;
type Method = (typeof METHODS)[number];

function resolver(server: unknown): dns.promises.Resolver {
  if (typeof server !== 'string') throw new Error('"server": want the DNS server\'s IP address');
  const r = new dns.promises.Resolver({ timeout: 1000, tries: 2 });
  r.setServers([server]);
  return r;
}

async function outcome(p: Promise<unknown>): Promise<{ value: unknown } | { code: string }> {
  try {
    return { value: await p };
  } catch (err) {
    return { code: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}

async function resolveAll(cmd: Cmd): Promise<void> {
  const r = resolver(cmd.server);
  if (!Array.isArray(cmd.queries)) throw new Error('"queries": want [[method, name], ...]');
  const results = [];
  for (const q of cmd.queries as unknown[]) {
    const [method, name] = Array.isArray(q) ? q : [];
    if (!METHODS.includes(method as Method) || typeof name !== 'string') throw new Error(`query ${JSON.stringify(q)}: want [one of ${METHODS.join(', ')}, name]`);
    results.push(await outcome((r[method as Method] as (n: string) => Promise<unknown>).call(r, name)));
  }
  say({ results });
}

async function lookupAll(cmd: Cmd): Promise<void> {
  if (!Array.isArray(cmd.names)) throw new Error('"names": want an array of names');
  const results = [];
  for (const name of cmd.names as unknown[]) results.push(await outcome(dns.promises.lookup(String(name), { all: true }).then((as) => as.map((a) => a.address))));
  say({ results });
}

async function poll(cmd: Cmd): Promise<void> {
  const r = resolver(cmd.server);
  const name = String(cmd.name);
  const until = cmd.until === 'absent' ? 'absent' : 'present';
  const timeoutMs = Number(cmd.timeoutMs ?? 3000);
  const intervalMs = Number(cmd.intervalMs ?? 10);
  const state = async () => {
    const o = await outcome(r.resolve4(name));
    return 'value' in o ? { present: true, value: o.value } : { present: false, code: o.code };
  };
  say({ polling: true, state: await state() });
  const deadline = Date.now() + timeoutMs;
  for (let polls = 1; Date.now() < deadline; polls++) {
    const s = await state();
    if (s.present === (until === 'present')) {
      say({ at: Date.now(), polls, state: s });
      return;
    }
    await sleep(intervalMs);
  }
  say({ timeout: true });
}

const SEEDS = [
  query('web.default.svc.cluster.local', 'A'),
  query('_http._tcp.web.default.svc.cluster.local', 'SRV', { edns: 1232 }),
  query('big.data.svc.cluster.local', 'A', { edns: 4096 }),
  query('20.0.96.10.in-addr.arpa', 'PTR'),
  query('www.example.test', 'AAAA', { edns: 512 }),
  query('dns-version.cluster.local', 'TXT'),
];

function packets(seed: number, n: number): Buffer[] {
  const rnd = mulberry32(seed);
  const int = (max: number) => Math.floor(rnd() * max);
  return Array.from({ length: n }, (_, i) => {
    if (i % 2 === 0) return Buffer.from(Array.from({ length: int(600) }, () => int(256)));
    let b = Buffer.from(SEEDS[int(SEEDS.length)]!);
    for (let e = 1 + int(6); e > 0; e--) {
      const at = int(Math.max(1, b.length));
      const kind = int(3);
      if (kind === 0) b[at] = int(256);
      else if (kind === 1) b = b.subarray(0, at);
      else b = Buffer.concat([b.subarray(0, at), Buffer.from([int(256)]), b.subarray(at)]);
    }
    return b;
  });
}

const frame = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);

async function fuzz(cmd: Cmd): Promise<void> {
  const host = String(cmd.server);
  const port = Number(cmd.port ?? 53);
  const seed = Number(cmd.seed ?? 1);
  const nUdp = Number(cmd.udp ?? 0);
  const nTcp = Number(cmd.tcp ?? 0);
  let replies = 0;
  const udp = dgram.createSocket('udp4');
  udp.on('message', () => replies++);
  const sent = packets(seed, nUdp);
  for (let i = 0; i < sent.length; i++) {
    await new Promise<void>((r) => udp.send(sent[i]!, port, host, () => r()));
    if (i % 10 === 0) await sleep(1); // paced: a burst beyond the socket buffers would be dropped by the kernel, not fuzz the server
  }
  const tcp = packets(seed + 1, nTcp);
  for (let c = 0; c * 100 < tcp.length; c++) {
    const sock = net.connect(port, host);
    sock.on('error', () => {});
    sock.on('data', () => {});
    await new Promise((r) => sock.once('connect', r));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.end(Buffer.concat([...tcp.slice(c * 100, c * 100 + 100).map(frame), Buffer.from([0xff, 0xff, 1, 2, 3])]));
    await Promise.race([closed, sleep(2000)]); // the server reads it all, then closes on our FIN
    sock.destroy();
  }
  const huge = net.connect(port, host);
  huge.on('error', () => {});
  await new Promise((r) => huge.once('connect', r));
  huge.write(Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(65535, 0x41)]));
  await new Promise<void>((r) => udp.send(Buffer.alloc(9000, 0x42), port, host, () => r()));
  await sleep(300);
  huge.destroy();
  udp.close();
  say({ sent: { udp: nUdp, tcp: nTcp }, replies });
}

const OPS: Record<string, (cmd: Cmd) => Promise<void>> = { resolve: resolveAll, lookup: lookupAll, poll, fuzz };

async function main(): Promise<void> {
  let cmd: unknown;
  try {
    cmd = JSON.parse(process.argv[2] ?? '');
  } catch {
    throw new Error(`argv[2]: want one JSON command, one of ${Object.keys(OPS).join(', ')}`);
  }
  const op = typeof cmd === 'object' && cmd !== null ? OPS[String((cmd as Cmd).op)] : undefined;
  if (!op) throw new Error(`"op": want one of ${Object.keys(OPS).join(', ')}, got ${JSON.stringify(cmd)}`);
  await op(cmd as Cmd);
}

main().catch((err: Error) => {
  say({ error: err.message });
  process.exit(1);
});
