// The kernel's view of the nftables service proxy, for the end-to-end test in nftables mode
// (test/lib/proxy-e2e-nft-oracle.ts): `nft -j list table inet podwire` read in a node netns and
// parsed here, independently of src/proxy/nft. These are the "synced yet?" oracles and second
// opinions of the end-to-end test; traffic is the test.
import { inNetns } from './proxy-e2e.js';

type Json = Record<string, unknown>;

export interface MapEntry {
  key: string;
  verdict: Json;
}

export interface NftView {
  maps: Map<string, MapEntry[]>;
  /** Named sets (not maps) and their elements as text ("10.1.0.2", "10.1.0.2 . 10.1.0.2"). */
  sets: Map<string, string[]>;
  chains: Map<string, Json[][]>;
}

export function keyText(v: unknown): string {
  if (v && typeof v === 'object') {
    const o = v as Json;
    if ('elem' in o) return keyText((o.elem as Json).val);
    if ('concat' in o) return (o.concat as unknown[]).map(keyText).join(' . ');
    if ('prefix' in o) return `${(o.prefix as Json).addr}/${(o.prefix as Json).len}`;
  }
  return String(v);
}

/** `nft -j list table inet podwire` in a node netns: map elements ("10.96.0.2 . tcp . 80"), set elements and rules per chain. */
export function nftView(netns: string): NftView {
  const items = (JSON.parse(inNetns(netns, 'nft', ['-j', 'list', 'table', 'inet', 'podwire'])) as { nftables: Json[] }).nftables;
  const view: NftView = { maps: new Map(), sets: new Map(), chains: new Map() };
  for (const item of items) {
    if (item.chain) view.chains.set((item.chain as Json).name as string, view.chains.get((item.chain as Json).name as string) ?? []);
    if (item.map) {
      const m = item.map as Json;
      view.maps.set(m.name as string, ((m.elem as [unknown, Json][] | undefined) ?? []).map(([k, v]) => ({ key: keyText(k), verdict: v })));
    }
    if (item.set) {
      const s = item.set as Json;
      view.sets.set(s.name as string, ((s.elem as unknown[] | undefined) ?? []).map(keyText));
    }
    if (item.rule) {
      const r = item.rule as Json;
      const list = view.chains.get(r.chain as string) ?? [];
      list.push(r.expr as Json[]);
      view.chains.set(r.chain as string, list);
    }
  }
  return view;
}

export function mapVerdict(view: NftView, map: string, key: string): Json | undefined {
  return view.maps.get(map)?.find((e) => e.key === key)?.verdict;
}

/** The chain a map element goes to (`goto CHAIN`), if any. */
export function mapGoto(view: NftView, map: string, key: string): string | undefined {
  return (mapVerdict(view, map, key) as { goto?: { target: string } } | undefined)?.goto?.target;
}

/** The arms of a shared pick (svc-pick-N[-ext]) for one destination: "ip:port" of each element of @svc-eps-<proto>-N keyed "IP . PORT . k" (any IP when ip is undefined). */
function pickTargets(view: NftView, chain: string, port: number, ip?: string): string[] {
  const n = /^svc-pick-(\d+)(-ext)?$/.exec(chain)?.[1];
  const out = new Set<string>();
  for (const proto of ['tcp', 'udp', 'sctp']) {
    for (const e of view.maps.get(`svc-eps-${proto}-${n}`) ?? []) {
      const [kIp, kPort] = e.key.split(' . ');
      if (Number(kPort) === port && (ip === undefined || kIp === ip)) out.add(keyText(e.verdict).replace(' . ', ':'));
    }
  }
  return [...out].sort();
}

/** Every DNAT destination ("ip:port") reachable from a chain through goto/jump (numgen cascades, vmaps and dnat maps included; a shared pick needs the destination). */
export function dnatTargets(view: NftView, chain: string, seen = new Set<string>(), dest?: { ip?: string; port: number }): string[] {
  if (chain.startsWith('svc-pick-')) return dest ? pickTargets(view, chain, dest.port, dest.ip) : [];
  if (seen.has(chain)) return [];
  seen.add(chain);
  const out = new Set<string>();
  for (const rule of view.chains.get(chain) ?? []) {
    const text = JSON.stringify(rule);
    for (const m of text.matchAll(/"(?:goto|jump)":\{"target":"([^"]+)"\}/g)) for (const t of dnatTargets(view, m[1]!, seen, dest)) out.add(t);
    for (const m of text.matchAll(/"dnat":\{[^}]*"addr":"([^"]+)","port":(\d+)/g)) out.add(`${m[1]}:${m[2]}`);
    // dnat ip to numgen random mod N map { 0 : IP . PORT, ... }
    for (const m of text.matchAll(/"concat":\["(\d+\.\d+\.\d+\.\d+)",(\d+)\]/g)) if (text.includes('"dnat":{"family":"ip","addr":{"map"')) out.add(`${m[1]}:${m[2]}`);
  }
  return [...out].sort();
}

/** The DNAT destinations of a ClusterIP / external IP / LB IP ("ip . proto . port" in svc-ips); undefined when there is no element. */
export function serviceIpTargets(view: NftView, ip: string, proto: string, port: number): string[] | undefined {
  const chain = mapGoto(view, 'svc-ips', `${ip} . ${proto} . ${port}`);
  return chain ? dnatTargets(view, chain, new Set(), { ip, port }) : undefined;
}

/** The chain a NodePort jumps to (svc-…-ext, or a shared svc-pick-N-ext), if any. */
export function nodePortChain(view: NftView, proto: string, nodePort: number): string | undefined {
  return mapGoto(view, 'svc-nodeports', `${proto} . ${nodePort}`);
}

/** The DNAT destinations of a NodePort (on any node IP); undefined when there is no element. */
export function nodePortTargets(view: NftView, proto: string, nodePort: number): string[] | undefined {
  const chain = nodePortChain(view, proto, nodePort);
  return chain === undefined ? undefined : dnatTargets(view, chain, new Set(), { port: nodePort });
}

/**
 * Every element of the service maps that names one of these addresses or NodePorts: "map: key".
 * Keys "IP . …" (svc-ips, svc-no-endpoints, a shared pick's arms), "PROTO . NODEPORT"
 * (svc-nodeports, svc-no-endpoint-nodeports) and, with nodePortArms, a shared pick's arms for a
 * NodePort on the node IPs ("NODE-IP . NODEPORT . k").
 */
export function mapEntriesFor(view: NftView, ips: readonly string[], nodePorts: readonly number[] = [], nodePortArms = false): string[] {
  const out: string[] = [];
  for (const [name, entries] of view.maps) {
    for (const e of entries) {
      const parts = e.key.split(' . ');
      const byIp = ips.some((ip) => parts[0] === ip && parts.length > 1);
      const byNodePort = nodePorts.some((p) => (parts.length === 2 && parts[1] === String(p)) || (nodePortArms && name.startsWith('svc-eps-') && parts.length === 3 && parts[1] === String(p)));
      if (byIp || byNodePort) out.push(`${name}: ${e.key}`);
    }
  }
  return out;
}

/** Our named objects (svc-/ep-/aff- chains and sets, not the fixed maps), sorted. */
export function ownedNames(view: NftView): string[] {
  return [...view.chains.keys(), ...view.sets.keys()].filter((n) => /^(svc|ep|aff)-/.test(n)).sort();
}

const refersTo = (text: string, names: readonly string[]) => names.some((n) => text.includes(`"target":"${n}"`) || text.includes(`"@${n}"`));

/** Every rule and map element that names one of these chains or sets (goto/jump, @set). */
export function referencesTo(view: NftView, names: readonly string[]): string[] {
  const out: string[] = [];
  for (const [chain, rules] of view.chains) for (const r of rules) if (refersTo(JSON.stringify(r), names)) out.push(`${chain}: ${JSON.stringify(r)}`);
  for (const [map, entries] of view.maps) for (const e of entries) if (refersTo(JSON.stringify(e.verdict), names)) out.push(`${map}: ${e.key}`);
  return out;
}

/** The chains of the fixed skeleton, shared by every service (the shared picks are svc-pick-N[-ext]). */
export const BASE_CHAINS = ['svc-nat-prerouting', 'svc-nat-output', 'svc-nat-postrouting', 'svc-filter-prerouting', 'svc-filter-output', 'svc-services', 'svc-reject'];
const shared = (name: string) => BASE_CHAINS.includes(name) || name.startsWith('svc-pick-');

/**
 * What one service (its addresses and NodePorts) has on a node: the map elements naming it and
 * the chains and sets of its own they lead to (its svc-…, ep-… chains and aff-… sets; never the
 * skeleton or a shared pick).
 */
export function serviceObjects(view: NftView, addresses: readonly string[], nodePorts: readonly number[]): { chains: string[]; rules: string[] } {
  const rules = mapEntriesFor(view, addresses, nodePorts, true);
  const chains = new Set<string>();
  const visit = (text: string) => {
    for (const m of text.matchAll(/"(?:goto|jump)":\{"target":"([^"]+)"\}|"@(aff-[^"]+)"/g)) {
      const name = m[1] ?? m[2]!;
      if (shared(name) || chains.has(name)) continue;
      chains.add(name);
      for (const r of view.chains.get(name) ?? []) visit(JSON.stringify(r));
    }
  };
  for (const [map, entries] of view.maps) for (const e of entries) if (rules.includes(`${map}: ${e.key}`)) visit(JSON.stringify(e.verdict));
  return { chains: [...chains].filter((n) => view.chains.has(n) || view.sets.has(n)).sort(), rules };
}
