// An in-memory nftables (knftables' fake.go): applies Transactions to a ruleset the way the
// kernel does, all or nothing, with the kernel's refusals that podwire's transactions can meet,
// and dumps the ruleset as deterministic text. Unit tests run the proxy's, the masquerade's and
// the CNI plugin's transactions on it instead of a root-only netns; test/integration/
// exec-nft-fake.test.ts shows that the real nft (1.0.6, kernel 6.x) refuses each of these the same.
//
// Refusals (CommandError code = the errno nft reports):
//   ENOENT      a rule, element or flush/delete naming a missing table, chain, map, set or element;
//               a jump/goto (rule, anonymous vmap, map element) or @set/@map reference to a
//               missing one
//   EEXIST      `create` of an existing object or element; `add` of an element whose key exists
//               with another value; `add` of a map/set with another type or flags; `add` of a
//               chain with another type, or with a hook where the chain is regular
//   EOPNOTSUPP  `add` of a base chain with another hook or priority; a jump/goto to a base chain
//   EBUSY       delete of a chain a jump/goto/vmap element still names, or of a map/set a rule names
//   EINVAL      a set element without value given to a map, or one with a value to a set
// Accepted as the kernel does: `add` of an existing object keeps its comment (and rules or
// elements) but takes a new policy or set timeout; `add` of a chain without hook over a base
// chain; deleting a chain with rules nothing refers to (they go with it); references dropped
// earlier in the same transaction (a flush, a deleted element or map) no longer count.
import { CommandError } from '../runner.js';
import {
  elementKeyText, priorityValue, ruleReferences, verdictText,
  type BaseChainSpec, type MapElement, type NftMap, type NftSet, type Rule, type Ruleset, type Verdict,
} from './objects.js';
import { Transaction, opLines, type ChainSpec, type ObjectKind, type Op } from './transaction.js';

interface FakeChain {
  name: string;
  base?: BaseChainSpec;
  comment?: string;
  rules: Rule[];
}

interface FakeMap {
  spec: NftMap;
  elements: Map<string, MapElement>;
}

interface FakeSet {
  spec: NftSet;
  elements: Map<string, string>;
}

interface FakeTable {
  family: string;
  name: string;
  chains: Map<string, FakeChain>;
  maps: Map<string, FakeMap>;
  sets: Map<string, FakeSet>;
}

/** A name with its base chain spec, as `nft -j -t list chains|maps|sets` gives them. */
export interface ListedName {
  table: string;
  name: string;
  base?: BaseChainSpec;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EEXIST: 'File exists',
  EOPNOTSUPP: 'Operation not supported',
  EBUSY: 'Device or resource busy',
  EINVAL: 'Invalid argument',
};

class Refusal extends Error {
  constructor(readonly errno: keyof typeof ERRNO_TEXT, readonly why: string) {
    super(why);
  }
}

const refuse = (errno: keyof typeof ERRNO_TEXT, why: string): never => {
  throw new Refusal(errno, why);
};

function cloneTable(t: FakeTable): FakeTable {
  const chains = new Map([...t.chains].map(([k, c]) => [k, { ...c, rules: [...c.rules] }]));
  const maps = new Map([...t.maps].map(([k, m]) => [k, { spec: m.spec, elements: new Map(m.elements) }]));
  const sets = new Map([...t.sets].map(([k, s]) => [k, { spec: s.spec, elements: new Map(s.elements) }]));
  return { ...t, chains, maps, sets };
}

const elementValue = (e: MapElement): string => (e.verdict ? verdictText(e.verdict) : (e.data ?? []).join(' . '));
const mapType = (m: NftMap): string => (m.typeof ? `typeof ${m.typeof.key} : ${m.typeof.data}` : `type ${m.key.join(' . ')}`) + (m.counter ? '; counter' : '');
const setType = (s: NftSet): string => `${s.type} ${[...s.flags].sort().join(',')}`;
const jumpTarget = (v: Verdict | undefined): string | undefined => (v && (v.kind === 'jump' || v.kind === 'goto') ? v.chain : undefined);

export class FakeNftables {
  private tables = new Map<string, FakeTable>();
  /** Every transaction run() applied, in order. */
  readonly applied: Transaction[] = [];

  /** Applies the transaction, all or nothing; throws CommandError with the errno's name as code. */
  run(tx: Transaction): void {
    this.tables = this.simulate(tx);
    this.applied.push(tx);
  }

  /** Whether the transaction would apply (`nft -c`); the ruleset is not changed. */
  check(tx: Transaction): void {
    this.simulate(tx);
  }

  private simulate(tx: Transaction): Map<string, FakeTable> {
    const tables = new Map([...this.tables].map(([k, t]) => [k, cloneTable(t)]));
    const id = `${tx.family} ${tx.table}`;
    for (const [i, op] of tx.ops.entries()) {
      try {
        applyOp(tables, tx, op);
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        const line = opLines(op, id)[0] ?? op.kind;
        throw new CommandError(`nft (fake): operation ${i + 1} (${line.slice(0, 200)}): ${err.why}: ${ERRNO_TEXT[err.errno]}`, err.errno);
      }
    }
    return tables;
  }

  /** The table's objects (chains with their rules, maps and sets with their elements), undefined when it does not exist. */
  ruleset(table: string, family = 'inet'): Ruleset | undefined {
    const t = this.tables.get(`${family} ${table}`);
    if (!t) return undefined;
    return {
      table,
      chains: [...t.chains.values()].map((c) => ({ ...c, rules: [...c.rules] })),
      maps: [...t.maps.values()].map((m) => ({ ...m.spec, elements: [...m.elements.values()] })),
      sets: [...t.sets.values()].map((s) => ({ ...s.spec, elements: [...s.elements.values()] })),
    };
  }

  /** Names of chains, maps or sets in every table of the family (base chains with their spec). */
  list(kind: ObjectKind, family = 'inet'): ListedName[] {
    const out: ListedName[] = [];
    for (const t of this.tables.values()) {
      if (t.family !== family) continue;
      if (kind === 'chain') for (const c of t.chains.values()) out.push({ table: t.name, name: c.name, ...(c.base ? { base: c.base } : {}) });
      else for (const name of (kind === 'map' ? t.maps : t.sets).keys()) out.push({ table: t.name, name });
    }
    return out;
  }

  /**
   * The whole ruleset as the transaction text that would recreate it, in a fixed order: tables,
   * then per table its chains, sets and maps by name, every chain's rules in order, every map's
   * and set's elements by key. Two rulesets are equal when their dumps are.
   */
  dump(): string {
    const out: string[] = [];
    for (const key of [...this.tables.keys()].sort()) out.push(dumpTable(this.tables.get(key)!).text());
    return out.join('');
  }
}

const byName = <T>(m: Map<string, T>): T[] => [...m.keys()].sort().map((k) => m.get(k)!);

function dumpTable(t: FakeTable): Transaction {
  const tx = new Transaction(t.name, t.family).addTable();
  for (const c of byName(t.chains)) tx.addChain(c);
  for (const s of byName(t.sets)) tx.addSet(s.spec);
  for (const m of byName(t.maps)) tx.addMap(m.spec);
  for (const c of byName(t.chains)) tx.addRules(c.name, c.rules);
  for (const s of byName(t.sets)) tx.addElements(s.spec.name, byName(s.elements));
  for (const m of byName(t.maps)) tx.addElements(m.spec.name, byName(m.elements));
  return tx;
}

function applyOp(tables: Map<string, FakeTable>, tx: Transaction, op: Op): void {
  const id = `${tx.family} ${tx.table}`;
  if (op.kind === 'table') {
    applyTableOp(tables, id, tx, op.verb);
    return;
  }
  const t = tables.get(id) ?? refuse('ENOENT', `table ${id} does not exist`);
  switch (op.kind) {
    case 'chain': return 'name' in op ? removeOrFlush(t, 'chain', op.verb, op.name) : addChain(t, op.chain, op.verb);
    case 'map': return 'name' in op ? removeOrFlush(t, 'map', op.verb, op.name) : addMap(t, op.map, op.verb);
    case 'set': return 'name' in op ? removeOrFlush(t, 'set', op.verb, op.name) : addSet(t, op.set, op.verb);
    case 'rule': return addRule(t, op.chain, op.rule);
    case 'element':
      if (op.verb === 'delete') deleteElements(t, op.name, op.keys);
      else addElements(t, op.name, op.elements, op.verb);
  }
}

function applyTableOp(tables: Map<string, FakeTable>, id: string, tx: Transaction, verb: Op['verb']): void {
  const t = tables.get(id);
  if (verb === 'add' || verb === 'create') {
    if (t && verb === 'create') refuse('EEXIST', `table ${id} exists`);
    if (!t) tables.set(id, { family: tx.family, name: tx.table, chains: new Map(), maps: new Map(), sets: new Map() });
    return;
  }
  if (!t) refuse('ENOENT', `table ${id} does not exist`);
  if (verb === 'delete') tables.delete(id);
  else for (const c of t!.chains.values()) c.rules = [];
}

function addChain(t: FakeTable, spec: ChainSpec, verb: 'add' | 'create'): void {
  const have = t.chains.get(spec.name);
  if (!have) {
    t.chains.set(spec.name, { name: spec.name, ...(spec.base ? { base: spec.base } : {}), ...(spec.comment ? { comment: spec.comment } : {}), rules: [] });
    return;
  }
  if (verb === 'create') refuse('EEXIST', `chain ${spec.name} exists`);
  const want = spec.base;
  if (!want) return; // no hook given: nothing to change, base chain or not
  if (!have.base) refuse('EEXIST', `chain ${spec.name} exists as a regular chain`);
  if (have.base!.type !== want.type) refuse('EEXIST', `chain ${spec.name} exists with type ${have.base!.type}`);
  if (have.base!.hook !== want.hook || priorityValue(have.base!.priority) !== priorityValue(want.priority)) {
    refuse('EOPNOTSUPP', `chain ${spec.name} exists with hook ${have.base!.hook} priority ${have.base!.priority}`);
  }
  if (want.policy) have.base = { ...have.base!, policy: want.policy };
}

function addMap(t: FakeTable, spec: NftMap, verb: 'add' | 'create'): void {
  const have = t.maps.get(spec.name);
  if (t.sets.has(spec.name)) refuse('EEXIST', `${spec.name} exists as a set`);
  if (!have) {
    t.maps.set(spec.name, { spec: { ...spec, elements: [] }, elements: new Map() });
    return;
  }
  if (verb === 'create') refuse('EEXIST', `map ${spec.name} exists`);
  if (mapType(have.spec) !== mapType(spec)) refuse('EEXIST', `map ${spec.name} exists with ${mapType(have.spec)}`);
}

function addSet(t: FakeTable, spec: NftSet, verb: 'add' | 'create'): void {
  const have = t.sets.get(spec.name);
  if (t.maps.has(spec.name)) refuse('EEXIST', `${spec.name} exists as a map`);
  if (!have) {
    t.sets.set(spec.name, { spec: { ...spec, elements: [] }, elements: new Map() });
    return;
  }
  if (verb === 'create') refuse('EEXIST', `set ${spec.name} exists`);
  if (setType(have.spec) !== setType(spec)) refuse('EEXIST', `set ${spec.name} exists with type/flags ${setType(have.spec)}`);
  if (spec.timeoutSeconds !== have.spec.timeoutSeconds) have.spec = { ...have.spec, timeoutSeconds: spec.timeoutSeconds };
}

/** A jump/goto target must exist and be a regular chain. */
function checkTarget(t: FakeTable, chain: string, what: string): void {
  const c = t.chains.get(chain) ?? refuse('ENOENT', `${what}: chain ${chain} does not exist`);
  if (c.base) refuse('EOPNOTSUPP', `${what}: chain ${chain} is a base chain`);
}

function addRule(t: FakeTable, chain: string, rule: Rule): void {
  const c = t.chains.get(chain) ?? refuse('ENOENT', `chain ${chain} does not exist`);
  const refs = ruleReferences(rule);
  for (const target of refs.chains) checkTarget(t, target, 'rule');
  for (const name of refs.setsOrMaps) if (!t.sets.has(name) && !t.maps.has(name)) refuse('ENOENT', `rule: set or map ${name} does not exist`);
  c.rules.push(rule);
}

function addElements(t: FakeTable, name: string, elements: readonly (MapElement | string)[], verb: 'add' | 'create'): void {
  const map = t.maps.get(name);
  const set = t.sets.get(name);
  if (!map && !set) refuse('ENOENT', `map or set ${name} does not exist`);
  for (const e of elements) {
    if (typeof e === 'string') {
      if (!set) refuse('EINVAL', `map ${name} needs a value for element ${e}`);
      if (set!.elements.has(e) && verb === 'create') refuse('EEXIST', `element ${e} exists`);
      set!.elements.set(e, e);
      continue;
    }
    const key = elementKeyText(e.key);
    if (!map) refuse('EINVAL', `set ${name} takes no value for element ${key}`);
    const target = jumpTarget(e.verdict);
    if (target !== undefined) checkTarget(t, target, `element ${key}`);
    const have = map!.elements.get(key);
    if (have && verb === 'create') refuse('EEXIST', `element ${key} exists`);
    if (have && elementValue(have) !== elementValue(e)) refuse('EEXIST', `element ${key} exists with ${elementValue(have)}`);
    if (!have) map!.elements.set(key, e);
  }
}

function deleteElements(t: FakeTable, name: string, keys: readonly string[]): void {
  const elements = t.maps.get(name)?.elements ?? t.sets.get(name)?.elements ?? refuse('ENOENT', `map or set ${name} does not exist`);
  for (const key of keys) {
    if (!elements.delete(key)) refuse('ENOENT', `element ${key} of ${name} does not exist`);
  }
}

function removeOrFlush(t: FakeTable, kind: ObjectKind, verb: 'flush' | 'delete', name: string): void {
  if (kind === 'chain') {
    const c = t.chains.get(name) ?? refuse('ENOENT', `chain ${name} does not exist`);
    if (verb === 'flush') c.rules = [];
    else {
      const user = chainUser(t, name);
      if (user) refuse('EBUSY', `chain ${name} is still named by ${user}`);
      t.chains.delete(name);
    }
    return;
  }
  const objects = kind === 'map' ? t.maps : t.sets;
  const o = (objects as Map<string, FakeMap | FakeSet>).get(name) ?? refuse('ENOENT', `${kind} ${name} does not exist`);
  if (verb === 'flush') {
    o.elements.clear();
    return;
  }
  const user = [...t.chains.values()].find((c) => c.rules.some((r) => ruleReferences(r).setsOrMaps.includes(name)));
  if (user) refuse('EBUSY', `${kind} ${name} is still named by a rule of chain ${user.name}`);
  objects.delete(name);
}

/** Who still jumps or goes to the chain (a rule of another chain, a map element), or undefined. */
function chainUser(t: FakeTable, name: string): string | undefined {
  for (const c of t.chains.values()) {
    if (c.name !== name && c.rules.some((r) => ruleReferences(r).chains.includes(name))) return `a rule of chain ${c.name}`;
  }
  for (const m of t.maps.values()) {
    for (const [key, e] of m.elements) if (jumpTarget(e.verdict) === name) return `element ${key} of map ${m.spec.name}`;
  }
  return undefined;
}
