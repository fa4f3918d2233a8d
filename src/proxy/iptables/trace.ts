// A packet tracer over the IptIR, like kube-proxy's iptables test tracer
// (pkg/proxy/iptables/proxier_test.go, tracePacket): walks the chains the way netfilter would
// for the first packet of a connection, so tests assert where a packet goes rather than what
// the rules say. Pure.
//
// Model: a packet from outside (or a pod) enters nat PREROUTING; the routing decision then sends
// it to filter INPUT when its (possibly DNATed) destination is one of localAddresses (or in
// 127.0.0.0/8), else to filter FORWARD and nat POSTROUTING. A packet from a local process runs
// nat OUTPUT, filter OUTPUT (nat first: priority -100 before 0), nat POSTROUTING, then filter
// INPUT if it is addressed to this node. Built-in chains hold only our jumps, policy ACCEPT.
// DNAT, MASQUERADE and ACCEPT end the table's traversal for that hook; DROP and REJECT end the
// packet. `-m conntrack --ctstate NEW` always matches (first packet). The statistic cascade of
// a chain is resolved by opts.randomPick; recent lists start from opts.affinity.
import { PacketState, TraceError, inCidr, type TracePacket, type TraceOptions, type TraceResult as BaseTraceResult } from '../trace-common.js';
import type { BuiltinChain, Chain, IptIR, Match, Rule, TableName } from './ir.js';

export type { TracePacket, TraceOptions } from '../trace-common.js';
export { TraceError, inCidr };

export interface TraceResult extends BaseTraceResult {
  /** The SEP chains behind candidates, in the same order. */
  candidateChains?: string[];
}

type Outcome = 'continue' | 'accept' | 'drop' | 'reject';
const MAX_DEPTH = 32;
const HOOK_CHAINS: Record<string, [TableName, BuiltinChain][]> = {
  prerouting: [['nat', 'PREROUTING']],
  input: [['filter', 'INPUT']],
  forward: [['filter', 'FORWARD']],
  output: [['nat', 'OUTPUT'], ['filter', 'OUTPUT']],
  postrouting: [['nat', 'POSTROUTING']],
};

/** The arms of a chain's statistic cascade: rule indexes that can be taken, in order. */
function cascadeArms(chain: Chain): number[] {
  const arms: number[] = [];
  for (let i = 0; i < chain.rules.length; i++) {
    const stat = chain.rules[i].matches.find((m) => m.kind === 'statistic');
    const target = chain.rules[i].target.kind;
    if (!stat) {
      // The unconditional rule after the cascade is its last arm.
      if (arms.length && (target === 'jump' || target === 'goto')) arms.push(i);
      if (arms.length) break;
      continue;
    }
    const p = (stat as { probability: number }).probability;
    if (p > 0) arms.push(i);
    if (p >= 1) break; // nothing after a certain arm is reachable
  }
  return arms;
}

class Tracer extends PacketState {
  candidateChains?: string[];

  constructor(private readonly ir: IptIR, pkt: TracePacket, opts: TraceOptions) {
    super(pkt, opts);
  }

  isLocal(ip: string): boolean {
    return this.pkt.localAddresses.includes(ip) || inCidr(ip, '127.0.0.0/8');
  }

  private chain(table: TableName, name: string): Chain {
    const c = this.ir.tables[table].chains.find((x) => x.name === name);
    if (!c) throw new TraceError(`trace: no chain ${name} in ${table}`);
    return c;
  }

  /** The hook's built-in chains in table order; drop/reject stops the packet. */
  runHook(hook: string): 'accept' | 'drop' | 'reject' {
    for (const [table, builtin] of HOOK_CHAINS[hook]) {
      this.path.push(`${table}:${builtin}`);
      const rules = this.ir.tables[table].jumps.filter((j) => j.from === builtin).map((j) => j.rule);
      const out = this.runRules(table, { name: builtin, rules }, 0);
      if (out === 'drop' || out === 'reject') return out;
    }
    return 'accept';
  }

  private runChain(table: TableName, name: string, depth: number): Outcome {
    if (depth > MAX_DEPTH) throw new TraceError(`trace: jumps nest deeper than ${MAX_DEPTH} at ${name}`);
    this.path.push(name);
    return this.runRules(table, this.chain(table, name), depth);
  }

  private runRules(table: TableName, chain: Chain, depth: number): Outcome {
    const arms = cascadeArms(chain);
    const pick = arms.length ? arms[this.pickOf(arms.length)] : -1;
    for (let i = 0; i < chain.rules.length; i++) {
      const rule = chain.rules[i];
      this.rulesEvaluated++;
      if (arms.length && i === arms[0] && !this.candidates) this.recordCandidates(table, chain, arms);
      if (!rule.matches.every((m) => this.matches(m, i === pick))) continue;
      const out = this.act(table, rule, depth);
      if (out !== 'next') return out;
    }
    return 'continue';
  }

  private recordCandidates(table: TableName, chain: Chain, arms: number[]): void {
    this.candidateChains = arms.map((i) => (chain.rules[i].target as { chain: string }).chain);
    this.candidates = this.candidateChains.map((c) => {
      const dnat = this.chain(table, c).rules.find((r) => r.target.kind === 'dnat')?.target;
      return dnat?.kind === 'dnat' ? `${dnat.ip}:${dnat.port}` : c;
    });
  }

  private matches(m: Match, picked: boolean): boolean {
    switch (m.kind) {
      case 'protocol': return this.proto === m.proto;
      case 'source': return inCidr(this.saddr, m.cidr) !== Boolean(m.negate);
      case 'destination': return inCidr(this.daddr, m.cidr) !== Boolean(m.negate);
      case 'dport': return this.dport === m.port;
      case 'addrtype': return this.isLocal(m.field === 'src' ? this.saddr : this.daddr) !== Boolean(m.negate);
      case 'mark': return ((this.mark & m.mask) === (m.value & m.mask)) !== Boolean(m.negate);
      case 'statistic': return picked;
      case 'recent':
        if (m.op === 'set') this.namedSet(m.name).add(this.saddr);
        return this.namedSet(m.name).has(this.saddr);
      case 'ctstateNew': return true;
      case 'comment': return true;
    }
  }

  /** 'next': go on with the chain's next rule. */
  private act(table: TableName, rule: Rule, depth: number): Outcome | 'next' {
    const t = rule.target;
    switch (t.kind) {
      case 'jump': {
        const out = this.runChain(table, t.chain, depth + 1);
        return out === 'continue' ? 'next' : out;
      }
      case 'goto': return this.runChain(table, t.chain, depth + 1);
      case 'dnat':
        this.daddr = t.ip;
        this.dport = t.port;
        this.dnatTo = `${t.ip}:${t.port}`;
        return 'accept';
      case 'mark':
        this.mark = (t.op === 'or' ? this.mark | t.value : this.mark ^ t.value) >>> 0;
        return 'next';
      case 'masquerade':
        this.masquerade = true;
        return 'accept';
      case 'return': return 'continue';
      case 'accept': case 'drop': case 'reject': return t.kind;
    }
  }
}

export function tracePacket(ir: IptIR, pkt: TracePacket, opts: TraceOptions = {}): TraceResult {
  const t = new Tracer(ir, pkt, opts);
  const done = (verdict: TraceResult['verdict']): TraceResult => ({
    verdict: verdict === 'accept' && t.dnatTo ? 'dnat' : verdict,
    ...(t.dnatTo ? { dnatTo: t.dnatTo } : {}),
    masquerade: t.masquerade,
    path: t.path,
    ...(t.candidates ? { candidates: t.candidates, candidateChains: t.candidateChains } : {}),
    rulesEvaluated: t.rulesEvaluated,
  });
  const hooks: string[] = [pkt.hook];
  for (let i = 0; i < hooks.length; i++) {
    const verdict = t.runHook(hooks[i]);
    if (verdict !== 'accept') return done(verdict);
    // Routing decisions are taken on the destination as NAT left it.
    if (hooks[i] === 'prerouting') hooks.push(...(t.isLocal(t.daddr) ? ['input'] : ['forward', 'postrouting']));
    if (hooks[i] === 'output') hooks.push('postrouting', ...(t.isLocal(t.daddr) ? ['input'] : []));
  }
  return done('accept');
}
