// The proxy's DNAT counters in nft's output (pure): `nft -j list table|chain inet podwire` (rules
// `… counter dnat ip to IP:PORT`, counted shared-pick maps svc-eps-P-N whose elements carry their
// counter) and the text of `nft get element inet podwire svc-eps-P-N { … }` (nft 1.0.6 prints it
// as text even with -j). A chain's rules carry no service port key (nft 1.0.6 leaves chain
// comments out of its JSON): the caller maps chain names to keys from its render state.
import { counterValue, type DnatCounter } from '../counters.js';
import { isIp } from '../../net/ip.js';

/** svc-eps-tcp-3 → tcp (a shared pick's data map), else undefined. */
const SHARED_MAP_RE = /^svc-eps-(tcp|udp|sctp)-(\d+)$/;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);

function ipv4(v: unknown, what: string): string {
  if (typeof v !== 'string' || !isIp(v) || v.includes(':')) throw new Error(`${what}: ${JSON.stringify(v)} is not an IPv4 address`);
  return v;
}

function port(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Error(`${what}: ${JSON.stringify(v)} is not a port`);
  return v;
}

/** The counted DNATs of one rule's expressions: `counter` then `dnat` (to an address, or a numgen map: the port's total). */
function ruleCounter(chain: string, expr: unknown[]): DnatCounter | undefined {
  const at = expr.findIndex((e) => obj(e)?.counter !== undefined);
  if (at < 0) return undefined;
  const dnat = obj(obj(expr.slice(at + 1).find((e) => obj(e)?.dnat !== undefined))?.dnat);
  if (!dnat) return undefined;
  const c = obj(obj(expr[at])!.counter);
  const what = `nft rule in chain ${chain}`;
  const counts = { packets: counterValue(c?.packets, what), bytes: counterValue(c?.bytes, what) };
  if (typeof dnat.addr === 'string') return { in: chain, endpoint: { ip: ipv4(dnat.addr, what), port: port(dnat.port, what) }, ...counts };
  return { in: chain, ...counts };
}

/** One element `[{elem: {val: {concat: [IP, PORT, K]}, counter}}, {concat: [EP_IP, EP_PORT]}]` of a shared pick. */
function elementCounter(map: string, proto: string, e: unknown): DnatCounter | undefined {
  if (!Array.isArray(e) || e.length !== 2) return undefined;
  const elem = obj(obj(e[0])?.elem);
  const counter = obj(elem?.counter);
  if (!elem || !counter) return undefined;
  const key = obj(elem.val)?.concat;
  const data = obj(e[1])?.concat;
  const what = `nft map ${map} element`;
  if (!Array.isArray(key) || key.length !== 3 || !Array.isArray(data) || data.length !== 2) throw new Error(`${what}: expected IP . PORT . K : IP . PORT, got ${JSON.stringify(e).slice(0, 200)}`);
  return {
    in: map,
    dest: { ip: ipv4(key[0], what), port: port(key[1], what), proto },
    endpoint: { ip: ipv4(data[0], what), port: port(data[1], what) },
    packets: counterValue(counter.packets, what),
    bytes: counterValue(counter.bytes, what),
  };
}

/** Every counted DNAT in an `nft -j list …` output (rules of any chain, elements of the shared picks). */
export function parseNftCounters(json: string): DnatCounter[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new Error(`nft -j list: not JSON (${(e as Error).message})`);
  }
  const items = obj(doc)?.nftables;
  if (!Array.isArray(items)) throw new Error('nft -j list: no "nftables" array in the output');
  const out: DnatCounter[] = [];
  for (const item of items) {
    const rule = obj(obj(item)?.rule);
    if (rule && typeof rule.chain === 'string' && Array.isArray(rule.expr)) {
      const c = ruleCounter(rule.chain, rule.expr);
      if (c) out.push(c);
      continue;
    }
    const map = obj(obj(item)?.map);
    const m = typeof map?.name === 'string' ? SHARED_MAP_RE.exec(map.name) : null;
    if (map && m && Array.isArray(map.elem)) {
      for (const e of map.elem) {
        const c = elementCounter(map.name as string, m[1]!, e);
        if (c) out.push(c);
      }
    }
  }
  return out;
}

const ELEMENT_RE = /(\d+\.\d+\.\d+\.\d+) \. (\d+) \. \d+ counter packets (\d+) bytes (\d+) : (\d+\.\d+\.\d+\.\d+) \. (\d+)/g;

/** The counted elements in the text of `nft get element inet podwire MAP { … }` (MAP a shared pick). */
export function parseElementCounters(map: string, text: string): DnatCounter[] {
  const m = SHARED_MAP_RE.exec(map);
  if (!m) throw new Error(`nft get element: ${JSON.stringify(map)} is not a shared pick map (svc-eps-PROTO-N)`);
  const what = `nft map ${map} element`;
  return [...text.matchAll(ELEMENT_RE)].map((x) => ({
    in: map,
    dest: { ip: ipv4(x[1], what), port: port(Number(x[2]), what), proto: m[1]! },
    endpoint: { ip: ipv4(x[5], what), port: port(Number(x[6]), what) },
    packets: counterValue(x[3], what),
    bytes: counterValue(x[4], what),
  }));
}

const BLOCK_RE = /^\t(chain|map|set) (\S+) \{$/;
const RULE_DNAT_RE = /counter packets (\d+) bytes (\d+) dnat ip to (?:(\d+\.\d+\.\d+\.\d+):(\d+)|numgen )/;

/**
 * Every counted DNAT in the text of `nft list table inet podwire`: what the agent reads for all
 * services at once. Line by line, no object tree: at 10,000 services × 5 the JSON listing is
 * 10 MB and its parsed tree several times that in the agent's heap; the text is ~7 MB and only
 * the counters are kept. Element lines are those of the `elements = { … }` of a shared pick map,
 * one element per line as nft prints them.
 */
export function parseNftTextCounters(text: string): DnatCounter[] {
  const out: DnatCounter[] = [];
  let kind = '';
  let name = '';
  let proto: string | undefined;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    const block = BLOCK_RE.exec(line);
    if (block) {
      [kind, name] = [block[1]!, block[2]!];
      proto = kind === 'map' ? SHARED_MAP_RE.exec(name)?.[1] : undefined;
      continue;
    }
    if (kind === 'map' && proto !== undefined) {
      if (!line.includes(' counter packets ')) continue;
      const what = `nft map ${name} element`;
      for (const x of line.matchAll(ELEMENT_RE)) {
        out.push({
          in: name,
          dest: { ip: ipv4(x[1], what), port: port(Number(x[2]), what), proto },
          endpoint: { ip: ipv4(x[5], what), port: port(Number(x[6]), what) },
          packets: counterValue(x[3], what),
          bytes: counterValue(x[4], what),
        });
      }
    } else if (kind === 'chain') {
      const m = RULE_DNAT_RE.exec(line);
      if (!m) continue;
      const what = `nft rule in chain ${name}`;
      const counts = { packets: counterValue(m[1], what), bytes: counterValue(m[2], what) };
      out.push(m[3] !== undefined ? { in: name, endpoint: { ip: ipv4(m[3], what), port: port(Number(m[4]), what) }, ...counts } : { in: name, ...counts });
    }
  }
  return out;
}
