// IpvsClient against the kernel, with ipvsadm as the independent oracle (`-S -n` for the table,
// `-Ln --stats --exact` for counters, `-Ln --timeout`). A vm-tier test: it needs root and a kernel
// with ip_vs (this project's CI runs it in the kernel VM); it skips, saying why, elsewhere. All of
// it happens in pw- netns of its own (IPVS state is per netns), deleted at the end.
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { IpvsClient, IpvsError } from '../../src/netlink/ipvs-client.js';
import type { IpvsServiceKey, IpvsServiceSpec } from '../../src/netlink/ipvs.js';
import { freshNetns, haveCommand, isRoot, run } from '../lib/netns.js';

const SCHEDULERS = ['rr', 'wrr', 'lc', 'sh', 'mh'];

function skipReason(): string | false {
  if (!isRoot) return 'needs root (CAP_NET_ADMIN) and network namespaces';
  for (const m of ['ip_vs', ...SCHEDULERS.map((s) => `ip_vs_${s}`)]) {
    try {
      execFileSync('modprobe', [m], { stdio: 'ignore' });
    } catch {
      // reported below when ip_vs itself is missing; a missing scheduler fails its own check
    }
  }
  if (!existsSync('/proc/net/ip_vs')) return 'no IPVS in this kernel (/proc/net/ip_vs missing): run it in the kernel VM';
  if (!haveCommand('ipvsadm')) return 'ipvsadm (the oracle) is not installed';
  return false;
}
const skip = skipReason();

// In TCG a process spawn takes ~0.3 s (the oracle is a process per look): generous limits.
t.setTimeout(180_000);
const opts = { skip, timeout: 90_000 };

function setup(t: Test): { ns: string; ipvs: IpvsClient } {
  const ns = freshNetns(t, 'ipvs');
  const ipvs = IpvsClient.open({ netns: ns });
  t.teardown(() => ipvs.close());
  return { ns, ipvs };
}

/** `ipvsadm -S -n`: the table as ipvsadm would restore it, one rule a line, sorted. */
const saved = (ns: string): string[] => run(ns, 'ipvsadm', ['-S', '-n']).split('\n').filter(Boolean).sort();

t.test('services: add every kind, read back, edit, delete — as ipvsadm -S sees them', opts, async (t) => {
  const { ns, ipvs } = setup(t);
  const specs: IpvsServiceSpec[] = [
    { protocol: 'tcp', address: '10.96.0.1', port: 80, scheduler: 'rr' },
    { protocol: 'tcp', address: '10.96.0.2', port: 80, scheduler: 'wrr' },
    { protocol: 'tcp', address: '10.96.0.3', port: 80, scheduler: 'lc' },
    { protocol: 'tcp', address: '10.96.0.4', port: 443, scheduler: 'sh', flags: { persistent: true, shFallback: true, shPort: true }, timeout: 300, netmask: 24 },
    { protocol: 'tcp', address: '10.96.0.5', port: 80, scheduler: 'mh', flags: { mhFallback: true, mhPort: true } },
    { protocol: 'udp', address: '10.96.0.10', port: 53, scheduler: 'rr', flags: { onePacket: true } },
    { protocol: 'sctp', address: '10.96.0.11', port: 9, scheduler: 'rr' },
    { family: 4, fwmark: 7, scheduler: 'lc' },
    { family: 6, fwmark: 8, scheduler: 'rr' },
    { protocol: 'udp', address: 'fd00::5', port: 53, scheduler: 'wrr', flags: { persistent: true }, timeout: 60, netmask: 64 },
  ];
  for (const s of specs) ipvs.addService(s);
  t.same(saved(ns), [
    '-A -f 7 -s lc',
    '-A -f 8 -6 -s rr',
    '-A -t 10.96.0.1:80 -s rr',
    '-A -t 10.96.0.2:80 -s wrr',
    '-A -t 10.96.0.3:80 -s lc',
    '-A -t 10.96.0.4:443 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port',
    '-A -t 10.96.0.5:80 -s mh -b mh-fallback,mh-port',
    '-A -u 10.96.0.10:53 -s rr -o',
    '-A -u [fd00::5]:53 -s wrr -p 60 -M 64',
    '-A --sctp-service 10.96.0.11:9 -s rr',
  ].sort(), 'ipvsadm -S -n lists exactly the services added');
  const listed = ipvs.listServices();
  t.equal(listed.length, specs.length, 'listServices: every one');
  for (const s of specs) {
    const got = ipvs.getService(s);
    t.match(got, { ...s, flags: { ...s.flags, hashed: true } }, `getService ${JSON.stringify(s)}`);
    t.ok(listed.some((l) => JSON.stringify({ ...l, stats: 0, stats64: 0 }) === JSON.stringify({ ...got, stats: 0, stats64: 0 })), 'and listServices has it the same');
  }

  ipvs.editService({ protocol: 'tcp', address: '10.96.0.1', port: 80, scheduler: 'wrr', flags: { persistent: true }, timeout: 10800 });
  ipvs.editService({ protocol: 'tcp', address: '10.96.0.4', port: 443, scheduler: 'rr' });
  const after = saved(ns);
  t.ok(after.includes('-A -t 10.96.0.1:80 -s wrr -p 10800'), 'edit: scheduler and persistence set');
  t.ok(after.includes('-A -t 10.96.0.4:443 -s rr'), 'edit: flags, timeout and netmask replaced too');

  ipvs.delService({ protocol: 'tcp', address: '10.96.0.2', port: 80 });
  ipvs.delService({ family: 6, fwmark: 8 });
  t.notOk(saved(ns).some((l) => l.includes('10.96.0.2:80') || l.includes('-f 8')), 'deleted services are gone');
  t.equal(ipvs.findService({ family: 6, fwmark: 8 }), undefined, 'findService: undefined once deleted');
  t.equal(saved(ns).length, specs.length - 2);
});

t.test('real servers: add with weights and thresholds, edit, delete; flush', opts, async (t) => {
  const { ns, ipvs } = setup(t);
  const svc: IpvsServiceKey = { protocol: 'tcp', address: '10.96.0.5', port: 80 };
  ipvs.addService({ ...svc, scheduler: 'wrr' });
  ipvs.addService({ family: 4, fwmark: 9, scheduler: 'rr' });
  ipvs.addDestination(svc, { address: '10.244.1.5', port: 8080, forward: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 10 });
  ipvs.addDestination(svc, { address: '10.244.2.6', port: 8080, forward: 'masq' });
  ipvs.addDestination(svc, { address: '10.244.3.7', port: 80, forward: 'route', weight: 0 });
  ipvs.addDestination({ family: 4, fwmark: 9 }, { address: '10.0.1.3', port: 0, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelChecksum: 'csum' });
  t.same(saved(ns), [
    '-A -f 9 -s rr',
    '-A -t 10.96.0.5:80 -s wrr',
    '-a -f 9 -r 10.0.1.3:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
    '-a -t 10.96.0.5:80 -r 10.244.1.5:8080 -m -w 3',
    '-a -t 10.96.0.5:80 -r 10.244.2.6:8080 -m -w 1',
    '-a -t 10.96.0.5:80 -r 10.244.3.7:80 -g -w 0',
  ].sort(), 'ipvsadm -S -n (which leaves thresholds out)');
  t.same(thresholds(ns), { '10.244.1.5:8080': [100, 10], '10.244.2.6:8080': [0, 0], '10.244.3.7:80': [0, 0], '10.0.1.3:0': [0, 0] }, 'ipvsadm -Ln --thresholds');
  t.match(ipvs.listDestinations(svc).sort((a, b) => a.address.localeCompare(b.address)), [
    { address: '10.244.1.5', port: 8080, forward: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 10, activeConns: 0, inactiveConns: 0 },
    { address: '10.244.2.6', port: 8080, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
    { address: '10.244.3.7', port: 80, forward: 'route', weight: 0 },
  ]);
  t.match(ipvs.listDestinations({ family: 4, fwmark: 9 }), [{ address: '10.0.1.3', forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelChecksum: 'csum' }]);
  t.same(ipvs.listDestinations({ protocol: 'tcp', address: '10.96.0.99', port: 1 }), [], 'a missing service has no real servers (the kernel answers an empty dump)');

  ipvs.editDestination(svc, { address: '10.244.1.5', port: 8080, forward: 'masq', weight: 0 });
  t.ok(saved(ns).includes('-a -t 10.96.0.5:80 -r 10.244.1.5:8080 -m -w 0'), 'edit: weight 0');
  t.same(thresholds(ns)['10.244.1.5:8080'], [0, 0], 'edit: thresholds back to none');
  ipvs.delDestination(svc, { address: '10.244.2.6', port: 8080 });
  t.notOk(saved(ns).some((l) => l.includes('10.244.2.6')), 'deleted real server is gone');
  t.equal(ipvs.listDestinations(svc).length, 2);

  ipvs.flush();
  t.same(saved(ns), [], 'flush: nothing left');
  t.same(ipvs.listServices(), []);
});

t.test('timeouts: set and read, as ipvsadm -Ln --timeout shows them', opts, async (t) => {
  const { ns, ipvs } = setup(t);
  const oracle = () => run(ns, 'ipvsadm', ['-Ln', '--timeout']).trim();
  const initial = ipvs.getConfig();
  t.equal(oracle(), `Timeout (tcp tcpfin udp): ${initial.tcp} ${initial.tcpFin} ${initial.udp}`, 'defaults read');
  ipvs.setConfig({ tcp: 900, tcpFin: 60, udp: 120 });
  t.equal(oracle(), 'Timeout (tcp tcpfin udp): 900 60 120');
  ipvs.setConfig({ udp: 30 });
  t.same(ipvs.getConfig(), { tcp: 900, tcpFin: 60, udp: 30 }, 'a partial set leaves the others');
  t.equal(oracle(), 'Timeout (tcp tcpfin udp): 900 60 30');
  t.match(ipvs.info(), { version: run(ns, 'ipvsadm', ['-Ln']).match(/version (\S+)/)![1] });
});

t.test('stats after TCP connections through a masq service to a socat in another netns', opts, async (t) => {
  const { ns, ipvs } = setup(t);
  const rs = freshNetns(t, 'rs');
  // The service IP on a dummy link of the IPVS netns (as kube-ipvs0), the real server behind a veth.
  run(ns, 'ip', ['-batch', '-'], [
    `link add veth-lb type veth peer name veth-rs netns ${rs}`, 'addr add 10.0.1.1/24 dev veth-lb', 'link set veth-lb up',
    'link add pw-vip0 type dummy', 'addr add 10.96.0.5/32 dev pw-vip0', 'link set pw-vip0 up',
  ].join('\n') + '\n');
  run(rs, 'ip', ['-batch', '-'], 'addr add 10.0.1.2/24 dev veth-rs\nlink set veth-rs up\nroute add default via 10.0.1.1\n');
  const server = spawn('ip', ['netns', 'exec', rs, 'socat', 'TCP-LISTEN:8080,fork,reuseaddr', 'SYSTEM:echo hello'], { stdio: 'ignore' });
  t.teardown(() => void server.kill());
  const svc: IpvsServiceKey = { protocol: 'tcp', address: '10.96.0.5', port: 80 };
  ipvs.addService({ ...svc, scheduler: 'rr' });
  ipvs.addDestination(svc, { address: '10.0.1.2', port: 8080, forward: 'masq', weight: 2 });
  await waitFor(() => run(rs, 'ss', ['-Hltn', 'sport = :8080']).includes('8080'), 5000, 'socat listening in the real server netns');
  for (let i = 0; i < 3; i++) t.equal(run(ns, 'socat', ['-T2', '-', 'TCP:10.96.0.5:80'], '', 5000), 'hello\n', `connection ${i + 1} answered through IPVS`);
  // Kernels before 6.2 sum the per-CPU counters only in the estimator's timer (every 2 s), so a
  // read can lag the packets by up to 2 s: wait until the three connections show, then read ours,
  // ipvsadm's and ours again, and compare only a bracket in which our two reads agree (the
  // counters only grow, so ipvsadm's read between them saw the same values).
  await waitFor(() => ipvs.getService(svc).stats64!.conns === 3, 6000, 'the three connections in the service counters');
  const read = () => ({ service: ipvs.getService(svc), dest: ipvs.listDestinations(svc)[0]! });
  let before = read();
  let oracle = statsOracle(ns);
  let after = read();
  for (let i = 0; i < 5 && !sameCounters(before, after); i++) [before, oracle, after] = [after, statsOracle(ns), read()];
  t.ok(sameCounters(before, after), 'two reads of our counters agree around ipvsadm\'s');
  const { service, dest } = after;
  t.equal(service.stats64!.conns, 3, 'the service counted three connections');
  t.same(counters(service.stats64!), oracle['TCP 10.96.0.5:80'], 'service counters = ipvsadm -Ln --stats --exact');
  t.same(counters(service.stats!), counters(service.stats64!), '32- and 64-bit counters agree');
  t.same(counters(dest.stats64!), oracle['TCP 10.96.0.5:80 -> 10.0.1.2:8080'], 'real server counters = ipvsadm');
  t.equal(dest.activeConns + dest.inactiveConns, 3, 'the three connections are the real server\'s (closed: inactive)');
  t.ok(service.stats64!.inBytes > 0 && service.stats64!.outBytes > 0);
});

t.test('errors: EEXIST, ESRCH, unknown scheduler, missing real server — typed, naming the object', opts, async (t) => {
  const { ipvs } = setup(t);
  const svc: IpvsServiceKey = { protocol: 'tcp', address: '10.96.0.5', port: 80 };
  ipvs.addService({ ...svc, scheduler: 'rr' });
  ipvs.addDestination(svc, { address: '10.0.1.2', port: 8080, forward: 'masq' });
  const expectError = (fn: () => void, code: string, reason: string, message: RegExp) => {
    const err = t.throws(fn) as IpvsError;
    t.ok(err instanceof IpvsError, `${code}: an IpvsError`);
    t.match(err, { code, reason, message }, message.source);
  };
  expectError(() => ipvs.addService({ ...svc, scheduler: 'rr' }), 'EEXIST', 'exists', /^ipvs add service TCP 10\.96\.0\.5:80: File exists \(EEXIST\)/);
  expectError(() => ipvs.delService({ protocol: 'udp', address: '10.96.0.5', port: 80 }), 'ESRCH', 'no-service', /^ipvs del service UDP 10\.96\.0\.5:80: .*no such virtual service/);
  expectError(() => ipvs.editService({ protocol: 'tcp', address: '10.96.0.9', port: 80, scheduler: 'rr' }), 'ESRCH', 'no-service', /edit service TCP 10\.96\.0\.9:80/);
  expectError(() => ipvs.getService({ family: 4, fwmark: 42 }), 'ESRCH', 'no-service', /get service FWM 42/);
  expectError(() => ipvs.addService({ protocol: 'tcp', address: '10.96.0.9', port: 80, scheduler: 'nosuch' }), 'ENOENT', 'no-scheduler', /scheduler "nosuch".*modprobe ip_vs_nosuch/);
  expectError(() => ipvs.addDestination(svc, { address: '10.0.1.2', port: 8080, forward: 'masq' }), 'EEXIST', 'exists', /add destination TCP 10\.96\.0\.5:80 -> 10\.0\.1\.2:8080/);
  expectError(() => ipvs.delDestination(svc, { address: '10.0.1.9', port: 8080 }), 'ENOENT', 'no-destination', /del destination TCP 10\.96\.0\.5:80 -> 10\.0\.1\.9:8080.*no such real server/);
  expectError(() => ipvs.editDestination(svc, { address: '10.0.1.9', port: 8080, forward: 'masq' }), 'ENOENT', 'no-destination', /edit destination/);
  expectError(() => ipvs.addDestination({ protocol: 'tcp', address: '10.96.0.9', port: 80 }, { address: '10.0.1.2', port: 1, forward: 'masq' }), 'ESRCH', 'no-service', /add destination TCP 10\.96\.0\.9:80/);
});

/** `ipvsadm -Ln --thresholds`: real server → [upper, lower]. */
function thresholds(ns: string): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const m of run(ns, 'ipvsadm', ['-Ln', '--thresholds']).matchAll(/^  -> (\S+)\s+(\d+)\s+(\d+)\s/gm)) out[m[1]!] = [Number(m[2]), Number(m[3])];
  return out;
}

interface Counters { conns: number; inPackets: number; outPackets: number; inBytes: number; outBytes: number }
interface Snapshot { service: { stats64?: Counters }; dest: { stats64?: Counters } }
const sameCounters = (a: Snapshot, b: Snapshot): boolean =>
  JSON.stringify([counters(a.service.stats64!), counters(a.dest.stats64!)]) === JSON.stringify([counters(b.service.stats64!), counters(b.dest.stats64!)]);
const counters = (s: Counters): Counters => ({ conns: s.conns, inPackets: s.inPackets, outPackets: s.outPackets, inBytes: s.inBytes, outBytes: s.outBytes });

/** `ipvsadm -Ln --stats --exact`: "TCP 10.96.0.5:80" and "TCP 10.96.0.5:80 -> 10.0.1.2:8080" → counters. */
function statsOracle(ns: string): Record<string, Counters> {
  const out: Record<string, Counters> = {};
  let service = '';
  for (const line of run(ns, 'ipvsadm', ['-Ln', '--stats', '--exact']).split('\n')) {
    const m = /^(  -> )?(TCP|UDP|SCTP|FWM)?\s*(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(line);
    if (!m) continue;
    const key = m[1] ? `${service} -> ${m[3]}` : (service = `${m[2]} ${m[3]}`);
    out[key] = { conns: Number(m[4]), inPackets: Number(m[5]), outPackets: Number(m[6]), inBytes: Number(m[7]), outBytes: Number(m[8]) };
  }
  return out;
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
