// The kernel's view of the iptables service proxy, for the end-to-end test in iptables mode
// (test/lib/proxy-e2e-iptables-oracle.ts): `iptables-save` read in a node netns and parsed here,
// independently of src/proxy/iptables. These are the "synced yet?" oracles and second opinions
// of the end-to-end test; traffic is the test.
import { inNetns } from './proxy-e2e.js';

/** Built-in and our own chains' rules, per table and chain: the text after `-A CHAIN `. */
export interface IptView {
  tables: Map<string, Map<string, string[]>>;
}

/** The chains the proxy owns: PODWIRE-*, except the agent's masquerade chain (iptables masq mode). */
export const ownedChain = (name: string): boolean => /^PODWIRE-[A-Z0-9-]+$/.test(name) && name !== 'PODWIRE-POSTRTG';

/** The proxy's fixed chains: what is left when no service exists. */
export const BASE_CHAINS: Record<'filter' | 'nat', readonly string[]> = {
  filter: ['PODWIRE-SERVICES-FILTER'],
  nat: ['PODWIRE-MARK-MASQ', 'PODWIRE-NODEPORTS', 'PODWIRE-POSTROUTING', 'PODWIRE-SERVICES'],
};

/** Parses iptables-save text (any tables; `-c` counters are dropped). */
export function parseSave(text: string): IptView {
  const view: IptView = { tables: new Map() };
  let table: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\[\d+:\d+\] /, '');
    if (line.startsWith('*')) view.tables.set(line.slice(1), (table = new Map()));
    else if (line.startsWith(':') && table) table.set(line.slice(1).split(' ')[0]!, []);
    else if (line.startsWith('-A ') && table) {
      const [, chain, rest] = /^-A (\S+) ?(.*)$/.exec(line)!;
      const list = table.get(chain!) ?? [];
      list.push(rest!);
      table.set(chain!, list);
    }
  }
  return view;
}

/** `iptables-save` (every table) in a netns, parsed. */
export function iptView(netns: string): IptView {
  return parseSave(inNetns(netns, 'iptables-save', []));
}

export function rules(view: IptView, table: string, chain: string): string[] {
  return view.tables.get(table)?.get(chain) ?? [];
}

/** The chain a rule jumps or goes to (-j/-g), when that is a chain of the table (not DNAT, MARK…). */
export function ruleTarget(view: IptView, table: string, rule: string): string | undefined {
  const t = /(?:^| )-[jg] (\S+)/.exec(rule)?.[1];
  return t !== undefined && view.tables.get(table)?.has(t) ? t : undefined;
}

export function commentOf(rule: string): string | undefined {
  const m = /--comment (?:"([^"]*)"|(\S+))/.exec(rule);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Non-negated `-d IP/32`, `-p PROTO` and `--dport PORT` in one rule. */
function matchesDest(rule: string, ip: string, proto: string, port: number): boolean {
  return new RegExp(`(?:^|[^!] )-d ${ip.replace(/\./g, '\\.')}/32 `).test(rule) && new RegExp(`(?:^| )-p ${proto} `).test(rule) && new RegExp(` --dport ${port}(?: |$)`).test(rule);
}

/** Every chain reachable from `chain` through -j/-g (chain included), in the nat table. */
export function reachable(view: IptView, chain: string, table = 'nat', seen = new Set<string>()): Set<string> {
  if (seen.has(chain) || !view.tables.get(table)?.has(chain)) return seen;
  seen.add(chain);
  for (const r of rules(view, table, chain)) {
    const t = ruleTarget(view, table, r);
    if (t) reachable(view, t, table, seen);
  }
  return seen;
}

/** Every DNAT destination ("ip:port") reachable from a nat chain, sorted. */
export function dnatTargets(view: IptView, chain: string): string[] {
  const out = new Set<string>();
  for (const c of reachable(view, chain)) {
    for (const r of rules(view, 'nat', c)) {
      const m = / -j DNAT --to-destination (\S+)/.exec(r);
      if (m) out.add(m[1]!);
    }
  }
  return [...out].sort();
}

/** The chain PODWIRE-SERVICES sends (ip, proto, port) to (SVC/SVL for a ClusterIP, EXT for external and LB IPs). */
export function serviceChain(view: IptView, ip: string, proto: string, port: number): string | undefined {
  const r = rules(view, 'nat', 'PODWIRE-SERVICES').find((x) => matchesDest(x, ip, proto, port));
  return r === undefined ? undefined : ruleTarget(view, 'nat', r);
}

/** The DNAT destinations of a ClusterIP / external IP / LB IP; undefined without a PODWIRE-SERVICES rule. */
export function serviceIpTargets(view: IptView, ip: string, proto: string, port: number): string[] | undefined {
  const chain = serviceChain(view, ip, proto, port);
  return chain === undefined ? undefined : dnatTargets(view, chain);
}

/** The chain PODWIRE-NODEPORTS sends (proto, nodePort) to (EXT). */
export function nodePortChain(view: IptView, proto: string, nodePort: number): string | undefined {
  const r = rules(view, 'nat', 'PODWIRE-NODEPORTS').find((x) => new RegExp(`(?:^| )-p ${proto} `).test(x) && new RegExp(` --dport ${nodePort}(?: |$)`).test(x));
  return r === undefined ? undefined : ruleTarget(view, 'nat', r);
}

/**
 * The verdicts ("REJECT --reject-with tcp-reset", "DROP") PODWIRE-SERVICES-FILTER has for an
 * address (`-d IP/32 … --dport PORT`) or, with ip undefined, for a NodePort (`--dst-type LOCAL … --dport PORT`).
 */
export function filterVerdicts(view: IptView, ip: string | undefined, proto: string, port: number): string[] {
  return rules(view, 'filter', 'PODWIRE-SERVICES-FILTER')
    .filter((r) => (ip !== undefined ? matchesDest(r, ip, proto, port) : / --dst-type LOCAL /.test(r) && new RegExp(`(?:^| )-p ${proto} `).test(r) && new RegExp(` --dport ${port}(?: |$)`).test(r)))
    .map((r) => / -j (.*)$/.exec(r)?.[1] ?? r);
}

/** The statistic cascade of an SVC/SVL chain: [probability, target chain] per arm, the last one unconditional (1). */
export function cascade(view: IptView, chain: string): [number, string][] {
  return rules(view, 'nat', chain)
    .filter((r) => !/ --rcheck /.test(r) && /-j PODWIRE-SEP-/.test(r))
    .map((r) => [Number(/--probability (\S+)/.exec(r)?.[1] ?? 1), ruleTarget(view, 'nat', r)!]);
}

/** The recent lists an SVC/SVL chain checks for ClientIP affinity (`-m recent --rcheck --name X`). */
export function affinityLists(view: IptView, chain: string): string[] {
  return rules(view, 'nat', chain).flatMap((r) => (/ --rcheck /.test(r) ? [/--name (\S+)/.exec(r)?.[1] ?? '?'] : []));
}

/** The source addresses in one of the node's xt_recent lists (/proc/net/xt_recent/NAME; [] when absent). */
export function recentEntries(netns: string, name: string): string[] {
  try {
    return [...inNetns(netns, 'cat', [`/proc/net/xt_recent/${name}`]).matchAll(/src=(\S+)/g)].map((m) => m[1]!);
  } catch {
    return [];
  }
}

/** The names of the xt_recent lists that exist in a netns. */
export function recentListNames(netns: string): string[] {
  return inNetns(netns, 'ls', ['/proc/net/xt_recent']).split('\n').filter(Boolean).sort();
}

/** Our chains (PODWIRE-*, not the agent's) per table, tables and chains sorted by name. */
export function ownedChains(view: IptView): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [table, chains] of [...view.tables].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const ours = [...chains.keys()].filter(ownedChain).sort();
    if (ours.length) out[table] = ours;
  }
  return out;
}

/**
 * Every chain and base-chain rule that belongs to one service ("namespace/name"): the rules of
 * PODWIRE-SERVICES, PODWIRE-NODEPORTS and PODWIRE-SERVICES-FILTER whose comment names the service
 * ("namespace/name:port/PROTO …"), the chains they lead to and every chain whose rules name it
 * (SVC, SVL, EXT, SEP), with what those reach; the shared base chains excluded.
 */
export function serviceObjects(view: IptView, svc: string): { chains: string[]; baseRules: string[] } {
  const own = (r: string) => new RegExp(`(?:^| )${svc.replace(/[.]/g, '\\.')}:`).test(commentOf(r) ?? '');
  const chains = new Set<string>();
  const baseRules: string[] = [];
  for (const [table, list] of view.tables) {
    const base = (BASE_CHAINS as Record<string, readonly string[]>)[table] ?? [];
    const add = (chain: string) => {
      for (const c of reachable(view, chain, table)) if (!base.includes(c)) chains.add(c);
    };
    for (const [chain, rs] of list) {
      if (!ownedChain(chain)) continue;
      if (base.includes(chain)) {
        for (const r of rs.filter(own)) {
          baseRules.push(`${table} ${chain}: ${r}`);
          const target = ruleTarget(view, table, r);
          if (target) add(target);
        }
      } else if (rs.some(own)) add(chain);
    }
  }
  return { chains: [...chains].sort(), baseRules };
}

/** ICMP output counters of a netns (/proc/net/snmp "Icmp:"): OutDestUnreachs, OutRateLimitHost, … */
export function icmpCounters(netns: string): Record<string, number> {
  const lines = inNetns(netns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Icmp: '));
  const [names, values] = [lines[0]?.split(' ').slice(1) ?? [], lines[1]?.split(' ').slice(1) ?? []];
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
}

/** Every rule of the node that names one of these chains (a dangling reference would fail restore, but check). */
export function referencesTo(view: IptView, names: readonly string[]): string[] {
  const out: string[] = [];
  for (const [table, list] of view.tables) {
    for (const [chain, rs] of list) {
      for (const r of rs) if (names.some((n) => new RegExp(`(?:-[jg]|--name) ${n}(?: |$)`).test(r))) out.push(`${table} ${chain}: ${r}`);
    }
  }
  return out;
}

/** Per-rule packet counter (iptables-save -c) summed over the rules of a chain that match. */
export function packetCount(netns: string, table: string, chain: string, match: (rule: string) => boolean): number {
  let n = 0;
  for (const line of inNetns(netns, 'iptables-save', ['-c', '-t', table]).split('\n')) {
    const m = /^\[(\d+):\d+\] -A (\S+) (.*)$/.exec(line);
    if (m && m[2] === chain && match(m[3]!)) n += Number(m[1]);
  }
  return n;
}

/** True when the node has exactly the proxy's base chains (no service's). */
export function onlyBaseChains(view: IptView): boolean {
  return JSON.stringify(ownedChains(view)) === JSON.stringify(BASE_CHAINS);
}
