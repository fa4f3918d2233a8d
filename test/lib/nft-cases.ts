// The kernel behaviours the nftables fake (src/exec/nft/fake.ts) reproduces, as cases shared by
// its unit test (test/unit/exec-nft-fake.test.ts: the fake does this) and its oracle
// (test/integration/exec-nft-fake.test.ts: the real nft in a pw- netns does the same). Each case
// applies `setup` (accepted), then `tx`, which the kernel refuses with `errno` or accepts (undefined).
import type { Rule } from '../../src/exec/nft/objects.js';
import { Transaction } from '../../src/exec/nft/transaction.js';

export const TABLE = 'pw-fake';

export interface NftCase {
  name: string;
  setup: Transaction;
  tx: Transaction;
  errno: 'ENOENT' | 'EEXIST' | 'EOPNOTSUPP' | 'EBUSY' | 'EINVAL' | undefined;
}

const tx = () => new Transaction(TABLE);
/** Table with regular chains c and d, a verdict map m and an address set s. */
const base = () => tx().addTable().addChain({ name: 'c' }).addChain({ name: 'd' })
  .addMap({ name: 'm', key: ['ipv4_addr'], elements: [] })
  .addSet({ name: 's', type: 'ipv4_addr', flags: [], elements: [] });
const jump = (chain: string): Rule => ({ matches: [], action: { kind: 'verdict', verdict: { kind: 'jump', chain } } });
const accept: Rule = { matches: [], action: { kind: 'verdict', verdict: { kind: 'accept' } } };
const inSet = (set: string): Rule => ({ matches: [{ kind: 'addrInSet', field: 'saddr', set }], action: { kind: 'verdict', verdict: { kind: 'accept' } } });
const vmap = (map: string): Rule => ({ matches: [], action: { kind: 'vmap', key: 'saddr', map } });
const nat = (priority: number | 'srcnat', hook: 'postrouting' | 'prerouting' = 'postrouting', type: 'nat' | 'filter' = 'nat') => ({ name: 'b', base: { type, hook, priority } });

export const CASES: NftCase[] = [
  // references to missing objects
  { name: 'a rule jumping to a missing chain', setup: base(), tx: tx().addRule('c', jump('nochain')), errno: 'ENOENT' },
  { name: 'a rule in a missing chain', setup: base(), tx: tx().addRule('nochain', accept), errno: 'ENOENT' },
  { name: 'a rule naming a missing set', setup: base(), tx: tx().addRule('c', inSet('noset')), errno: 'ENOENT' },
  { name: 'a rule naming a missing verdict map', setup: base(), tx: tx().addRule('c', vmap('nomap')), errno: 'ENOENT' },
  { name: 'an anonymous vmap arm going to a missing chain', setup: base(), tx: tx().addRule('c', { matches: [], action: { kind: 'numgen', chains: ['d', 'nochain'], form: 'vmap' } }), errno: 'ENOENT' },
  { name: 'a map element jumping to a missing chain', setup: base(), tx: tx().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'nochain' } }]), errno: 'ENOENT' },
  { name: 'a rule in a missing table', setup: tx(), tx: tx().addRule('c', accept), errno: 'ENOENT' },
  { name: 'a jump to a base chain', setup: base().addChain(nat(100)), tx: tx().addRule('c', jump('b')), errno: 'EOPNOTSUPP' },
  // deleting what is still named
  { name: 'deleting a chain a rule jumps to', setup: base().addRule('c', jump('d')), tx: tx().delete('chain', 'd'), errno: 'EBUSY' },
  { name: 'deleting a chain a map element jumps to', setup: base().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'd' } }]), tx: tx().delete('chain', 'd'), errno: 'EBUSY' },
  { name: 'deleting a chain an anonymous vmap goes to', setup: base().addRule('c', { matches: [], action: { kind: 'numgen', chains: ['d'], form: 'vmap' } }), tx: tx().delete('chain', 'd'), errno: 'EBUSY' },
  { name: 'deleting a set a rule names', setup: base().addRule('c', inSet('s')), tx: tx().delete('set', 's'), errno: 'EBUSY' },
  { name: 'deleting a map a rule names', setup: base().addRule('c', vmap('m')), tx: tx().delete('map', 'm'), errno: 'EBUSY' },
  { name: 'flushing the jumping chain first, then deleting', setup: base().addRule('c', jump('d')), tx: tx().flush('chain', 'c').delete('chain', 'd'), errno: undefined },
  { name: 'deleting the element first, then the chain', setup: base().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'd' } }]), tx: tx().deleteElements('m', ['10.0.0.1']).delete('chain', 'd'), errno: undefined },
  { name: 'flushing the map first, then deleting the chain', setup: base().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'd' } }]), tx: tx().flush('map', 'm').delete('chain', 'd'), errno: undefined },
  { name: 'deleting the map first, then the chain', setup: base().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'd' } }]), tx: tx().delete('map', 'm').delete('chain', 'd'), errno: undefined },
  { name: 'deleting a chain with rules nothing names', setup: base().addRule('d', accept), tx: tx().delete('chain', 'd'), errno: undefined },
  // create and add of what exists
  { name: 'create of an existing table', setup: base(), tx: tx().createTable(), errno: 'EEXIST' },
  { name: 'create of an existing chain', setup: base(), tx: tx().addChain({ name: 'c' }, 'create'), errno: 'EEXIST' },
  { name: 'create of an existing set', setup: base(), tx: tx().addSet({ name: 's', type: 'ipv4_addr', flags: [], elements: [] }, 'create'), errno: 'EEXIST' },
  { name: 'create of an existing element', setup: base().addElements('s', ['10.0.0.1']), tx: tx().addElements('s', ['10.0.0.1'], 'create'), errno: 'EEXIST' },
  { name: 'add of an existing element with another verdict', setup: base().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'c' } }]), tx: tx().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'd' } }]), errno: 'EEXIST' },
  { name: 'add of an existing element with the same verdict (and another comment)', setup: base().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'c' }, comment: 'a' }]), tx: tx().addElements('m', [{ key: ['10.0.0.1'], verdict: { kind: 'jump', chain: 'c' }, comment: 'b' }]), errno: undefined },
  { name: 'add of an existing map with another key type', setup: base(), tx: tx().addMap({ name: 'm', key: ['ipv6_addr'], elements: [] }), errno: 'EEXIST' },
  { name: 'add of an existing set with other flags', setup: base(), tx: tx().addSet({ name: 's', type: 'ipv4_addr', flags: ['timeout'], elements: [] }), errno: 'EEXIST' },
  { name: 'add of an existing chain, map and set as they are', setup: base(), tx: tx().addTable().addChain({ name: 'c' }).addMap({ name: 'm', key: ['ipv4_addr'], comment: 'other', elements: [] }).addSet({ name: 's', type: 'ipv4_addr', flags: [], elements: [] }), errno: undefined },
  { name: 'a set element given to a verdict map', setup: base(), tx: tx().addElements('m', ['10.0.0.1']), errno: 'EINVAL' },
  // flush and delete of what is missing
  { name: 'delete of a missing chain', setup: base(), tx: tx().delete('chain', 'nochain'), errno: 'ENOENT' },
  { name: 'flush of a missing chain', setup: base(), tx: tx().flush('chain', 'nochain'), errno: 'ENOENT' },
  { name: 'delete of a missing map', setup: base(), tx: tx().delete('map', 'nomap'), errno: 'ENOENT' },
  { name: 'flush of a missing set', setup: base(), tx: tx().flush('set', 'noset'), errno: 'ENOENT' },
  { name: 'delete of a missing element', setup: base(), tx: tx().deleteElements('s', ['10.0.0.1']), errno: 'ENOENT' },
  { name: 'flush of a chain in a missing table', setup: tx(), tx: tx().flush('chain', 'c'), errno: 'ENOENT' },
  // base chains
  { name: 'another priority on an existing base chain', setup: base().addChain(nat(100)), tx: tx().addChain(nat(110)), errno: 'EOPNOTSUPP' },
  { name: 'another hook on an existing base chain', setup: base().addChain(nat(100)), tx: tx().addChain(nat(100, 'prerouting')), errno: 'EOPNOTSUPP' },
  { name: 'another type on an existing base chain', setup: base().addChain(nat(100, 'postrouting', 'filter')), tx: tx().addChain(nat(100)), errno: 'EEXIST' },
  { name: 'a hook on an existing regular chain', setup: base(), tx: tx().addChain({ name: 'c', base: { type: 'nat', hook: 'postrouting', priority: 100 } }), errno: 'EEXIST' },
  { name: 'add of a base chain without hook (a no-op)', setup: base().addChain(nat(100)), tx: tx().addChain({ name: 'b' }), errno: undefined },
  { name: 'the same priority by name (srcnat = 100)', setup: base().addChain(nat(100)), tx: tx().addChain(nat('srcnat')), errno: undefined },
  { name: 'deleting and adding a base chain with another priority', setup: base().addChain(nat(100)), tx: tx().delete('chain', 'b').addChain(nat(110)), errno: undefined },
];
