// The cluster DNS server (src/dns) asked by real resolvers across network namespaces (issue 16,
// Tests): the server runs in a process of its own (test/lib/dns-server-child.ts, a LiveDnsIndex
// changed through its stdin) in a pw- "dns" netns, answering on 10.53.0.1:53 over a veth to a
// "client" netns whose /etc/netns/<client>/resolv.conf is the kubelet's (search
// default.svc.cluster.local svc.cluster.local cluster.local, ndots:5); it forwards other names
// over a second veth to a fake upstream (test/lib/dns-upstream-child.ts) in an "upstream" netns.
// From the client: dig (bind9-dnsutils), getent (glibc, through ip netns exec's resolv.conf)
// and Node's dns.promises.Resolver (c-ares; test/lib/dns-client-child.ts) for every record
// type, headless with and without ready endpoints, ExternalName, PTR, pod records, the search
// path, NXDOMAIN vs NODATA, truncation then TCP for 40 endpoints, forwarding, a forwarding loop
// refused, changes seen within 1 s, and a fuzz of 3,000 bad packets after which the server
// still answers and its process lives.
import t from 'tap';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Endpoints, Service } from '../../src/api/objects.js';
import { endpoints, headlessEndpoints, service } from '../lib/dns-fixtures.js';
import { freshNetns, run, SKIP_NOT_ROOT } from '../lib/netns.js';

const LIB = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib');
const exec = promisify(execFile);
const SERVER = '10.53.0.1';
const UPSTREAM = '10.53.1.2';
const ZONE_SEARCH = 'search default.svc.cluster.local svc.cluster.local cluster.local';

const haveDig = (() => {
  try {
    execFileSync('dig', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = SKIP_NOT_ROOT || (!haveDig && 'dig not installed (bind9-dnsutils; scripts/bootstrap installs it)');

interface Child {
  proc: ChildProcess;
  next(what: string, timeoutMs?: number): Promise<Record<string, any>>;
  send(line: unknown): void;
  stderr(): string;
}

/** A node child inside a netns (`ip netns exec`, which execs it: the PID is node's), JSON lines. */
function startChild(ns: string, script: string, args: string[]): Child {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(LIB, script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
  const queue: Record<string, any>[] = [];
  const waiting: ((o: Record<string, any>) => void)[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    let o: Record<string, any>;
    try {
      o = JSON.parse(line);
    } catch {
      o = { error: `not JSON: ${line}` };
    }
    const w = waiting.shift();
    if (w) w(o);
    else queue.push(o);
  });
  return {
    proc,
    stderr: () => err,
    send: (line) => proc.stdin!.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`),
    next: (what, timeoutMs = 10_000) => {
      const ready = queue.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${script} in ${ns}: no ${what} line in ${timeoutMs} ms (exit ${proc.exitCode}); stderr: ${err}`)), timeoutMs);
        const onExit = () => reject(new Error(`${script} in ${ns} exited (${proc.exitCode}) before its ${what} line; stderr: ${err}`));
        proc.once('exit', onExit);
        waiting.push((o) => {
          clearTimeout(timer);
          proc.off('exit', onExit);
          resolve(o);
        });
      });
    },
  };
}

/** Stop a child we started, by its PID: SIGTERM, then SIGKILL after 2 s. */
async function stopChild(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.proc.once('exit', () => r()));
  c.proc.stdin!.end();
  c.proc.kill('SIGTERM');
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

async function ready(c: Child, what: string): Promise<Record<string, any>> {
  const line = await c.next(`${what} ready`, 15_000);
  if (!line.ready) throw new Error(`${what} did not start: ${JSON.stringify(line)}; stderr: ${c.stderr()}`);
  return line;
}

// The cluster: a ClusterIP service (dual-stack, two named ports), one with an unnamed port, a
// headless one with three ready endpoints (two with hostnames) and one not ready, a headless one
// with no ready endpoint, one publishing not-ready addresses, an ExternalName, 40 endpoints.
const services: Service[] = [
  service('web', 'default', { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00:96::20'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'metrics', port: 9090, protocol: 'UDP' }] }),
  service('plain', 'default', { clusterIP: '10.96.0.21', ports: [{ port: 8080, protocol: 'TCP' }] }),
  service('db', 'default', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] }),
  service('empty', 'default', { clusterIP: 'None' }),
  service('early', 'default', { clusterIP: 'None', publishNotReadyAddresses: true }),
  service('ext', 'default', { type: 'ExternalName', externalName: 'www.example.test' }),
  service('big', 'data', { clusterIP: 'None' }),
];
const eps: Endpoints[] = [
  endpoints('db', 'default', [{
    addresses: [{ ip: '10.244.3.10', hostname: 'db-0' }, { ip: '10.244.3.11', hostname: 'db-1' }, { ip: '10.244.3.12' }],
    notReadyAddresses: [{ ip: '10.244.3.13', hostname: 'db-3' }], ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
  }]),
  endpoints('empty', 'default', [{ notReadyAddresses: [{ ip: '10.244.4.1' }], ports: [{ port: 80, protocol: 'TCP' }] }]),
  endpoints('early', 'default', [{ notReadyAddresses: [{ ip: '10.244.4.2' }], ports: [{ port: 80, protocol: 'TCP' }] }]),
  headlessEndpoints('big', 'data', 40),
];

t.test('real resolvers against the cluster DNS server across network namespaces', { skip }, async (t) => {
  const started = Date.now();
  const [dnsNs, client, upNs] = [freshNetns(t, 'dns'), freshNetns(t, 'client'), freshNetns(t, 'upstream')];
  const ipIn = (ns: string, ...args: string[]) => run(ns, 'ip', args);
  ipIn(dnsNs, 'link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client);
  ipIn(dnsNs, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', upNs);
  ipIn(dnsNs, 'addr', 'add', `${SERVER}/24`, 'dev', 'c0');
  ipIn(dnsNs, 'addr', 'add', '10.53.1.1/24', 'dev', 'u0');
  ipIn(client, 'addr', 'add', '10.53.0.2/24', 'dev', 'eth0');
  ipIn(upNs, 'addr', 'add', `${UPSTREAM}/24`, 'dev', 'eth0');
  for (const [ns, dev] of [[dnsNs, 'c0'], [dnsNs, 'u0'], [client, 'eth0'], [upNs, 'eth0']] as const) ipIn(ns, 'link', 'set', dev, 'up');
  ipIn(upNs, 'route', 'add', '10.53.0.0/24', 'via', '10.53.1.1'); // the relay's way back to the server
  const etc = path.join('/etc/netns', client);
  fs.mkdirSync(etc, { recursive: true });
  t.teardown(() => fs.rmSync(etc, { recursive: true, force: true }));
  // timeout:2 attempts:3: glibc sends A and AAAA together and, when one times out, returns the
  // other alone; a clean-clone CI run (2 cores, files in parallel) once lost the AAAA to
  // timeout:1 attempts:2 and the test saw only IPv4. Nothing here waits for a timeout on purpose.
  fs.writeFileSync(path.join(etc, 'resolv.conf'), `${ZONE_SEARCH}\nnameserver ${SERVER}\noptions ndots:5 timeout:2 attempts:3\n`);

  const children: Child[] = [];
  t.teardown(async () => {
    for (const c of children) await stopChild(c);
  });
  const upstream = startChild(upNs, 'dns-upstream-child.js', ['upstream', UPSTREAM, '53']);
  children.push(upstream);
  await ready(upstream, 'the fake upstream');
  const server = startChild(dnsNs, 'dns-server-child.js', []);
  children.push(server);
  server.send({ server: { listen: { host: SERVER, port: 53 }, upstreams: [{ host: UPSTREAM, port: 53 }], upstreamTimeoutMs: 1000 }, services, endpoints: eps });
  const up = await ready(server, 'the DNS server');
  t.same([up.address, up.loops, up.upstreams], [{ host: SERVER, port: 53 }, [], [`${UPSTREAM}:53`]], 'listening on 10.53.0.1:53, the upstream kept (its loop probe did not come back)');

  const dig = async (...args: string[]): Promise<string> => (await exec('ip', ['netns', 'exec', client, 'dig', `@${SERVER}`, '+time=2', '+tries=1', ...args])).stdout;
  const short = async (...args: string[]) => (await dig('+short', ...args)).trim().split('\n').filter(Boolean).sort();
  const getent = async (...args: string[]): Promise<{ code: number; out: string }> =>
    exec('ip', ['netns', 'exec', client, 'getent', ...args]).then((r) => ({ code: 0, out: r.stdout }), (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }));
  const node = async (cmd: Record<string, unknown>): Promise<any> => {
    const { stdout } = await exec('ip', ['netns', 'exec', client, process.execPath, path.join(LIB, 'dns-client-child.js'), JSON.stringify(cmd)], { timeout: 20_000 });
    return JSON.parse(stdout.trim().split('\n').pop()!);
  };
  const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
  const count = (out: string, section: string) => Number(new RegExp(`${section}: (\\d+)`).exec(out)?.[1] ?? -1);
  const upstreamQuestions = async (): Promise<string[]> => {
    upstream.send('stats');
    return (await upstream.next('stats')).questions as string[];
  };
  const fqdn = (s: string) => `${s}.default.svc.cluster.local`;

  t.test('dig: every record type', async (t) => {
    t.same(await short(fqdn('web'), 'A'), ['10.96.0.20'], 'A of a ClusterIP service');
    t.same(await short(fqdn('web'), 'AAAA'), ['fd00:96::20'], 'AAAA of its IPv6 ClusterIP');
    t.same(await short(`_http._tcp.${fqdn('web')}`, 'SRV'), [`0 100 80 ${fqdn('web')}.`], 'SRV for the named TCP port');
    t.same(await short(`_metrics._udp.${fqdn('web')}`, 'SRV'), [`0 100 9090 ${fqdn('web')}.`], 'SRV for the named UDP port');
    t.same(await short(fqdn('plain'), 'A'), ['10.96.0.21'], 'the unnamed-port service resolves …');
    t.equal(status(await dig(`_tcp.${fqdn('plain')}`, 'SRV')), 'NXDOMAIN', '… and has no SRV name at all (its port is unnamed)');
    t.equal(status(await dig(`_tcp.${fqdn('web')}`, 'SRV')), 'NOERROR', 'while _tcp under a named port is an empty non-terminal');
    t.same(await short('-x', '10.96.0.20'), [`${fqdn('web')}.`], 'PTR of a ClusterIP');
    t.same(await short('-x', 'fd00:96::20'), [`${fqdn('web')}.`], 'PTR of the IPv6 ClusterIP');
    t.same(await short('-x', '10.244.3.10'), [`db-0.${fqdn('db')}.`], 'PTR of a headless endpoint: its hostname record');
    t.same(await short('-x', '10.244.3.12'), [`10-244-3-12.${fqdn('db')}.`], 'PTR of an endpoint without hostname: the dashed IP');
    t.same(await short(fqdn('db'), 'A'), ['10.244.3.10', '10.244.3.11', '10.244.3.12'], 'headless: one A per ready endpoint, not the not-ready one');
    t.same(await short(`db-1.${fqdn('db')}`, 'A'), ['10.244.3.11'], 'headless: the hostname record');
    t.same(await short(`10-244-3-12.${fqdn('db')}`, 'A'), ['10.244.3.12'], 'headless: the generated hostname record');
    t.equal(status(await dig(`db-3.${fqdn('db')}`, 'A')), 'NXDOMAIN', 'headless: the not-ready endpoint has no record');
    t.same(await short(`_pg._tcp.${fqdn('db')}`, 'SRV'), [`0 33 5432 10-244-3-12.${fqdn('db')}.`, `0 33 5432 db-0.${fqdn('db')}.`, `0 33 5432 db-1.${fqdn('db')}.`], 'headless: SRV per endpoint, targeting the hostname records');
    const empty = await dig(fqdn('empty'), 'A');
    t.same([status(empty), count(empty, 'ANSWER')], ['NXDOMAIN', 0], 'headless without a ready endpoint: NXDOMAIN');
    t.same(await short(fqdn('early'), 'A'), ['10.244.4.2'], 'publishNotReadyAddresses: the not-ready endpoint published');
    t.same(await short(fqdn('ext'), 'CNAME'), ['www.example.test.'], 'ExternalName: CNAME');
    t.same(await short(fqdn('ext'), 'A'), ['192.0.2.53', 'www.example.test.'], 'ExternalName asked A: the CNAME, then its target forwarded');
    t.same(await short('dns-version.cluster.local', 'TXT'), ['"1.1.0"'], 'dns-version TXT');
    t.same(await short('10-244-1-5.default.pod.cluster.local', 'A'), ['10.244.1.5'], 'pod record a-b-c-d.ns.pod.zone (insecure)');
    const mixed = await dig('WeB.DeFault.SVC.Cluster.LOCAL', 'A');
    t.match(mixed, /^WeB\.DeFault\.SVC\.Cluster\.LOCAL\.\s+5\s+IN\s+A\s+10\.96\.0\.20$/m, 'case-insensitive, the question\'s spelling echoed, TTL 5');
  });

  t.test('dig: NXDOMAIN vs NODATA', async (t) => {
    const nx = await dig(fqdn('nope'), 'A');
    t.same([status(nx), count(nx, 'ANSWER'), count(nx, 'AUTHORITY')], ['NXDOMAIN', 0, 1], 'an unknown name: NXDOMAIN with one authority record …');
    t.match(nx, /^cluster\.local\.\s+1\s+IN\s+SOA\s+ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ \d+ \d+ \d+ 1$/m, '… the SOA, TTL and minimum 1 s (a negative answer is cached 1 s at most)');
    const nodata = await dig(fqdn('web'), 'TXT');
    t.same([status(nodata), count(nodata, 'ANSWER'), count(nodata, 'AUTHORITY')], ['NOERROR', 0, 1], 'a name without the asked type: NOERROR, empty answer …');
    t.match(nodata, /^cluster\.local\.\s+1\s+IN\s+SOA\s/m, '… and the SOA in authority');
  });

  t.test('dig: truncation then TCP for 40 endpoints', async (t) => {
    const udp = await dig('+notcp', '+bufsize=512', '+ignore', 'big.data.svc.cluster.local', 'A');
    t.match(udp, /flags: qr aa tc rd ra;/, '512-byte UDP answer: TC set');
    t.equal(count(udp, 'ANSWER'), 0, 'with an empty answer');
    const retried = await dig('+notcp', '+bufsize=512', 'big.data.svc.cluster.local', 'A');
    t.match(retried, /Truncated, retrying in TCP mode/, 'dig retries over TCP …');
    t.equal(count(retried, 'ANSWER'), 40, '… and gets all 40');
    const g = await getent('ahostsv4', 'big.data.svc.cluster.local.');
    t.equal(new Set(g.out.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0])).size, 40, 'glibc (no EDNS, 512 bytes) gets the TC and all 40 over TCP');
  });

  t.test('getent (glibc through the netns resolv.conf): the search path', async (t) => {
    t.equal(run(client, 'cat', ['/etc/resolv.conf']).split('\n')[0], ZONE_SEARCH, 'ip netns exec mounts the client\'s resolv.conf');
    t.match((await getent('hosts', 'web')).out, /^fd00:96::20\s+web\.default\.svc\.cluster\.local$/m, 'getent hosts web → the ClusterIP by the search path (getent hosts asks AAAA first: the IPv6 one)');
    t.same((await getent('ahostsv4', 'web')).out.split('\n').filter((l) => /STREAM/.test(l)), ['10.96.0.20      STREAM web.default.svc.cluster.local'], 'getent ahostsv4 web → the IPv4 ClusterIP, canonical name web.default.svc.cluster.local');
    t.same((await getent('ahostsv4', 'db')).out.split('\n').filter((l) => /STREAM/.test(l)).map((l) => l.split(/\s+/)[0]).sort(), ['10.244.3.10', '10.244.3.11', '10.244.3.12'], 'getent ahostsv4 db → the ready endpoints');
    t.match((await getent('ahosts', 'web.default')).out, /^fd00:96::20\s+STREAM/m, 'getent ahosts web.default → the IPv6 ClusterIP too (the second search domain)');
    t.match((await getent('hosts', 'big.data')).out, /^10\.244\.1\.\d+\s+big\.data\.svc\.cluster\.local$/m, 'getent hosts big.data → an endpoint (svc.cluster.local search)');
    t.equal((await getent('hosts', 'nope')).code, 2, 'getent hosts nope → not found (exit 2)');
    t.match((await getent('hosts', 'www.example.test')).out, /^192\.0\.2\.53\s+www\.example\.test$/m, 'a name outside the zone, after the search list, forwarded');
  });

  t.test('Node\'s dns.promises.Resolver (c-ares)', async (t) => {
    const q = async (...queries: [string, string][]) => (await node({ op: 'resolve', server: SERVER, queries })).results as ({ value: any } | { code: string })[];
    const [a, aaaa, srv, ptr, txt, cname, nx, nodata, big, headless, upper] = await q(
      ['resolve4', fqdn('web')], ['resolve6', fqdn('web')], ['resolveSrv', `_http._tcp.${fqdn('web')}`], ['reverse', '10.244.3.11'],
      ['resolveTxt', 'dns-version.cluster.local'], ['resolveCname', fqdn('ext')], ['resolve4', fqdn('nope')], ['resolveTxt', fqdn('web')],
      ['resolve4', 'big.data.svc.cluster.local'], ['resolve4', fqdn('empty')], ['resolve4', 'WEB.default.svc.CLUSTER.local'],
    );
    t.same(a, { value: ['10.96.0.20'] }, 'resolve4');
    t.same(aaaa, { value: ['fd00:96::20'] }, 'resolve6');
    t.same(srv, { value: [{ name: fqdn('web'), port: 80, priority: 0, weight: 100 }] }, 'resolveSrv');
    t.same(ptr, { value: [`db-1.${fqdn('db')}`] }, 'reverse of a headless endpoint');
    t.same(txt, { value: [['1.1.0']] }, 'resolveTxt dns-version');
    t.same(cname, { value: ['www.example.test'] }, 'resolveCname of the ExternalName');
    t.same(nx, { code: 'ENOTFOUND' }, 'NXDOMAIN: ENOTFOUND');
    t.same(nodata, { code: 'ENODATA' }, 'NODATA: ENODATA');
    t.equal('value' in big! ? (big.value as string[]).length : big, 40, 'c-ares retries the truncated answer over TCP: 40');
    t.same(headless, { code: 'ENOTFOUND' }, 'headless without a ready endpoint: ENOTFOUND');
    t.same(upper, { value: ['10.96.0.20'] }, 'any case');
    const looked = ((await node({ op: 'lookup', names: ['web', 'www.example.test'] })).results as { value?: string[] }[]).map((r) => ('value' in r ? { value: r.value!.sort() } : r));
    t.same(looked, [{ value: ['10.96.0.20', 'fd00:96::20'] }, { value: ['192.0.2.53'] }], 'dns.lookup (getaddrinfo, the search path): web and a forwarded name');
  });

  t.test('forwarding to the fake upstream in its own netns', async (t) => {
    t.same(await short('fwd.example.test', 'A'), ['192.0.2.53'], 'a non-cluster name forwarded');
    t.equal(status(await dig('nx.example.test', 'A')), 'NXDOMAIN', 'the upstream\'s NXDOMAIN relayed');
    const asked = await upstreamQuestions();
    t.ok(asked.includes('fwd.example.test A udp'), 'the upstream was asked');
    t.same(asked.filter((q) => /cluster\.local/i.test(q)), [], 'no cluster name ever reached it (the search list\'s www.example.test.<domain> were answered here)');
    t.equal(count(await dig('+bufsize=1232', '+ignore', 'big.example.test', 'A'), 'ANSWER'), 60, 'a truncated upstream answer re-asked over TCP');
    t.same((await upstreamQuestions()).filter((q) => q.startsWith('big.example.test')), ['big.example.test A udp', 'big.example.test A tcp'], 'the upstream saw UDP then TCP across the netns');
  });

  t.test('a forwarding loop refused: the server itself and a relay that leads back', async (t) => {
    const relay = startChild(upNs, 'dns-upstream-child.js', ['relay', UPSTREAM, '5300', SERVER, '5353']);
    children.push(relay);
    await ready(relay, 'the relay');
    const loopy = startChild(dnsNs, 'dns-server-child.js', []);
    children.push(loopy);
    loopy.send({ server: { listen: { host: SERVER, port: 5353 }, upstreams: [{ host: SERVER, port: 5353 }, { host: UPSTREAM, port: 5300 }], upstreamTimeoutMs: 500, loopProbeTimeoutMs: 1500 } });
    const l = await ready(loopy, 'the looping server');
    t.match(l.loops, [/upstream 10\.53\.0\.1:5353 refused: it is this server's own listen address/, /upstream 10\.53\.1\.2:5300 sent our loop probe [0-9a-f]+\.[0-9a-f]+\.loop-probe\.podwire\.invalid back to this server/], 'both loops reported in loops');
    t.same(l.upstreams, [], 'neither is forwarded to');
    const out = await dig('-p', '5353', 'www.example.test', 'A');
    t.ok(['REFUSED', 'SERVFAIL'].includes(status(out)!), `a name outside the zone: ${status(out)}, not forwarded round the loop`);
    t.same(await short('-p', '5353', fqdn('nope'), 'A'), [], 'the cluster zone still answered');
    await new Promise((r) => setTimeout(r, 500));
    relay.send('stats');
    t.same(await relay.next('stats'), { relayed: 1 }, 'the relay carried the one probe and nothing since: no storm');
    loopy.send({ id: 1, op: 'stats' });
    const s = await loopy.next('stats');
    t.ok(s.stats.queries <= 4, `the looping server saw ${s.stats.queries} queries (the probe back, dig's ones)`);
  });

  t.test('changes seen within 1 s of the write', async (t) => {
    const change = async (name: string, until: 'present' | 'absent', write: () => void): Promise<number> => {
      const poller = startChild(client, 'dns-client-child.js', [JSON.stringify({ op: 'poll', server: SERVER, name, until, timeoutMs: 3000, intervalMs: 10 })]);
      children.push(poller);
      const first = await poller.next('polling');
      t.equal(first.state.present, until !== 'present', `${name}: ${until === 'present' ? 'NXDOMAIN' : 'resolves'} before`);
      const t0 = Date.now();
      write();
      const ack = await server.next('ack');
      t.ok(ack.ok, `the change applied: ${JSON.stringify(ack)}`);
      const seen = await poller.next('seen', 5000);
      t.notOk(seen.timeout, `${name}: ${until} within 3 s`);
      return seen.at - t0;
    };
    const svc = service('new', 'default', { clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] });
    const created = await change(fqdn('new'), 'present', () => server.send({ id: 'c', op: 'setService', object: svc }));
    t.ok(created < 1000, `a new service resolves from the client ${created} ms after the write (< 1 s)`);
    t.same(await short(fqdn('new'), 'A'), ['10.96.0.30'], 'dig agrees');
    const deleted = await change(fqdn('new'), 'absent', () => server.send({ id: 'd', op: 'deleteService', object: svc }));
    t.ok(deleted < 1000, `a deleted service is NXDOMAIN ${deleted} ms after the write (< 1 s)`);
    const readied = await change(fqdn('empty'), 'present', () => server.send({ id: 'e', op: 'setEndpoints', object: endpoints('empty', 'default', [{ addresses: [{ ip: '10.244.4.1' }], ports: [{ port: 80, protocol: 'TCP' }] }]) }));
    t.ok(readied < 1000, `a headless service whose endpoint became ready resolves ${readied} ms after the write (< 1 s)`);
    t.same(await short(fqdn('empty'), 'A'), ['10.244.4.1']);
    server.send({ id: 'x', op: 'setService', object: { kind: 'Service' } });
    t.match((await server.next('error')).error, /want a Service with metadata\.name/, 'a malformed change is refused with what was wrong');
  });

  t.test('fuzz: 2,000 datagrams and 1,000 TCP frames of random and mutated packets', async (t) => {
    const r = await node({ op: 'fuzz', server: SERVER, port: 53, seed: 1616, udp: 2000, tcp: 1000 });
    t.same(r.sent, { udp: 2000, tcp: 1000 }, `sent (${r.replies} UDP replies, FORMERR and the like)`);
    t.equal(server.proc.exitCode, null, 'the server process is alive');
    t.equal(server.proc.signalCode, null);
    t.same(await short(fqdn('web'), 'A'), ['10.96.0.20'], 'still answers over UDP');
    t.equal(count(await dig('+tcp', 'big.data.svc.cluster.local', 'A'), 'ANSWER'), 40, 'and over TCP');
    t.same(await short('after-fuzz.example.test', 'A'), ['192.0.2.53'], 'and still forwards');
    server.send({ id: 's', op: 'stats' });
    const s = await server.next('stats');
    // Every TCP frame arrives; datagrams of a flood may be dropped by the kernel when the socket's
    // receive queue is full (a busy machine: 11% were once), which the server must survive, not
    // count. The check is that the fuzz reached it: every frame and at least half the datagrams.
    t.ok(s.stats.queries >= 1000 + 0.5 * 2000, `${s.stats.queries} packets seen (of 2,000 datagrams and 1,000 TCP frames), ${s.stats.dropped} dropped, rcodes ${JSON.stringify(s.stats.rcodes)}`);
  });

  t.test('the file stays under 60 s', async (t) => {
    const took = Date.now() - started;
    t.ok(took < 60_000, `${took} ms`);
  });
});
