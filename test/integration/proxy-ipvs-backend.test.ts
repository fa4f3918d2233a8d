// The IPVS mode's backend (src/proxy/ipvs/backend.ts) against the real nft in a pw- netns, with
// the in-memory IPVS kernel (this host has no ip_vs; the real IPVS side runs in the kernel VM,
// test/vm/): full and partial syncs, graceful removal across syncs, adoption after a restart,
// someone else's virtual service left alone, remove() for a mode switch, a failed nft sync.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SKIP_NOT_ROOT, freshNetns, run } from '../lib/netns.js';
import { ALL, input } from '../lib/proxy-nft-inputs.js';
import { netnsRunner } from '../../src/exec/runner.js';
import { IpvsProxyBackend } from '../../src/proxy/ipvs/backend.js';
import { FakeIpvsKernel } from '../../src/proxy/ipvs/kernel.js';
import { fileOwnership } from '../../src/agent/ipvs-kernel.js';
import type { CommandRunner } from '../../src/exec/runner.js';

const skip = SKIP_NOT_ROOT;

function setup(t: { teardown(fn: () => void): void }, label: string) {
  const ns = freshNetns(t, label);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-ipvs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const kernel = new FakeIpvsKernel();
  const ownership = fileOwnership(path.join(dir, 'ipvs-services.json'));
  const runner = netnsRunner(ns);
  return { ns, kernel, ownership, runner, backend: () => new IpvsProxyBackend(kernel, runner, ownership) };
}

const webOnNodeB = <E extends { ip: string }>(list: E[]): E[] => list.filter((e) => e.ip !== '10.244.2.5');

t.test('full sync, partial syncs with graceful removal, adoption after a restart', { skip, timeout: 60_000 }, async (t) => {
  const s = setup(t, 'ipvsb');
  run(s.ns, 'nft', ['-f', '-'], 'add table inet podwire\nadd chain inet podwire pod-masquerade { type nat hook postrouting priority 110; }\nadd rule inet podwire pod-masquerade return\n');
  const b = s.backend();
  const first = b.sync(input(ALL), undefined);
  t.equal(first.scope, 'full');
  t.equal(s.kernel.services.size, 11, 'every virtual address has its virtual service');
  t.same([...s.kernel.bound].sort(), ['10.96.0.10', '10.96.0.20', '10.96.0.30', '10.96.0.40', '10.96.0.50', '192.0.2.10', '192.0.2.40', '198.51.100.10']);
  t.equal(s.ownership.read().length, 11, 'ownership recorded');
  const table = run(s.ns, 'nft', ['list', 'table', 'inet', 'podwire']);
  t.match(table, /chain ipvs-prerouting \{[\s\S]*vmap @ipvs-no-endpoints/);
  t.match(table, /chain pod-masquerade/, 'the agent\'s masquerade chain untouched');
  t.ok(b.intact(), 'intact after a full sync');

  // web loses its endpoint on node-b: TCP, so weight 0 first
  const webKey = input(ALL).ports.find((p) => p.svc.name === 'web')!.svc.key;
  s.kernel.log.length = 0;
  const p = b.sync(input(ALL, 'node-a', (n, l) => (n === 'web' ? webOnNodeB(l) : l)), new Set([webKey]));
  t.equal(p.scope, 'partial');
  t.same(s.kernel.log, ['editDest tcp/10.96.0.10:80 10.244.2.5:8080 w0'], 'only the changed port touched: its real server quiesced');
  t.same(b.draining, ['tcp/10.96.0.10:80 -> 10.244.2.5:8080']);
  t.notOk(b.intact(), 'draining: the periodic resync must do a full sync (only a dump sees the connections end)');
  s.kernel.log.length = 0;
  const full = b.sync(input(ALL, 'node-a', (n, l) => (n === 'web' ? webOnNodeB(l) : l)), undefined);
  t.equal(full.scope, 'full');
  t.same(s.kernel.log, ['prepare rr', 'delDest tcp/10.96.0.10:80 10.244.2.5:8080 w0'], 'no connection left (the dump says 0): deleted');
  t.same(b.draining, []);

  // a service deleted in a partial sync: its addresses, elements and virtual services go
  const emptyKey = input(ALL).ports.find((p) => p.svc.name === 'empty')!.svc.key;
  s.kernel.log.length = 0;
  b.sync(input(ALL.filter((n) => n !== 'empty'), 'node-a', (n, l) => (n === 'web' ? webOnNodeB(l) : l)), new Set([emptyKey]));
  t.same(s.kernel.log.sort(), ['delService tcp/10.96.0.50:80', 'delService tcp/192.168.56.10:30050']);
  t.notOk(s.kernel.bound.has('10.96.0.50'), 'its ClusterIP unbound');
  t.notMatch(run(s.ns, 'nft', ['list', 'map', 'inet', 'podwire', 'ipvs-no-endpoints']), /10\.96\.0\.50/);
  t.notMatch(run(s.ns, 'nft', ['list', 'set', 'inet', 'podwire', 'ipvs-bound-ips']), /10\.96\.0\.50/);

  // a restart: a new backend adopts what is there without touching a single virtual service
  s.kernel.log.length = 0;
  const again = s.backend();
  again.sync(input(ALL.filter((n) => n !== 'empty'), 'node-a', (n, l) => (n === 'web' ? webOnNodeB(l) : l)), undefined);
  t.same(s.kernel.log, ['prepare rr'], 'adopted: no IPVS change at all (existing connections undisturbed)');
  t.ok(again.intact());

  // podwire services: per real server, the connections IPVS scheduled (its dump's stats)
  const web = s.kernel.services.get('tcp/10.96.0.10:80')!;
  web.dests[0] = { ...web.dests[0]!, stats: { conns: 7, inBytes: 420 } };
  const counters = again.counters(new Set([webKey]));
  t.same(counters.map((c) => `${c.dest!.proto} ${c.dest!.ip}:${c.dest!.port} ${c.endpoint!.ip}:${c.endpoint!.port} ${c.packets} ${c.bytes}`), [
    'tcp 10.96.0.10:80 10.244.1.5:8080 7 420', 'tcp 10.96.0.10:80 10.244.3.5:8080 0 0',
  ], 'web\'s real servers with their connection counts, nothing of the other ports');
  t.ok(again.counters().length > counters.length, 'without keys: every port');
});

t.test('someone else\'s virtual services are never changed; remove() takes only ours', { skip, timeout: 60_000 }, async (t) => {
  const s = setup(t, 'ipvsf');
  s.kernel.prepare('rr');
  s.kernel.apply({ op: 'addService', service: { key: 'tcp/192.168.56.10:22', proto: 'tcp', address: '192.168.56.10', port: 22, scheduler: 'lc', dests: [], classification: 'external', portKey: 'x', kind: 'nodePort' } });
  s.kernel.apply({ op: 'addService', service: { key: 'tcp/192.168.56.10:30080', proto: 'tcp', address: '192.168.56.10', port: 30080, scheduler: 'lc', dests: [], classification: 'external', portKey: 'x', kind: 'nodePort' } });
  const skipped: string[] = [];
  const b = new IpvsProxyBackend(s.kernel, s.runner, s.ownership, { onSkip: (k, why) => skipped.push(`${k}: ${why}`) });
  b.sync(input(ALL), undefined);
  t.equal(s.kernel.services.get('tcp/192.168.56.10:22')?.scheduler, 'lc', 'a foreign service on the node IP: untouched');
  t.equal(s.kernel.services.get('tcp/192.168.56.10:30080')?.scheduler, 'lc', 'a foreign one on our NodePort: not taken over');
  t.same(skipped, ['default/shop:http/TCP: IPVS already has a virtual service tcp/192.168.56.10:30080 that podwire did not make: left alone']);
  b.remove();
  t.same([...s.kernel.services.keys()].sort(), ['tcp/192.168.56.10:22', 'tcp/192.168.56.10:30080'], 'remove(): ours gone, theirs kept');
  t.notOk(s.kernel.device, 'the dummy device removed');
  t.notMatch(run(s.ns, 'nft', ['list', 'table', 'inet', 'podwire']), /ipvs-/, 'no ipvs- object left');
  t.same(s.ownership.read(), []);
  t.doesNotThrow(() => b.remove(), 'remove() again: nothing to do');
});

t.test('a failed nft transaction: the error says so, the next sync is a full one', { skip, timeout: 60_000 }, async (t) => {
  const s = setup(t, 'ipvse');
  let fail = false;
  const runner: CommandRunner = { run: (cmd, args, inp) => (fail && args[0] === '-f' ? { code: 1, stdout: '', stderr: 'Error: injected' } : s.runner.run(cmd, args, inp)) };
  const b = new IpvsProxyBackend(s.kernel, runner, s.ownership);
  b.sync(input(ALL), undefined);
  fail = true;
  const webKey = input(ALL).ports.find((p) => p.svc.name === 'web')!.svc.key;
  t.throws(() => b.sync(input(ALL.filter((n) => n !== 'web')), new Set([webKey])), /nft -f failed \(exit 1\): Error: injected/);
  fail = false;
  t.equal(b.sync(input(ALL.filter((n) => n !== 'web')), new Set([webKey])).scope, 'full', 'after a failure: a full sync, whatever changed');
  t.notOk(s.kernel.services.has('tcp/10.96.0.10:80'));
  t.notMatch(run(s.ns, 'nft', ['list', 'map', 'inet', 'podwire', 'ipvs-services']), /10\.96\.0\.10 /);
});

t.test('partial syncs (only the changed ports planned) end where a full sync from nothing does (property, real nft)', { skip, timeout: 120_000 }, async (t) => {
  const fc = (await import('fast-check')).default;
  const names = ALL;
  const variant = fc.record({ services: fc.subarray(names), drop: fc.subarray(['10.244.1.5', '10.244.2.5', '10.244.3.5', '10.244.2.8', '10.244.1.6']) });
  const inputOf = (v: { services: typeof names; drop: string[] }) => input(v.services, 'node-a', (_, list) => list.filter((e) => !v.drop.includes(e.ip)));
  const listing = (ns: string) => ['ipvs-services', 'ipvs-no-endpoints'].map((m) => run(ns, 'nft', ['list', 'map', 'inet', 'podwire', m])).join('')
    .concat(['ipvs-bound-ips', 'ipvs-hairpin'].map((m) => run(ns, 'nft', ['list', 'set', 'inet', 'podwire', m])).join(''))
    .replace(/\s+/g, ' ').replace(/.*?elements = \{ ([^}]*) \}/g, '$1|').split(/[|,]/).map((x) => x.trim()).filter((x) => /^\d/.test(x)).sort();
  const live = (k: FakeIpvsKernel) => [...k.services.entries()].map(([key, s]) => `${key} ${s.scheduler} ${s.dests.filter((d) => d.weight > 0).map((d) => `${d.address}:${d.port}`).sort().join(',')}`).sort();
  let runs = 0;
  let seen = 0;
  await fc.assert(fc.asyncProperty(fc.array(variant, { minLength: 1, maxLength: 4 }), async (steps) => {
    runs++;
    const a = setup(t, 'ipvsp');
    const b = setup(t, 'ipvsq');
    const backend = a.backend();
    let prev = input(ALL);
    backend.sync(prev, undefined);
    for (const v of steps) {
      const next = inputOf(v);
      const keys = new Set([...prev.ports, ...next.ports].map((p) => p.svc.key));
      const changed = new Set([...keys].filter((k) => JSON.stringify(prev.ports.find((p) => p.svc.key === k)) !== JSON.stringify(next.ports.find((p) => p.svc.key === k))));
      const r = backend.sync(next, changed);
      if (r.scope !== 'partial') return false;
      prev = next;
    }
    b.backend().sync(prev, undefined);
    seen = Math.max(seen, listing(b.ns).length);
    const same = JSON.stringify(live(a.kernel)) === JSON.stringify(live(b.kernel)) && JSON.stringify([...a.kernel.bound].sort()) === JSON.stringify([...b.kernel.bound].sort())
      && JSON.stringify(listing(a.ns)) === JSON.stringify(listing(b.ns));
    return same;
  }), { numRuns: 12 });
  t.ok(seen > 10, `the nft listing is read (up to ${seen} elements compared)`);
  t.pass(`${runs} random sequences of partial syncs match a full sync`);
});
