// The oracle that the nftables fake (src/exec/nft/fake.ts) is honest: every case of
// test/lib/nft-cases.ts run through the real nft in a fresh pw- netns is refused with the same
// errno as the fake refuses it (nft prints the strerror), or accepted as the fake accepts it; a
// refused transaction changes nothing in the kernel either; and where both accept, the fake's
// dump() loaded into a second netns lists exactly what the kernel holds in the first.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { FakeNftables } from '../../src/exec/nft/fake.js';
import { CASES, TABLE } from '../lib/nft-cases.js';
import { SKIP_NOT_ROOT, freshNetns, haveCommand, run } from '../lib/netns.js';

const skip = SKIP_NOT_ROOT || (!haveCommand('nft') ? 'nft not installed' : false);

const STRERROR: Record<string, RegExp> = {
  ENOENT: /No such file or directory/,
  EEXIST: /File exists/,
  EOPNOTSUPP: /Operation not supported/,
  EBUSY: /Device or resource busy/,
  EINVAL: /Invalid argument/,
};

function nft(ns: string, script: string): { code: number; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
  return { code: r.status ?? -1, stderr: r.stderr };
}

/**
 * The table as the kernel lists it, without handles, in a fixed order: objects by kind and name
 * (the kernel lists them in creation order), rules by chain in their order, set elements sorted
 * (their order is the kernel's hash order).
 */
function listing(ns: string): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', TABLE], { encoding: 'utf8' });
  if (r.status !== 0) return `(no table: ${r.stderr.trim()})`;
  const items = (JSON.parse(r.stdout) as { nftables: Record<string, Record<string, unknown>>[] }).nftables;
  const rank: Record<string, number> = { table: 0, chain: 1, set: 2, map: 2, rule: 3 };
  const keyed = items.flatMap((item) => {
    const [kind, body] = Object.entries(item)[0]!;
    if (kind === 'metainfo') return [];
    const { handle: _h, elem, ...rest } = body as { handle?: number; elem?: unknown[]; name?: string; chain?: string };
    const line = JSON.stringify({ kind, ...rest, ...(elem ? { elem: elem.map((e) => JSON.stringify(e)).sort() } : {}) });
    return [{ key: `${rank[kind] ?? 9} ${kind === 'rule' ? rest.chain : rest.name ?? ''}`, line }];
  });
  return keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((x) => x.line).join('\n');
}

t.test('the real nft refuses and accepts what the fake does', { skip, timeout: 120_000 }, async (t) => {
  const ns = freshNetns(t, 'nftfake');
  const mirror = freshNetns(t, 'nftdump');
  for (const c of CASES) {
    for (const n of [ns, mirror]) spawnSync('ip', ['netns', 'exec', n, 'nft', 'delete', 'table', 'inet', TABLE]);
    const fake = new FakeNftables();
    fake.run(c.setup);
    const setup = nft(ns, c.setup.text());
    t.equal(setup.code, 0, `${c.name}: setup applies (${setup.stderr.trim()})`);
    const before = listing(ns);
    const real = nft(ns, c.tx.text());
    let fakeError: { code?: string } | undefined;
    try {
      fake.run(c.tx);
    } catch (err) {
      fakeError = err as { code?: string };
    }
    if (c.errno) {
      t.not(real.code, 0, `${c.name}: nft refuses it`);
      t.match(real.stderr, STRERROR[c.errno]!, `${c.name}: with ${c.errno} (${real.stderr.trim().split('\n')[0]})`);
      t.equal(fakeError?.code, c.errno, `${c.name}: the fake refuses it with ${c.errno}`);
      t.equal(listing(ns), before, `${c.name}: nothing applied in the kernel`);
    } else {
      t.equal(real.code, 0, `${c.name}: nft accepts it (${real.stderr.trim()})`);
      t.equal(fakeError, undefined, `${c.name}: the fake accepts it`);
    }
    const loaded = nft(mirror, fake.dump());
    t.equal(loaded.code, 0, `${c.name}: the fake's dump loads (${loaded.stderr.trim()})`);
    t.equal(listing(mirror), listing(ns), `${c.name}: the fake's ruleset is the kernel's`);
  }
  t.equal(run(ns, 'nft', ['list', 'tables']).includes(TABLE), true);
});
