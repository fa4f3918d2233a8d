// The server's cache of encoded index answers (src/dns/answer-cache.ts) and the fast question
// reader (src/dns/fast-parse.ts). A seeded loop over names of every kind, types, 0x20 spellings,
// ids, EDNS sizes (truncation included), OPT options, RD/CD and both transports: a server with the
// cache, warmed with another spelling and id, must give the bytes of a server without it and of
// the handler with dns-packet's full decoder. Random and mutated packets: the handler gives the same
// result with fastParse's reading as with dns-packet's. update() forgets every answer; forwarded
// answers are not kept; the bounds hold.
import t from 'tap';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import type { OptAnswer, RecordType } from 'dns-packet';
import { AnswerCache } from '../../src/dns/answer-cache.js';
import { fastParse, questionName } from '../../src/dns/fast-parse.js';
import { handleQuery, type HandlerResult } from '../../src/dns/handler.js';
import { LiveDnsIndex } from '../../src/dns/live-index.js';
import { buildDnsIndex } from '../../src/dns/records.js';
import { DnsServer, type DnsServerOptions } from '../../src/dns/server.js';
import { fakeUpstream } from '../lib/dns-fake-upstream.js';
import { decode, endpoints, headlessEndpoints, query, service } from '../lib/dns-fixtures.js';

const index = buildDnsIndex({
  services: [
    service('web', 'default', { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00::20'], ports: [{ name: 'http', port: 80 }] }),
    service('db', 'data', { clusterIP: 'None' }),
    service('empty', 'data', { clusterIP: 'None' }),
    service('big', 'data', { clusterIP: 'None' }),
    service('ext', 'default', { type: 'ExternalName', externalName: 'www.example.test' }),
    service('alias', 'default', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
    service('dangling', 'default', { type: 'ExternalName', externalName: 'gone.default.svc.cluster.local' }),
    service('self', 'default', { type: 'ExternalName', externalName: 'self.default.svc.cluster.local' }),
  ],
  endpoints: [
    endpoints('db', 'data', [{ addresses: [{ ip: '10.244.9.5', hostname: 'db-0' }], ports: [{ name: 'pg', port: 5432 }] }]),
    headlessEndpoints('big', 'data', 40, true),
  ],
});

const NAMES = [
  'web.default.svc.cluster.local', '_http._tcp.web.default.svc.cluster.local', 'db.data.svc.cluster.local', 'db-0.db.data.svc.cluster.local',
  '_pg._tcp.db.data.svc.cluster.local', 'big.data.svc.cluster.local', 'big-7.big.data.svc.cluster.local', '_http._tcp.big.data.svc.cluster.local',
  'empty.data.svc.cluster.local', 'ext.default.svc.cluster.local', 'alias.default.svc.cluster.local', 'dangling.default.svc.cluster.local',
  'self.default.svc.cluster.local', 'cluster.local', 'svc.cluster.local', 'default.svc.cluster.local', 'nope.default.svc.cluster.local',
  'dns-version.cluster.local', 'ns.dns.cluster.local', '10-244-1-5.default.pod.cluster.local', '20.0.96.10.in-addr.arpa', '5.9.244.10.in-addr.arpa',
  'example.com', 'www.example.test',
];
const TYPES: number[] = [1, 28, 33, 12, 16, 5, 6, 2, 255, 15, 257, 252, 300];
const EDNS: (number | undefined)[] = [undefined, 100, 512, 600, 900, 1232, 4096];

/** A deterministic PRNG (mulberry32): the loop is the same every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Shape {
  name: string;
  qtype: number;
  edns?: number;
  cookie: boolean;
  rd: boolean;
  cd: boolean;
}

/** The query of this shape, the name spelled by `spell`, with id. */
function build(s: Shape, spelled: string, id: number): Buffer {
  const opt: OptAnswer[] = s.edns === undefined ? [] : [{
    type: 'OPT', name: '.', udpPayloadSize: s.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false,
    options: s.cookie ? [{ code: 10, data: Buffer.from('0123456789abcdef', 'hex') }] : [],
  } as unknown as OptAnswer];
  const b = dnsPacket.encode({ type: 'query', id, flags: s.rd ? dnsPacket.RECURSION_DESIRED : 0, questions: [{ name: spelled, type: 'A', class: 'IN' }], additionals: opt });
  b.writeUInt16BE(s.qtype, 12 + spelled.length + 2);
  if (s.cd) b[3] |= 0x10;
  return b;
}

const spell = (name: string, r: () => number): string => [...name].map((c) => (r() < 0.5 ? c.toUpperCase() : c)).join('');
const pick = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)];
const bytesOf = (r: HandlerResult): Buffer | undefined => (r.kind === 'answer' ? r.bytes : undefined);
const dataOf = (a: unknown): unknown => (a as { data?: unknown }).data;
const listen = { host: '127.0.0.1', port: 0 };

t.test('cached answers are the uncached bytes: names, types, 0x20 spellings, ids, EDNS sizes, RD/CD, UDP and TCP', async (t) => {
  const opts: Partial<DnsServerOptions> = { listen, upstreams: [], loopProbe: false };
  const cached = new DnsServer(index, opts);
  const uncached = new DnsServer(index, { ...opts, answerCache: { maxEntries: 0, maxBytes: 0 } });
  const r = rng(20261203);
  let compared = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < 4000; i++) {
    const s: Shape = { name: pick(NAMES, r), qtype: pick(TYPES, r), edns: pick(EDNS, r), cookie: r() < 0.3, rd: r() < 0.7, cd: r() < 0.2 };
    const transport = r() < 0.8 ? 'udp' : 'tcp';
    // Half the time the warm-up is spelled all lowercase, so a lowercase and a mixed spelling meet.
    const first = r() < 0.5 ? s.name : spell(s.name, r);
    await cached.answer(build(s, first, Math.floor(r() * 65536)), transport);
    const spelled = r() < 0.3 ? s.name : spell(s.name, r);
    const msg = build(s, spelled, Math.floor(r() * 65536));
    const got = await cached.answer(msg, transport);
    const want = await uncached.answer(msg, transport);
    const full = bytesOf(handleQuery(msg, transport, index, { maxUdpSize: 1232, forwarding: false }));
    compared++;
    if (!got || !want || !got.equals(want) || !got.equals(full ?? Buffer.alloc(0))) {
      mismatches.push(`${JSON.stringify({ ...s, spelled, transport })}: cached ${got?.toString('hex')} uncached ${want?.toString('hex')} full ${full?.toString('hex')}`);
    }
  }
  t.equal(compared, 4000);
  t.same(mismatches.slice(0, 3), [], 'every cached answer is the uncached and the fully decoded one, byte for byte');
  const st = cached.answerCacheStats;
  t.ok(st.hits > 1500, `most second askings are hits (${st.hits} hits, ${st.misses} misses, ${st.entries} entries)`);
  t.equal(uncached.answerCacheStats.stored, 0, 'maxEntries 0: nothing kept');
  t.equal(cached.stats.queries, uncached.stats.queries * 2, 'every query counted');
  t.equal(cached.stats.dropped, 0);
  t.equal(cached.stats.truncated, uncached.stats.truncated * 2, 'truncated answers counted on hits too');
  t.ok(uncached.stats.truncated > 0, 'the loop had truncated answers');
  for (const [rcode, n] of Object.entries(uncached.stats.rcodes)) t.equal(cached.stats.rcodes[rcode], n * 2, `${rcode} counted on hits too`);
});

t.test('a hit carries the query\'s id and spelling, and the spelling also where the answer repeats it', async (t) => {
  const server = new DnsServer(index, { listen, upstreams: [], loopProbe: false });
  await server.answer(query('web.default.svc.cluster.local', 'A', { id: 1 }), 'udp');
  const hit = await server.answer(query('wEb.DeFault.svc.CLUSTER.local', 'A', { id: 777 }), 'udp');
  t.equal(server.answerCacheStats.hits, 0, 'a lowercase and a mixed spelling are different entries');
  const again = await server.answer(query('WEB.default.SVC.cluster.LOCAL', 'A', { id: 778 }), 'udp');
  t.equal(server.answerCacheStats.hits, 1);
  const p = decode(again!);
  t.equal(p.id, 778);
  t.equal(p.questions?.[0].name, 'WEB.default.SVC.cluster.LOCAL');
  t.equal(p.answers?.[0].name, 'WEB.default.SVC.cluster.LOCAL', 'the answer\'s owner points at the question');
  t.equal(decode(hit!).id, 777);
});

t.test('update() forgets every answer: no stale answer after a change', async (t) => {
  const live = new LiveDnsIndex();
  live.setService(service('web', 'default', { clusterIP: '10.96.0.20' }));
  const server = new DnsServer(live.snapshot(), { listen, upstreams: [], loopProbe: false });
  const ask = async (id: number) => decode((await server.answer(query('web.default.svc.cluster.local', 'A', { id }), 'udp'))!);
  t.same((await ask(1)).answers?.map(dataOf), ['10.96.0.20']);
  t.same((await ask(2)).answers?.map(dataOf), ['10.96.0.20']);
  t.equal(server.answerCacheStats.hits, 1, 'the second was a hit');
  live.setService(service('web', 'default', { clusterIP: '10.96.0.21' }));
  server.update(live.snapshot());
  t.equal(server.answerCacheStats.entries, 0, 'emptied');
  t.same((await ask(3)).answers?.map(dataOf), ['10.96.0.21'], 'the new address at once');
  live.deleteService(service('web', 'default', {}));
  server.update(live.snapshot());
  t.equal((await ask(4)).rcode, 'NXDOMAIN', 'deleted: NXDOMAIN, not the cached address');
  live.setService(service('web', 'default', { clusterIP: '10.96.0.22' }));
  server.update(live.snapshot());
  t.same((await ask(5)).answers?.map(dataOf), ['10.96.0.22'], 'created again: not the cached NXDOMAIN');
});

t.test('forwarded answers are not kept (the forwarder has its own cache); CNAME-only answers without forwarding are', async (t) => {
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  const server = new DnsServer(index, { listen, upstreams: [{ host: '127.0.0.1', port: upstream.port }], loopProbe: false });
  for (const id of [1, 2]) {
    const out = decode((await server.answer(query('www.example.test', 'A', { id }), 'udp'))!);
    t.same(out.answers?.map(dataOf), ['192.0.2.53']);
    const ext = decode((await server.answer(query('ext.default.svc.cluster.local', 'A', { id }), 'udp'))!);
    t.same(ext.answers?.map(dataOf), ['www.example.test', '192.0.2.53'], 'the CNAME, then the upstream\'s A');
  }
  t.equal(server.answerCacheStats.stored, 0, 'nothing forwarded was kept');
  const noRd = await server.answer(query('ext.default.svc.cluster.local', 'A', { id: 3, rd: false }), 'udp');
  const noRdAgain = await server.answer(query('ext.default.svc.cluster.local', 'A', { id: 3, rd: false }), 'udp');
  t.same(decode(noRd!).answers?.map(dataOf), ['www.example.test'], 'no RD: the CNAME alone, from the index');
  t.same(noRdAgain, noRd);
  t.equal(server.answerCacheStats.hits, 1, 'and that one is kept');
  // Without upstreams (all refused as loops, say) the RD question gets the CNAME alone, from the
  // index, and that is kept; with them again it must be forwarded, not answered from that entry.
  const upstreams = server.forwarder.upstreams;
  server.forwarder.upstreams = [];
  t.same(decode((await server.answer(query('ext.default.svc.cluster.local', 'A', { id: 4 }), 'udp'))!).answers?.map(dataOf), ['www.example.test']);
  server.forwarder.upstreams = upstreams;
  t.same(decode((await server.answer(query('ext.default.svc.cluster.local', 'A', { id: 5 }), 'udp'))!).answers?.map(dataOf), ['www.example.test', '192.0.2.53'], 'forwarding again: forwarded');
});

t.test('bounded by entries and bytes; the oldest name not hit since goes first (second chance)', async (t) => {
  const c = new AnswerCache({ maxEntries: 3, maxBytes: 1 << 20 });
  const names = ['a.cluster.local', 'b.cluster.local', 'c.cluster.local', 'd.cluster.local'];
  const answerTo = (msg: Buffer, name: string) => ({ bytes: msg, rcode: 'NOERROR' as const, truncated: false, qname: name, qtype: 'A' });
  const put = (name: string, code = 1) => {
    const msg = query(name, 'A');
    t.ok(c.store(fastParse(msg)!, code, msg, answerTo(msg, name)), `${name} stored`);
  };
  const get = (name: string, code = 1) => {
    const msg = query(name, 'A', { id: 99 });
    return c.answer(fastParse(msg)!, code, msg);
  };
  put(names[0]);
  put(names[1]);
  put(names[2]);
  t.ok(get(names[0]), 'a hit: it gets a second chance');
  t.notOk(get(names[0], 2), 'another code of the same name: a miss');
  put(names[3]);
  t.equal(c.stats.entries, 3);
  t.notOk(get(names[1]), 'b, the oldest not hit, went');
  t.ok(get(names[0]) && get(names[2]) && get(names[3]));
  t.equal(get(names[3])?.bytes.readUInt16BE(0), 99, 'made out to the query\'s id');
  put(names[3], 2);
  t.equal(c.stats.entries, 3, 'a second code under one name counts as an entry');
  t.ok(get(names[3], 1) && get(names[3], 2), 'both codes of d');
  const small = new AnswerCache({ maxEntries: 100, maxBytes: 700 });
  for (const n of names) {
    const msg = query(n, 'A');
    small.store(fastParse(msg)!, 1, msg, answerTo(msg, n));
  }
  t.ok(small.stats.bytes <= 700 && small.stats.entries === 2, `the byte bound (${small.stats.entries} entries, ${small.stats.bytes} bytes)`);
  const asked = query('x.cluster.local', 'A', { id: 9 });
  t.notOk(c.store(fastParse(asked)!, 1, asked, answerTo(query('y.cluster.local', 'A', { id: 9 }), 'x')), 'an answer whose question is not the query\'s bytes is not kept');
  t.notOk(c.store(fastParse(asked)!, 1, asked, answerTo(query('x.cluster.local', 'A', { id: 10 }), 'x')), 'nor one with another id');
  c.clear();
  t.same([c.stats.entries, c.stats.bytes, get(names[0])], [0, 0, undefined], 'clear() empties it');
});

/** The handler's result with fastParse's reading of the packet equals its result with dns-packet's (or fastParse declined). */
function sameEitherWay(msg: Buffer): boolean {
  const fast = fastParse(msg);
  if (!fast) return true;
  const decoded = dnsPacket.decode(msg);
  const q = decoded.questions?.[0];
  const opt = decoded.additionals?.find((a): a is OptAnswer => a.type === 'OPT');
  if (decoded.questions?.length !== 1 || q?.name !== questionName(msg, fast) || q.type !== fast.qtypeName || q.class !== 'IN') return false;
  if (opt?.udpPayloadSize !== fast.opt?.udpPayloadSize || opt?.ednsVersion !== fast.opt?.ednsVersion) return false;
  for (const transport of ['udp', 'tcp'] as const) {
    for (const forwarding of [false, true]) {
      const a = handleQuery(msg, transport, index, { maxUdpSize: 1232, forwarding });
      const b = handleQuery(msg, transport, index, { maxUdpSize: 1232, forwarding }, fast);
      if (JSON.stringify(a) !== JSON.stringify(b)) return false;
    }
  }
  return true;
}

t.test('fastParse reads what dns-packet reads, or declines: random and mutated packets', async (t) => {
  const seeds = [
    query('web.default.svc.cluster.local', 'A'), query('_http._tcp.web.default.svc.cluster.local', 'SRV', { edns: 1232 }),
    query('big.data.svc.cluster.local', 'A', { edns: 4096 }), query('20.0.96.10.in-addr.arpa', 'PTR'), query('example.com', 'AAAA', { edns: 512, ednsVersion: 1 }),
    build({ name: 'db.data.svc.cluster.local', qtype: 33, edns: 1232, cookie: true, rd: true, cd: true }, 'Db.data.svc.cluster.local', 7),
  ];
  let accepted = 0;
  // Bytes that keep a packet plausible half the time (name bytes, counts, lengths, a pointer), else any byte.
  const byte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, 2, 0x10, 0x29, 0x2d, 0x30, 0x41, 0x5a, 0x5f, 0x61, 0x7a, 63, 64, 0xc0));
  const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), byte, fc.constantFrom('set', 'set', 'cut', 'insert')), { minLength: 1, maxLength: 3 })).map(([seed, edits]) => {
    let b = Buffer.from(seed);
    for (const [at, byte, how] of edits) {
      const i = at % (b.length + 1);
      if (how === 'set' && i < b.length) b[i] = byte;
      else if (how === 'cut') b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
      else b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
    }
    return b;
  });
  fc.assert(fc.property(mutated, (msg) => {
    if (fastParse(msg)) accepted++;
    return sameEitherWay(msg);
  }), { seed: 16, numRuns: 6000 });
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }).map((a) => Buffer.from(a)), sameEitherWay), { seed: 17, numRuns: 2000 });
  t.ok(accepted > 300, `mutated packets the fast reader took, each compared (${accepted})`);
  for (const s of seeds) t.ok(fastParse(s), 'every seed is the common case');
  t.notOk(fastParse(Buffer.concat([seeds[0], Buffer.from([0])])), 'a byte after the question: the full decoder');
  const twoQuestions = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'a.cluster.local', type: 'A' }, { name: 'b.cluster.local', type: 'A' }] });
  t.notOk(fastParse(twoQuestions), 'two questions: the full decoder (FORMERR)');
  const ecs = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'a.cluster.local', type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: '192.0.2.0' }] } as unknown as OptAnswer] });
  t.notOk(fastParse(ecs), 'an ECS option: dns-packet decodes it, so it decides');
  t.equal(fastParse(query('web.default.svc.cluster.local', 'ANY' as RecordType))?.qtypeName, 'ANY');
});
