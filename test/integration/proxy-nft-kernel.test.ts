// The service proxy's nftables transactions against the real nft (1.0.6), each in a fresh pw-
// netns: the goldens are accepted and the partial syncs apply in sequence; partial syncs converge to
// what a full sync installs and a base chain with another priority is recreated (the oracles of the
// same tests on the fake nftables in test/unit/proxy-nft-render.test.ts); 10,000 services load
// fast; the backend's intact() sees what went missing; a full sync over an older release's
// uncounted maps recreates them, and the backend reads its DNAT counters back.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProxyInput } from '../../src/proxy/types.js';
import { serialize } from '../../src/exec/nft/listing.js';
import { CHAINS, renderProxyIR, type NftIR } from '../../src/proxy/nft/render.js';
import { renderScript } from '../../src/proxy/nft/diff.js';
import { NftRenderState } from '../../src/proxy/nft/incremental.js';
import { renderNftMasq } from '../../src/agent/masq/render.js';
import { netnsRunner } from '../../src/exec/runner.js';
import { NftProxyBackend } from '../../src/proxy/nft/backend.js';
import { endpoints } from '../lib/proxy-fixtures.js';
import { SKIP_NOT_ROOT, freshNetns, haveCommand, run } from '../lib/netns.js';
import {
  ALL, CLUSTER_CIDR, GOLDEN_FULL, STEPS, big, chainOf, changedKeys, goldenFull, inD, inE, input, irA, irB, irC, portEndpoints, scriptF, scriptG, unbatch,
} from '../lib/proxy-nft-inputs.js';

const skip = SKIP_NOT_ROOT || (!haveCommand('nft') ? 'nft not installed' : false);

t.test('nft accepts the goldens and applies the partial syncs in sequence', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-nft-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const nft = (ns: string, args: string[], script: string) => {
    const file = join(dir, `s${Math.random().toString(16).slice(2)}.nft`);
    writeFileSync(file, script);
    return run(ns, 'nft', [...args, '-f', file]);
  };
  for (const g of GOLDEN_FULL) {
    const ns = freshNetns(t, 'nftc');
    t.doesNotThrow(() => nft(ns, ['-c'], goldenFull(g)), `nft -c accepts proxy-nft-${g[0]}.nft`);
  }
  const ns = freshNetns(t, 'nftseq');
  const masq = renderNftMasq({ clusterCidrs: [CLUSTER_CIDR], podCidr: '10.244.1.0/24' });
  nft(ns, [], masq);
  t.doesNotThrow(() => nft(ns, ['-c'], serialize(irA)), 'nft -c accepts the listing form');
  nft(ns, ['-c'], renderScript(undefined, irA));
  nft(ns, [], renderScript(undefined, irA));
  for (const [label, script] of [['(f)', scriptF], ['(g)', scriptG]]) {
    t.doesNotThrow(() => nft(ns, ['-c'], script), `nft -c accepts ${label}`);
    t.doesNotThrow(() => nft(ns, [], script), `nft -f applies ${label}`);
  }
  const listed = JSON.parse(run(ns, 'nft', ['-j', 'list', 'table', 'inet', 'podwire'])).nftables as Record<string, { name: string }>[];
  const names = (kind: string) => listed.filter((o) => o[kind]).map((o) => o[kind].name).sort();
  t.same(names('chain'), [...irC.chains.map((c) => c.name), 'pod-masquerade'].sort(), 'kernel chains = (g)\'s IR + the agent chain');
  t.same(names('map'), irC.maps.map((m) => m.name).sort());
  t.same(names('set'), irC.sets.map((s) => s.name).sort());
  t.match(run(ns, 'nft', ['list', 'chain', 'inet', 'podwire', 'pod-masquerade']), /masquerade fully-random/, 'pod-masquerade untouched');
  // a full resync back to A with the kernel's names: stale objects are deleted, shop returns
  nft(ns, [], renderScript(undefined, irB, { existing: { chains: names('chain'), maps: names('map'), sets: names('set') } }));
  nft(ns, [], renderScript(undefined, irC, { existing: { chains: irB.chains.map((c) => c.name), maps: [], sets: irB.sets.map((s) => s.name) } }));
  const after = JSON.parse(run(ns, 'nft', ['-j', 'list', 'table', 'inet', 'podwire'])).nftables as Record<string, { name: string }>[];
  t.same(after.filter((o) => o.chain).map((o) => o.chain.name).sort(), [...irC.chains.map((c) => c.name), 'pod-masquerade'].sort(), 'full sync with existing: stale chains gone');
});

/** Our part of the kernel's table, comparable across netns: no handles, elements and rules as text. */
function kernelState(ns: string): Record<string, unknown> {
  const items = JSON.parse(run(ns, 'nft', ['-j', 'list', 'table', 'inet', 'podwire'])).nftables as Record<string, any>[];
  const state: Record<string, any> = {};
  for (const item of items) {
    const [kind, body] = Object.entries(item)[0] as [string, any];
    if (kind === 'rule') {
      state[`chain ${body.chain}`].rules.push(JSON.stringify(body.expr) + (body.comment ? ` ${body.comment}` : ''));
    } else if (kind === 'chain' || kind === 'map' || kind === 'set') {
      const { handle: _h, elem, ...rest } = body;
      state[`${kind} ${body.name}`] = { ...rest, ...(kind === 'chain' ? { rules: [] } : { elem: (elem ?? []).map((e: unknown) => JSON.stringify(e)).sort() }) };
    }
  }
  return state;
}

t.test('partial syncs converge to what a full sync installs', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-nft-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const apply = (ns: string, script: string) => {
    const file = join(dir, `s${Math.random().toString(16).slice(2)}.nft`);
    writeFileSync(file, script);
    run(ns, 'nft', ['-f', file]);
  };
  const [irD, irE] = [inD, inE].map((i) => renderProxyIR(i));
  const partial = freshNetns(t, 'nftpart');
  const incremental = freshNetns(t, 'nftinc');
  for (const ns of [partial, incremental]) apply(ns, renderNftMasq({ clusterCidrs: [CLUSTER_CIDR], podCidr: '10.244.1.0/24' }));
  let prev: NftIR | undefined;
  let state: NftRenderState | undefined;
  let prevInput: ProxyInput | undefined;
  for (const [label, inp] of STEPS) {
    const ir = renderProxyIR(inp);
    const script = renderScript(prev, ir);
    t.doesNotThrow(() => apply(partial, script), `${prev ? 'partial' : 'full'} sync to ${label} applies`);
    // the agent's way: the incremental state, a full sync (with the kernel's names) when it refuses
    const step = state && prevInput ? state.update(inp, changedKeys(prevInput, inp)) : undefined;
    if (step) apply(incremental, renderScript(step.prev, step.next));
    else {
      state = NftRenderState.build(inp);
      const names = JSON.parse(run(incremental, 'nft', ['-j', 'list', 'table', 'inet', 'podwire'])).nftables as Record<string, { name: string }>[];
      const existing = (kind: string) => names.filter((o) => o[kind]).map((o) => o[kind].name);
      apply(incremental, renderScript(undefined, state.ir(), { existing: { chains: existing('chain'), maps: existing('map'), sets: existing('set') } }));
    }
    const full = freshNetns(t, 'nftfull');
    apply(full, renderNftMasq({ clusterCidrs: [CLUSTER_CIDR], podCidr: '10.244.1.0/24' }));
    apply(full, renderScript(undefined, ir));
    const state0 = kernelState(partial);
    t.ok(Object.keys(state0).length > 20 && JSON.stringify(state0).includes('pod-masquerade'), `${label}: kernel state read`);
    t.same(state0, kernelState(full), `${label}: same kernel state as a full sync`);
    t.same(kernelState(incremental), kernelState(full), `${label}: the incremental state's syncs too (${step ? 'partial' : 'full'})`);
    prev = ir;
    prevInput = inp;
  }
  t.match(unbatch(renderScript(irD, irE)), /delete element inet podwire svc-no-endpoints \{ 192\.0\.2\.40 \. udp \. 53 \}\n(.*\n)*add element inet podwire svc-no-endpoints \{ 192\.0\.2\.40 \. udp \. 53 comment "default\/local:http\/UDP" : goto svc-reject \}/,
    'a verdict change is a delete then an add');
});

t.test('full sync: recreateBaseChains replaces a base chain whose priority changed', { skip, timeout: 30_000 }, async (t) => {
  const ns = freshNetns(t, 'nftprio');
  const dir = mkdtempSync(join(tmpdir(), 'pw-nft-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'x.nft');
  const apply = (script: string) => (writeFileSync(file, script), run(ns, 'nft', ['-f', file]));
  apply(`add table inet podwire\nadd chain inet podwire ${CHAINS.filterOutput} { type nat hook output priority -110; }\n`);
  const existing = { chains: [CHAINS.filterOutput], maps: [], sets: [] };
  t.throws(() => apply(renderScript(undefined, irA, { existing })), 'nft refuses another priority on an existing base chain');
  apply(renderScript(undefined, irA, { existing, recreateBaseChains: true }));
  t.match(run(ns, 'nft', ['list', 'chain', 'inet', 'podwire', CHAINS.filterOutput]), /priority -90;/);
});

t.test('10,000 services in the kernel: full sync and a one-endpoint partial sync stay fast', { skip, timeout: 120_000 }, async (t) => {
  const ns = freshNetns(t, 'nft10k');
  const dir = mkdtempSync(join(tmpdir(), 'pw-nft-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const timed = (script: string) => {
    writeFileSync(join(dir, 'x.nft'), script);
    const started = Date.now();
    run(ns, 'nft', ['-f', join(dir, 'x.nft')]);
    return Date.now() - started;
  };
  const before = big(10_000);
  const after = big(10_000);
  after.ports[5000] = portEndpoints(after.ports[5000].svc, endpoints(['10.247.0.1@node-b']), 'node-a');
  const [irBefore, irAfter] = [renderProxyIR(before), renderProxyIR(after)];
  const first = timed(renderScript(undefined, irBefore));
  const partial = timed(renderScript(irBefore, irAfter));
  const again = timed(renderScript(undefined, irAfter));
  t.comment(`nft -f: full ${first} ms, partial ${partial} ms, full again ${again} ms`);
  // Generous bounds (a loaded CI box): with a numgen vmap per service these took 85 s and 254 s.
  t.ok(first < 30_000 && again < 30_000, 'full syncs well under 30 s');
  t.ok(partial < 5_000, 'partial sync under 5 s');
});

t.test('the backend\'s intact(): true after a sync, false once a chain or the table of ours is gone, true again after a full sync', { skip, timeout: 60_000 }, async (t) => {
  const ns = freshNetns(t, 'nftok');
  const backend = new NftProxyBackend(netnsRunner(ns));
  t.notOk(backend.intact(), 'nothing synced yet: not intact');
  backend.sync(input(ALL), undefined);
  t.ok(backend.intact(), 'after a full sync');
  const sticky = chainOf(renderProxyIR(input(ALL)), 'default/sticky:/TCP');
  run(ns, 'nft', ['flush', 'chain', 'inet', 'podwire', CHAINS.natPrerouting]);
  t.ok(backend.intact(), 'a flushed chain is not seen (names only): the hourly full sync covers that');
  run(ns, 'nft', ['delete', 'chain', 'inet', 'podwire', CHAINS.natPrerouting]);
  t.notOk(backend.intact(), 'a deleted base chain is seen');
  backend.sync(input(ALL), undefined);
  t.ok(backend.intact(), 'a full sync puts it back');
  t.match(run(ns, 'nft', ['list', 'chain', 'inet', 'podwire', CHAINS.natPrerouting]), /jump svc-services/);
  const epChain = renderProxyIR(input(ALL)).chains.find((c) => c.name.startsWith('ep-'))!.name;
  run(ns, 'nft', ['flush', 'chain', 'inet', 'podwire', sticky]);
  run(ns, 'nft', ['flush', 'chain', 'inet', 'podwire', epChain]);
  run(ns, 'nft', ['delete', 'chain', 'inet', 'podwire', epChain]);
  t.notOk(backend.intact(), 'a deleted endpoint chain (affinity) is seen');
  run(ns, 'nft', ['delete', 'table', 'inet', 'podwire']);
  t.notOk(backend.intact(), 'the table gone');
  backend.sync(input(ALL), undefined);
  t.ok(backend.intact());
});

t.test('an older release\'s uncounted shared-pick maps: the backend\'s full sync recreates them; counters read back from the kernel', { skip, timeout: 60_000 }, async (t) => {
  const ns = freshNetns(t, 'nftcnt');
  const old = structuredClone(irA);
  for (const m of old.maps) delete m.counter;
  run(ns, 'nft', ['-f', '-'], renderScript(undefined, old));
  t.notMatch(run(ns, 'nft', ['list', 'map', 'inet', 'podwire', 'svc-eps-tcp-3']), /\n\s*counter\n/, 'the old map has no counter');
  const backend = new NftProxyBackend(netnsRunner(ns));
  t.doesNotThrow(() => backend.sync(input(ALL), undefined), 'the full sync over them applies (plain `add map` would fail: File exists)');
  t.match(run(ns, 'nft', ['list', 'map', 'inet', 'podwire', 'svc-eps-tcp-3']), /\n\s*counter\n[\s\S]*10\.96\.0\.10 \. 80 \. 0 counter packets 0 bytes 0 : 10\.244\.1\.5 \. 8080/, 'recreated with a counter on every element');
  t.ok(backend.intact());
  const web = input(ALL).ports.find((p) => p.svc.name === 'web')!.svc.key;
  const sticky = input(ALL).ports.find((p) => p.svc.name === 'sticky')!.svc.key;
  const one = backend.counters(new Set([web]));
  t.same(one.map((c) => `${c.dest!.ip}:${c.dest!.port} ${c.endpoint!.ip} ${c.packets}`), ['10.96.0.10:80 10.244.1.5 0', '10.96.0.10:80 10.244.2.5 0', '10.96.0.10:80 10.244.3.5 0'], 'web: its 3 arms from nft get element');
  t.same(backend.counters(new Set([sticky])).map((c) => [c.portKey, c.endpoint!.ip]).sort(), [[sticky, '10.244.1.6'], [sticky, '10.244.2.6']], 'sticky: its ep- chains from nft -j list chain');
  const all = backend.counters();
  t.equal(all.filter((c) => c.dest).length, irA.maps.filter((m) => m.counter).reduce((n, m) => n + m.elements.length, 0), 'all: every shared-pick element from nft list table');
  t.equal(all.filter((c) => c.portKey === sticky).length, 2, 'and the ep- chains\' DNATs, keyed');
});
