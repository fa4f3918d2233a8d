// One nftables transaction: (verb, object) values on one table, rendered once to the text of one
// `nft -f -` call, which the kernel applies all or nothing (knftables' Transaction). Callers
// decide what to write (the proxy's diff, the agent's masquerade, the CNI plugin's ipMasq); this
// is the only place that writes the commands. The fake (fake.ts) applies the same values to an
// in-memory ruleset.
//
// The verbs are nft's: `add` creates an object or does nothing when it exists (a chain keeps its
// rules and comment, an element its comment), `create` fails with EEXIST when it exists, `flush`
// empties a chain (rules) or a map/set (elements), `delete` removes it; `flush` and `delete` of a
// missing object fail with ENOENT. nft 1.0.6 has no `destroy` (delete-if-present).
import {
  NFT_FAMILY, chainSpecText, checkName, mapElementText, mapSpecText, ruleLines, setSpecText,
  type Chain, type MapElement, type NftMap, type NftSet, type Rule,
} from './objects.js';

export type Verb = 'add' | 'create' | 'flush' | 'delete';
export type ObjectKind = 'chain' | 'map' | 'set';
/** A chain's declaration: its rules are separate `add rule` operations. */
export type ChainSpec = Pick<Chain, 'name' | 'base' | 'comment'>;

export type Op =
  | { verb: Verb; kind: 'table' }
  /** add/create: the chain's spec and comment; the rules of the value are not part of it. */
  | { verb: 'add' | 'create'; kind: 'chain'; chain: ChainSpec }
  /** add/create: the map's spec; its elements are not part of it. */
  | { verb: 'add' | 'create'; kind: 'map'; map: NftMap }
  | { verb: 'add' | 'create'; kind: 'set'; set: NftSet }
  | { verb: 'flush' | 'delete'; kind: ObjectKind; name: string }
  | { verb: 'add'; kind: 'rule'; chain: string; rule: Rule }
  /** Map elements are MapElements, set elements their text ("10.0.0.1", "A . B"). */
  | { verb: 'add' | 'create'; kind: 'element'; name: string; elements: readonly (MapElement | string)[] }
  /** Elements by key text ("10.96.0.10 . tcp . 80"). */
  | { verb: 'delete'; kind: 'element'; name: string; keys: readonly string[] };

/**
 * Elements per `add element` / `delete element` command. One command per element made the full
 * sync of 10,000 services × 5 a 5.6 MB script that nft took 0.8-1.0 s and 209 MB to load; in
 * batches it is 3.0 MB, 0.5-0.7 s and 129 MB (measured in a netns, nft 1.0.6). A failing
 * element fails the whole transaction either way.
 */
export const ELEMENT_BATCH = 1000;

const elementText = (e: MapElement | string): string => (typeof e === 'string' ? e : mapElementText(e));

export class Transaction {
  readonly ops: Op[] = [];

  /** On table `family table` (family inet: the only one podwire writes). */
  constructor(readonly table: string, readonly family: string = NFT_FAMILY) {}

  get size(): number {
    return this.ops.length;
  }

  addTable(): this { return this.push({ verb: 'add', kind: 'table' }); }
  createTable(): this { return this.push({ verb: 'create', kind: 'table' }); }
  addChain(chain: ChainSpec, verb: 'add' | 'create' = 'add'): this { return this.push({ verb, kind: 'chain', chain }); }
  addMap(map: NftMap, verb: 'add' | 'create' = 'add'): this { return this.push({ verb, kind: 'map', map }); }
  addSet(set: NftSet, verb: 'add' | 'create' = 'add'): this { return this.push({ verb, kind: 'set', set }); }
  flush(kind: ObjectKind, name: string): this { return this.push({ verb: 'flush', kind, name }); }
  delete(kind: ObjectKind, name: string): this { return this.push({ verb: 'delete', kind, name }); }
  deleteTable(): this { return this.push({ verb: 'delete', kind: 'table' }); }

  addRule(chain: string, rule: Rule): this { return this.push({ verb: 'add', kind: 'rule', chain, rule }); }
  addRules(chain: string, rules: readonly Rule[]): this {
    for (const rule of rules) this.ops.push({ verb: 'add', kind: 'rule', chain, rule });
    return this;
  }

  /** Nothing when the list is empty (nft refuses `add element T M { }`). */
  addElements(name: string, elements: readonly (MapElement | string)[], verb: 'add' | 'create' = 'add'): this {
    return elements.length ? this.push({ verb, kind: 'element', name, elements }) : this;
  }

  deleteElements(name: string, keys: readonly string[]): this {
    return keys.length ? this.push({ verb: 'delete', kind: 'element', name, keys }) : this;
  }

  private push(op: Op): this {
    this.ops.push(op);
    return this;
  }

  /** The `nft -f -` input: one command per line ('' for no operation). */
  text(): string {
    const t = `${this.family} ${checkName(this.table)}`;
    const lines: string[] = [];
    for (const op of this.ops) renderOp(op, t, lines);
    return lines.length ? lines.join('\n') + '\n' : '';
  }
}

/** The command line(s) of one operation on table `t` ("inet podwire"): an IR rule may be several, elements come in batches. */
export function opLines(op: Op, t: string): string[] {
  const lines: string[] = [];
  renderOp(op, t, lines);
  return lines;
}

function renderOp(op: Op, t: string, lines: string[]): void {
  switch (op.kind) {
    case 'table': lines.push(`${op.verb} table ${t}`); return;
    case 'chain':
      if ('name' in op) lines.push(`${op.verb} chain ${t} ${checkName(op.name)}`);
      else {
        const spec = op.chain.base || op.chain.comment ? ' ' + chainSpecText(op.chain) : '';
        lines.push(`${op.verb} chain ${t} ${checkName(op.chain.name)}${spec}`);
      }
      return;
    case 'map':
      if ('name' in op) lines.push(`${op.verb} map ${t} ${checkName(op.name)}`);
      else lines.push(`${op.verb} map ${t} ${checkName(op.map.name)} ${mapSpecText(op.map)}`);
      return;
    case 'set':
      if ('name' in op) lines.push(`${op.verb} set ${t} ${checkName(op.name)}`);
      else lines.push(`${op.verb} set ${t} ${checkName(op.set.name)} ${setSpecText(op.set)}`);
      return;
    case 'rule': {
      const head = `add rule ${t} ${checkName(op.chain)} `;
      for (const line of ruleLines(op.rule)) lines.push(head + line);
      return;
    }
    case 'element': {
      const items = op.verb === 'delete' ? op.keys : op.elements.map(elementText);
      const head = `${op.verb} element ${t} ${checkName(op.name)} { `;
      for (let i = 0; i < items.length; i += ELEMENT_BATCH) lines.push(head + items.slice(i, i + ELEMENT_BATCH).join(', ') + ' }');
    }
  }
}
