// The in-memory nftables (src/exec/nft/fake.ts): the kernel's refusals and acceptances of
// test/lib/nft-cases.ts (test/integration/exec-nft-fake.test.ts checks each against the real
// nft), all-or-nothing transactions, check(), and a dump that depends on the ruleset only.
import t from 'tap';
import { FakeNftables } from '../../src/exec/nft/fake.js';
import { Transaction } from '../../src/exec/nft/transaction.js';
import { CASES, TABLE } from '../lib/nft-cases.js';

t.test('each case: refused with the kernel\'s errno, or accepted', async (t) => {
  for (const c of CASES) {
    const fake = new FakeNftables();
    fake.run(c.setup);
    const before = fake.dump();
    if (c.errno) {
      t.throws(() => fake.run(c.tx), { code: c.errno }, `${c.name}: ${c.errno}`);
      t.equal(fake.dump(), before, `${c.name}: nothing applied`);
    } else {
      t.doesNotThrow(() => fake.run(c.tx), `${c.name}: accepted`);
    }
  }
});

t.test('all or nothing: a refused operation undoes the ones before it', async (t) => {
  const fake = new FakeNftables();
  fake.run(new Transaction(TABLE).addTable().addChain({ name: 'c' }));
  const before = fake.dump();
  const tx = new Transaction(TABLE).addChain({ name: 'new' }).flush('chain', 'c').addElements('nomap', ['10.0.0.1']);
  t.throws(() => fake.run(tx), { code: 'ENOENT', message: /operation 3 \(add element inet pw-fake nomap \{ 10\.0\.0\.1 \}\): map or set nomap does not exist: No such file or directory/ });
  t.equal(fake.dump(), before);
  t.equal(fake.applied.length, 1, 'only the applied transaction is recorded');
  t.doesNotThrow(() => fake.check(new Transaction(TABLE).addChain({ name: 'checked' })));
  t.equal(fake.dump(), before, 'check() applies nothing');
  t.throws(() => fake.check(new Transaction(TABLE).delete('chain', 'nochain')), { code: 'ENOENT' });
});

t.test('dump: the ruleset in a fixed order, whatever order it was built in', async (t) => {
  const a = new FakeNftables();
  const b = new FakeNftables();
  const rule = (chain: string) => ({ matches: [], action: { kind: 'verdict' as const, verdict: { kind: 'goto' as const, chain } } });
  a.run(new Transaction(TABLE).addTable().addChain({ name: 'x' }).addChain({ name: 'y', comment: 'why' })
    .addChain({ name: 'base', base: { type: 'nat', hook: 'postrouting', priority: 'srcnat + 10' } })
    .addMap({ name: 'm', key: ['ipv4_addr'], elements: [] }).addSet({ name: 's', type: 'ipv4_addr', flags: [], elements: [] })
    .addRule('x', rule('y')).addElements('m', [{ key: ['10.0.0.2'], verdict: { kind: 'jump', chain: 'x' } }, { key: ['10.0.0.1'], verdict: { kind: 'drop' } }])
    .addElements('s', ['10.0.0.9', '10.0.0.3']));
  b.run(new Transaction(TABLE).addTable().addSet({ name: 's', type: 'ipv4_addr', flags: [], elements: [] }).addChain({ name: 'y', comment: 'why' }).addChain({ name: 'x' })
    .addMap({ name: 'm', key: ['ipv4_addr'], elements: [] }).addRule('x', rule('y')).addElements('s', ['10.0.0.3', '10.0.0.9'])
    .addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'drop' } }]).addElements('m', [{ key: ['10.0.0.2'], verdict: { kind: 'jump', chain: 'x' } }])
    .addChain({ name: 'base', base: { type: 'nat', hook: 'postrouting', priority: 'srcnat + 10' } }));
  t.equal(a.dump(), b.dump());
  t.equal(a.dump(), [
    'add table inet pw-fake',
    'add chain inet pw-fake base { type nat hook postrouting priority srcnat + 10; }',
    'add chain inet pw-fake x',
    'add chain inet pw-fake y { comment "why"; }',
    'add set inet pw-fake s { type ipv4_addr; }',
    'add map inet pw-fake m { type ipv4_addr : verdict; }',
    'add rule inet pw-fake x goto y',
    'add element inet pw-fake s { 10.0.0.3, 10.0.0.9 }',
    'add element inet pw-fake m { 10.0.0.1 : drop, 10.0.0.2 : jump x }',
    '',
  ].join('\n'));
  t.equal(new FakeNftables().dump(), '', 'empty ruleset');
});

t.test('ruleset() and list(): what a listing gives', async (t) => {
  const fake = new FakeNftables();
  fake.run(new Transaction(TABLE).addTable().addChain({ name: 'c', comment: 'kept' })
    .addChain({ name: 'b', base: { type: 'filter', hook: 'output', priority: -90, policy: 'accept' } })
    .addMap({ name: 'm', key: ['ipv4_addr'], elements: [] }));
  fake.run(new Transaction('other').addTable().addChain({ name: 'o' }));
  fake.run(new Transaction(TABLE).addChain({ name: 'c', comment: 'ignored' }).addSet({ name: 's', type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeoutSeconds: 10, elements: [] }));
  fake.run(new Transaction(TABLE).addSet({ name: 's', type: 'ipv4_addr', flags: ['timeout', 'dynamic'], timeoutSeconds: 20, elements: [] }));
  const rs = fake.ruleset(TABLE)!;
  t.equal(rs.chains.find((c) => c.name === 'c')?.comment, 'kept', 'add of an existing chain keeps its comment');
  t.equal(rs.sets[0]?.timeoutSeconds, 20, 'add of an existing set takes the new timeout (as kernel 6.x)');
  t.same(fake.list('chain').map((x) => `${x.table} ${x.name}${x.base ? ' ' + x.base.hook : ''}`).sort(), ['other o', 'pw-fake b output', 'pw-fake c']);
  t.same(fake.list('map').map((x) => x.name), ['m']);
  t.equal(fake.ruleset('nothing'), undefined);
  fake.run(new Transaction('other').deleteTable());
  t.same(fake.list('chain').map((x) => x.table), [TABLE, TABLE], 'delete table removes it with its contents');
});
