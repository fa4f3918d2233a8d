// The parser of `nft -j list table inet podwire-cni`: the pods' elements (IP, owner comment,
// verdict) and each chain's rules in the text forms this plugin writes. Pure.
import type { Family } from '../net/ip.js';
import { CommandError } from '../exec/runner.js';
import { CNI_MASQ_TABLE as MASQ_TABLE } from '../exec/names.js';
import { canonicalIp } from './masq-names.js';

export interface MasqElement {
  ip: string;
  family: Family;
  /** The element's comment: `containerId/ifname` (see ownerComment); undefined when it has none. */
  owner: string | undefined;
  /** jump/goto target, undefined for any other verdict. */
  chain: string | undefined;
  /** The verdict in nft syntax ("jump net-1a2b3c4d"), needed to delete the element safely. */
  verdict: string;
}

export interface MasqState {
  elements: MasqElement[];
  chains: string[];
  /** Each chain's rules, as nft prints them (only the forms this module writes are decoded). */
  rules: Record<string, string[]>;
}

type Json = Record<string, any>;

function verdictText(v: unknown): { verdict: string; chain: string | undefined } {
  if (v && typeof v === 'object') {
    const [kind, body] = Object.entries(v as Json)[0] ?? [];
    if ((kind === 'jump' || kind === 'goto') && typeof body?.target === 'string') {
      return { verdict: `${kind} ${body.target}`, chain: body.target };
    }
    if (kind) return { verdict: kind, chain: undefined };
  }
  return { verdict: String(v), chain: undefined };
}

function parseElement(family: Family, pair: unknown): MasqElement {
  const [key, value] = Array.isArray(pair) ? pair : [pair, undefined];
  const val = typeof key === 'object' && key !== null ? key.elem?.val : key;
  const comment = typeof key === 'object' && key !== null ? key.elem?.comment : undefined;
  const ip = canonicalIp(String(val)).text;
  return { ip, family, owner: typeof comment === 'string' ? comment : undefined, ...verdictText(value) };
}

function exprText(e: Json): string {
  const [kind, body] = Object.entries(e)[0] ?? ['?', undefined];
  if (kind === 'match' && body?.left?.payload) {
    const { protocol, field } = body.left.payload;
    const right = body.right?.prefix ? `${body.right.prefix.addr}/${body.right.prefix.len}` : String(body.right);
    return `${protocol} ${field} ${body.op === '==' ? '' : body.op + ' '}${right}`;
  }
  if (kind === 'vmap' && body?.key?.payload) return `${body.key.payload.protocol} ${body.key.payload.field} vmap ${body.data}`;
  if (body === null) return kind; // return, masquerade, accept, ...
  if ((kind === 'jump' || kind === 'goto') && body?.target) return `${kind} ${body.target}`;
  return JSON.stringify(e); // not a form we write: kept verbatim so a comparison fails visibly
}

export function parseMasqTable(listing: unknown): MasqState {
  const items = (listing as Json)?.nftables;
  if (!Array.isArray(items)) throw new CommandError('ipMasq: nft -j output has no "nftables" array', 'NFT_BAD_JSON');
  const state: MasqState = { elements: [], chains: [], rules: {} };
  for (const item of items as Json[]) {
    if (item.map && item.map.table === MASQ_TABLE && (item.map.name === 'masq4' || item.map.name === 'masq6')) {
      const family: Family = item.map.name === 'masq4' ? 4 : 6;
      for (const pair of item.map.elem ?? []) state.elements.push(parseElement(family, pair));
    } else if (item.chain && item.chain.table === MASQ_TABLE) {
      state.chains.push(item.chain.name);
      state.rules[item.chain.name] ??= [];
    } else if (item.rule && item.rule.table === MASQ_TABLE) {
      (state.rules[item.rule.chain] ??= []).push((item.rule.expr ?? []).map(exprText).join(' '));
    }
  }
  return state;
}
