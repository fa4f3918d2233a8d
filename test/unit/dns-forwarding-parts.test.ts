// The pure parts of DNS forwarding (src/dns): resolv.conf and upstream parsing, the answer cache
// (LRU bound, positive by min TTL, negative by the SOA, caps, aging), the loop's static check, the
// rate-bounded log, and the forwarder's fail-over over a fake transport.
import t from 'tap';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import { DnsCache, cacheLifetime, DEFAULT_CACHE_OPTIONS } from '../../src/dns/cache.js';
import { Forwarder, type UpstreamTransport } from '../../src/dns/forwarder.js';
import type { UpstreamAnswer } from '../../src/dns/handler.js';
import { selfLoop } from '../../src/dns/loop.js';
import { RateLimitedLog } from '../../src/dns/rate-log.js';
import { parseResolvConf, parseUpstream, type Upstream } from '../../src/dns/resolv-conf.js';

t.test('parseResolvConf', async (t) => {
  const conf = parseResolvConf('# generated\nnameserver 10.0.0.2\nnameserver  fd00::53 ; comment\nnameserver fe80::1%eth0\nnameserver 010.0.0.1\nsearch a.example b.example\noptions ndots:5\nnameserver 127.0.0.53\n');
  t.same(conf.nameservers, [{ host: '10.0.0.2', port: 53 }, { host: 'fd00::53', port: 53 }, { host: '127.0.0.53', port: 53 }]);
  t.same(conf.search, ['a.example', 'b.example']);
  t.equal(conf.skipped.length, 2);
  t.match(conf.skipped[0], /^line 4: nameserver "fe80::1%eth0" is not one IP address/);
  t.match(conf.skipped[1], /^line 5: /);
  t.same(parseResolvConf('').nameservers, []);
});

t.test('parseUpstream', async (t) => {
  t.same(parseUpstream('10.0.0.2'), { host: '10.0.0.2', port: 53 });
  t.same(parseUpstream('10.0.0.2:5353'), { host: '10.0.0.2', port: 5353 });
  t.same(parseUpstream('[FD00::2]:54'), { host: 'fd00::2', port: 54 });
  t.same(parseUpstream('fd00::2'), { host: 'fd00::2', port: 53 });
  t.equal(parseUpstream('10.0.0.2:0'), undefined);
  t.equal(parseUpstream('dns.example'), undefined);
});

const a = (ttl: number): Answer => ({ type: 'A', name: 'x.example', ttl, data: '192.0.2.1' });
const soa = (ttl: number, minimum: number): Answer => ({ type: 'SOA', name: 'example', ttl, data: { mname: 'ns', rname: 'h', minimum } });
const pos = (...ttls: number[]): UpstreamAnswer => ({ rcode: 'NOERROR', answers: ttls.map(a), authorities: [], additionals: [] });
const neg = (rcode: 'NXDOMAIN' | 'NOERROR', s?: Answer): UpstreamAnswer => ({ rcode, answers: [], authorities: s ? [s] : [], additionals: [] });

t.test('cacheLifetime', async (t) => {
  const o = DEFAULT_CACHE_OPTIONS;
  t.equal(cacheLifetime(pos(60, 20, 90), o), 20, 'positive: the smallest TTL');
  t.equal(cacheLifetime(pos(86400), o), 300, 'positive: capped');
  t.equal(cacheLifetime(neg('NXDOMAIN', soa(900, 10)), o), 10, 'NXDOMAIN: SOA minimum');
  t.equal(cacheLifetime(neg('NOERROR', soa(8, 60)), o), 8, 'NODATA: the SOA TTL when smaller');
  t.equal(cacheLifetime(neg('NXDOMAIN', soa(3600, 3600)), o), 30, 'negative: capped at 30 s');
  t.equal(cacheLifetime(neg('NXDOMAIN'), o), 0, 'negative without SOA: not kept');
  t.equal(cacheLifetime({ ...pos(60), rcode: 'SERVFAIL' }, o), 0, 'SERVFAIL: not kept');
});

t.test('DnsCache: aging, expiry, LRU bound, case-insensitive keys', async (t) => {
  let now = 1_000_000;
  const cache = new DnsCache({ maxEntries: 2, maxTtl: 300, maxNegativeTtl: 30 }, () => now);
  const q = (name: string) => ({ name, type: 'A' as const, class: 'IN' as const });
  cache.put(q('a.example'), pos(60));
  now += 10_500;
  const got = cache.get(q('A.Example.'));
  t.equal(got?.answers[0].type === 'A' && got.answers[0].ttl, 50, 'aged by 10 s, found case-insensitively');
  now += 50_000;
  t.equal(cache.get(q('a.example')), undefined, 'expired after 60 s');
  cache.put(q('a.example'), pos(60));
  cache.put(q('b.example'), pos(60));
  cache.get(q('a.example')); // a is now the young one
  cache.put(q('c.example'), pos(60));
  t.equal(cache.size, 2);
  t.ok(cache.get(q('a.example')), 'recently used kept');
  t.equal(cache.get(q('b.example')), undefined, 'least recently used evicted');
  t.same([cache.hits, cache.misses], [3, 2]);
});

t.test('selfLoop', async (t) => {
  const me: Upstream[] = [{ host: '127.0.0.1', port: 5353 }];
  t.match(selfLoop({ host: '127.0.0.1', port: 5353 }, me), /own listen address/);
  t.equal(selfLoop({ host: '127.0.0.1', port: 53 }, me), undefined, 'another port');
  t.match(selfLoop({ host: '127.0.0.53', port: 53 }, [{ host: '0.0.0.0', port: 53 }]), /listens on 0\.0\.0\.0:53/);
  t.equal(selfLoop({ host: '10.0.0.2', port: 53 }, [{ host: '0.0.0.0', port: 53 }]), undefined, 'a wildcard does not claim a remote address');
});

t.test('RateLimitedLog: N lines per interval, then how many were suppressed', async (t) => {
  let now = 0;
  const lines: string[] = [];
  const log = new RateLimitedLog({ warn: (_o, m) => lines.push(m), info: (_o, m) => lines.push(m) }, 3, 1000, () => now);
  for (let i = 0; i < 10; i++) log.warn({}, `line ${i}`);
  t.same(lines, ['line 0', 'line 1', 'line 2']);
  now = 1000;
  log.info({}, 'later');
  t.same(lines.slice(3), ['dns: suppressed 7 log lines in the last interval', 'later']);
});

function fakeTransport(behaviour: Record<string, 'timeout' | 'servfail' | 'ok' | 'tc'>, calls: string[]): UpstreamTransport {
  return {
    async exchange(u, query, transport) {
      calls.push(`${u.host}/${transport}`);
      const b = behaviour[u.host];
      if (b === 'timeout') throw new Error('no answer in 10 ms');
      const q = dnsPacket.decode(query);
      const tc = b === 'tc' && transport === 'udp';
      return dnsPacket.encode({
        type: 'response', id: q.id, flags: (b === 'servfail' ? 2 : 0) | (tc ? dnsPacket.TRUNCATED_RESPONSE : 0), questions: q.questions,
        answers: b === 'servfail' || tc ? [] : [{ type: 'A', name: q.questions?.[0].name ?? '', ttl: 30, data: '192.0.2.7' }],
      });
    },
  };
}

t.test('Forwarder: fail-over, TCP after TC, cache, all failing', async (t) => {
  const calls: string[] = [];
  const ups = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((host) => ({ host, port: 53 }));
  const f = new Forwarder(ups, new DnsCache(), fakeTransport({ '10.0.0.1': 'timeout', '10.0.0.2': 'servfail', '10.0.0.3': 'tc' }, calls), 10);
  const q = { name: 'x.example', type: 'A' as const, class: 'IN' as const };
  const got = await f.resolve(q);
  t.same(got?.answers.map((r) => ('data' in r ? r.data : '')), ['192.0.2.7']);
  t.same(calls, ['10.0.0.1/udp', '10.0.0.2/udp', '10.0.0.3/udp', '10.0.0.3/tcp'], 'timeout → next, SERVFAIL → next, TC → TCP');
  await f.resolve(q);
  t.equal(calls.length, 4, 'the second time from the cache');
  await f.resolve({ ...q, name: 'y.example' });
  t.equal(calls[4], '10.0.0.3/udp', 'the upstream that answered is asked first');
  const dead = new Forwarder(ups.slice(0, 2), new DnsCache(), fakeTransport({ '10.0.0.1': 'timeout', '10.0.0.2': 'servfail' }, []), 10);
  t.equal(await dead.resolve(q), undefined, 'all failing: undefined (SERVFAIL to the client)');
  t.equal(dead.stats.errors, 2);
});
