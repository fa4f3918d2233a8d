// A packet tracer over the NftIR, like kube-proxy's nftables tracer test: walks the base chains
// of each hook in priority order the way netfilter would for the first packet of a connection,
// so tests can assert where a packet goes instead of what the rules say. Pure.
//
// Model: a packet from outside (or from a pod) enters at prerouting; after it, the routing
// decision sends it to input when its (possibly DNATed) destination is one of localAddresses,
// else to forward then postrouting. A packet from a local process enters at output, then
// postrouting, then input if it is addressed to this node. NAT statements, reject, drop and
// accept end the current base chain (the hook's next base chain still runs, except after drop
// and reject); falling off a base chain is its policy, accept. `ct state new` always matches
// (first packet); affinity sets start with the IR's elements plus opts.affinity.
import { PacketState, TraceError, inCidr, type TracePacket as BaseTracePacket, type TraceOptions, type TraceResult } from '../trace-common.js';
import { priorityValue, type Chain, type Hook, type Match, type Rule, type Verdict } from '../../exec/nft/objects.js';
import type { NftIR } from './render.js';

export type { TraceOptions, TraceResult } from '../trace-common.js';
export { TraceError, inCidr };

export interface TracePacket extends BaseTracePacket {
  /** Sent by a process on the node: same as hook 'output'. */
  fromLocalProcess?: boolean;
}

type Outcome = { end: 'continue' } | { end: 'accept' | 'drop' | 'reject' };
const CONTINUE: Outcome = { end: 'continue' };
const MAX_DEPTH = 32;

class Tracer extends PacketState {
  private readonly chains: Map<string, Chain>;

  constructor(private readonly ir: NftIR, pkt: TracePacket, opts: TraceOptions) {
    super(pkt, opts, ir.sets.map((set) => [set.name, set.elements] as const));
    this.chains = new Map(ir.chains.map((c) => [c.name, c]));
  }

  isLocal(ip: string): boolean {
    return this.pkt.localAddresses.includes(ip);
  }

  /** Every base chain of the hook, lowest priority first; drop/reject stops the packet. */
  runHook(hook: Hook): 'accept' | 'drop' | 'reject' {
    const bases = this.ir.chains.filter((c) => c.base?.hook === hook).sort((a, b) => priorityValue(a.base!.priority) - priorityValue(b.base!.priority));
    for (const c of bases) {
      const out = this.runChain(c.name, 0);
      if (out.end === 'drop' || out.end === 'reject') return out.end;
    }
    return 'accept';
  }

  private runChain(name: string, depth: number): Outcome {
    const chain = this.chains.get(name);
    if (!chain) throw new TraceError(`trace: no chain ${name}`);
    if (depth > MAX_DEPTH) throw new TraceError(`trace: jumps nest deeper than ${MAX_DEPTH} at ${name}`);
    this.path.push(name);
    for (const rule of chain.rules) {
      this.rulesEvaluated++;
      if (!rule.matches.every((m) => this.matches(m))) continue;
      const out = this.act(rule, depth);
      if (out !== 'next') return out;
    }
    return CONTINUE;
  }

  private matches(m: Match): boolean {
    const addr = (field: 'saddr' | 'daddr') => (field === 'saddr' ? this.saddr : this.daddr);
    switch (m.kind) {
      // An ip6 match never matches: the tracer follows IPv4 packets only.
      case 'addr': return m.family !== 6 && m.cidrs.some((c) => inCidr(addr(m.field), c)) !== Boolean(m.negate);
      case 'addrInSet': return [...this.namedSet(m.set)].some((e) => inCidr(addr(m.field), e));
      case 'l4proto': return this.proto === m.proto;
      case 'l4protoIn': return (m.protos as readonly string[]).includes(this.proto);
      case 'dport': return this.dport === m.port;
      case 'fibLocal': return this.isLocal(addr(m.field));
      case 'mark': return ((this.mark & m.mask) !== 0) === m.isSet;
      case 'ctStateNew': return true;
      case 'ctStatusDnat': return this.dnatTo !== undefined;
      case 'addrPairInSet': return this.namedSet(m.set).has(`${this.saddr} . ${this.daddr}`);
    }
  }

  /** 'next': go on with the chain's next rule. */
  private act(rule: Rule, depth: number): Outcome | 'next' {
    const a = rule.action;
    switch (a.kind) {
      case 'verdict': return this.verdict(a.verdict, depth);
      case 'vmap': {
        if (a.key === 'saddr' && a.family === 6) return 'next';
        const key = a.key === 'daddr.proto.dport' ? [this.daddr, this.proto, String(this.dport)] : a.key === 'saddr' ? [this.saddr] : [this.proto, String(this.dport)];
        const map = this.ir.maps.find((m) => m.name === a.map);
        if (!map) throw new TraceError(`trace: no map ${a.map}`);
        const hit = map.elements.find((e) => e.key.length === key.length && e.key.every((k, i) => k === key[i]));
        if (hit && !hit.verdict) throw new TraceError(`trace: ${a.map} is not a verdict map`);
        return hit ? this.verdict(hit.verdict!, depth) : 'next';
      }
      case 'numgen': {
        this.candidates = a.chains.map((c) => this.dnatTarget(c));
        const n = a.chains.length;
        const pick = this.pickOf(n);
        // A cascade evaluates its arms up to the one taken (the last needs no numgen).
        if (a.form === 'cascade') this.rulesEvaluated += Math.min(pick + 1, n) - 1;
        return this.verdict({ kind: 'goto', chain: a.chains[pick] }, depth);
      }
      case 'dnatPick': {
        const n = a.endpoints.length;
        if (n === 0) throw new TraceError('trace: dnat pick over no endpoints');
        this.candidates = a.endpoints.map((e) => `${e.ip}:${e.port}`);
        const pick = this.pickOf(n);
        if (a.form === 'cascade') this.rulesEvaluated += Math.min(pick + 1, n) - 1;
        const ep = a.endpoints[pick]!;
        if (rule.counter) this.counted = `${this.path.at(-1)} ${a.form === 'cascade' || n === 1 ? `${ep.ip}:${ep.port}` : '*'}`;
        return this.act({ matches: [], action: { kind: 'dnat', ...ep } }, depth);
      }
      case 'dnatMap': {
        const map = this.ir.maps.find((m) => m.name === a.map);
        if (!map) throw new TraceError(`trace: no map ${a.map}`);
        if (this.proto !== a.proto) throw new TraceError(`trace: ${a.map} reads ${a.proto} dport of a ${this.proto} packet (no l4proto match before it)`);
        const prefix = [this.daddr, String(this.dport)];
        const arms = map.elements.filter((e) => e.key.length === 3 && prefix.every((k, i) => e.key[i] === k)).sort((x, y) => Number(x.key[2]) - Number(y.key[2]));
        if (arms.length === 0) return 'next'; // no element: the expression breaks, the rule does not match
        if (arms.some((e, i) => Number(e.key[2]) !== i || !e.data) || arms.length !== a.mod) throw new TraceError(`trace: ${a.map} holds ${arms.length} arms for ${prefix.join(' . ')}, the rule picks mod ${a.mod}`);
        this.candidates = arms.map((e) => `${e.data![0]}:${e.data![1]}`);
        const pick = this.pickOf(a.mod);
        if (map.counter) this.counted = `${map.name} ${arms[pick]!.key.join(' . ')}`;
        return this.act({ matches: [], action: { kind: 'dnat', ip: arms[pick]!.data![0]!, port: Number(arms[pick]!.data![1]) } }, depth);
      }
      case 'dnat':
        if (rule.counter) this.counted = `${this.path.at(-1)} ${a.ip}:${a.port}`;
        this.daddr = a.ip;
        this.dport = a.port;
        this.dnatTo = `${a.ip}:${a.port}`;
        return { end: 'accept' };
      case 'mark':
        this.mark = a.op === 'or' ? this.mark | a.value : this.mark ^ a.value;
        return 'next';
      case 'masquerade':
        this.masquerade = true;
        return { end: 'accept' };
      case 'reject': return { end: 'reject' };
      case 'notrack': return 'next'; // the proxy renders none; it changes no verdict
      case 'updateSet':
        this.namedSet(a.set).add(this.saddr);
        return 'next';
    }
  }

  private verdict(v: Verdict, depth: number): Outcome | 'next' {
    switch (v.kind) {
      case 'accept': case 'drop': return { end: v.kind };
      case 'return': return CONTINUE;
      case 'continue': return 'next';
      case 'goto': return this.runChain(v.chain, depth + 1);
      case 'jump': {
        const out = this.runChain(v.chain, depth + 1);
        return out.end === 'continue' ? 'next' : out;
      }
    }
  }

  /** The IP:PORT an endpoint chain DNATs to (what a numgen arm leads to). */
  private dnatTarget(chain: string): string {
    const dnat = this.chains.get(chain)?.rules.find((r) => r.action.kind === 'dnat')?.action;
    return dnat?.kind === 'dnat' ? `${dnat.ip}:${dnat.port}` : chain;
  }
}

export function tracePacket(ir: NftIR, pkt: TracePacket, opts: TraceOptions = {}): TraceResult {
  const t = new Tracer(ir, pkt, opts);
  const hooks: Hook[] = [];
  const done = (verdict: TraceResult['verdict']): TraceResult => ({
    verdict: verdict === 'accept' && t.dnatTo ? 'dnat' : verdict,
    ...(t.dnatTo ? { dnatTo: t.dnatTo } : {}),
    masquerade: t.masquerade,
    path: t.path,
    ...(t.candidates ? { candidates: t.candidates } : {}),
    rulesEvaluated: t.rulesEvaluated,
    ...(t.counted ? { counted: t.counted } : {}),
  });
  const fromLocal = pkt.hook === 'output' || pkt.fromLocalProcess === true;
  hooks.push(fromLocal ? 'output' : 'prerouting');
  for (let i = 0; i < hooks.length; i++) {
    const verdict = t.runHook(hooks[i]);
    if (verdict !== 'accept') return done(verdict);
    // Routing decisions are taken on the destination as NAT left it.
    if (hooks[i] === 'prerouting') hooks.push(...(t.isLocal(t.daddr) ? (['input'] as const) : (['forward', 'postrouting'] as const)));
    if (hooks[i] === 'output') hooks.push('postrouting', ...(t.isLocal(t.daddr) ? (['input'] as const) : []));
  }
  return done('accept');
}
