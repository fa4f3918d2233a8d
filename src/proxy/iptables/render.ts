// ProxyInput → IptIR: podwire's service proxy for iptables, modelled on kube-proxy's iptables
// mode (pkg/proxy/iptables/proxier.go) with PODWIRE- names. Pure. IPv4 only for now: IPv6
// ClusterIPs, external/LB IPs, endpoints and cluster CIDRs are skipped (a v6-only service renders
// nothing and is reported through opts.onSkip); an ip6tables twin is the missing piece.
// Validation and the IPv4 view of the input are shared with the nftables renderer (../port-view.ts).
//
// nat                                                    (kube-proxy)
//   PREROUTING, OUTPUT  → PODWIRE-SERVICES                 KUBE-SERVICES
//   PODWIRE-SERVICES      per (ClusterIP | external IP | LB IP, proto, port) → SVC/SVL or EXT,
//                         last: -m addrtype --dst-type LOCAL → PODWIRE-NODEPORTS
//   PODWIRE-NODEPORTS     per (proto, nodePort) → EXT      KUBE-NODEPORTS
//   PODWIRE-SVC-<h>       Cluster policy: masq mark for ClusterIP traffic from outside the pod
//                         network, affinity (recent --rcheck), statistic cascade → SEP
//   PODWIRE-SVL-<h>       Local policy: the same over this node's endpoints      KUBE-SVL-
//   PODWIRE-EXT-<h>       external traffic: Cluster → mark, SVC; Local → pods and the node
//                         short-circuit to SVC (the node masqueraded), others → SVL (client IP kept)
//   PODWIRE-SEP-<h>       hairpin mark, recent --set, DNAT
//   PODWIRE-MARK-MASQ     MARK --or-mark MASQ_MARK          KUBE-MARK-MASQ
//   POSTROUTING → PODWIRE-POSTROUTING: masquerade marked packets, clear the mark
// filter
//   INPUT, FORWARD, OUTPUT (ctstate NEW) → PODWIRE-SERVICES-FILTER: REJECT service ports
//   without any endpoint, DROP Local-policy traffic this node has no endpoint for. The filter
//   hooks run after NAT's DNAT on every path, so only packets that were not DNATed match.
import { MASQ_MARK, type ProxyInput, type ServicePortEndpoints } from '../types.js';
import { ipv4Number } from '../../net/ip.js';
import { ProxyRenderError, clusterCidrs, ipv4Only, validPortViews, type Endpoint, type PortView } from '../port-view.js';
import type { BuiltinJump, Chain, IptIR, Match, Rule, Target } from './ir.js';
import { ChainNames, PREFIX, endpointId } from './names.js';

export { ProxyRenderError };

export const IPT_CHAINS = {
  services: 'PODWIRE-SERVICES',
  nodePorts: 'PODWIRE-NODEPORTS',
  markMasq: 'PODWIRE-MARK-MASQ',
  postrouting: 'PODWIRE-POSTROUTING',
  servicesFilter: 'PODWIRE-SERVICES-FILTER',
} as const;

export interface RenderOptions {
  /** Called for each service port that renders nothing, and why (headless, IPv6 only, …). */
  onSkip?: (key: string, why: string) => void;
}

const comment = (text: string): Match => ({ kind: 'comment', text });
const jump = (chain: string): Target => ({ kind: 'jump', chain });
const rule = (matches: Match[], target: Target): Rule => ({ matches, target });
const MARK_MASQ = jump(IPT_CHAINS.markMasq);
const LOCAL_SRC: Match = { kind: 'addrtype', field: 'src', type: 'LOCAL' };

function baseNatChains(services: Rule[], nodePorts: Rule[]): Chain[] {
  const tail = rule([
    comment('podwire service nodeports; NOTE: this must be the last rule in this chain'),
    { kind: 'addrtype', field: 'dst', type: 'LOCAL' },
    // kube-proxy's iptables default (every local address, not input.nodeIPs as the nftables
    // renderer does): one rule whatever the node's addresses, so a new address needs no sync.
    // podwire does not set route_localnet, so a NodePort on 127.0.0.1 could never be answered
    // (the DNATed packet keeps a loopback source): refuse it here as kube-proxy does then.
    { kind: 'destination', cidr: '127.0.0.0/8', negate: true },
  ], jump(IPT_CHAINS.nodePorts));
  return [
    { name: IPT_CHAINS.services, rules: [...services, tail] },
    { name: IPT_CHAINS.nodePorts, rules: nodePorts },
    { name: IPT_CHAINS.markMasq, rules: [rule([], { kind: 'mark', op: 'or', value: MASQ_MARK })] },
    { name: IPT_CHAINS.postrouting, rules: [
      rule([{ kind: 'mark', value: MASQ_MARK, mask: MASQ_MARK, negate: true }], { kind: 'return' }),
      // Cleared so a packet that is routed here again (e.g. re-entering via a tunnel) is not masqueraded twice.
      rule([], { kind: 'mark', op: 'xor', value: MASQ_MARK }),
      rule([comment('podwire service traffic requiring SNAT')], { kind: 'masquerade', randomFully: true }),
    ] },
  ];
}

function builtinJumps(): { nat: BuiltinJump[]; filter: BuiltinJump[] } {
  const portals = comment('podwire service portals');
  const toFilter = (from: BuiltinJump['from']): BuiltinJump => ({
    from, rule: rule([{ kind: 'ctstateNew' }, portals], jump(IPT_CHAINS.servicesFilter)),
  });
  return {
    nat: [
      { from: 'PREROUTING', rule: rule([portals], jump(IPT_CHAINS.services)) },
      { from: 'OUTPUT', rule: rule([portals], jump(IPT_CHAINS.services)) },
      { from: 'POSTROUTING', rule: rule([comment('podwire postrouting rules')], jump(IPT_CHAINS.postrouting)) },
    ],
    filter: [toFilter('INPUT'), toFilter('FORWARD'), toFilter('OUTPUT')],
  };
}

/** Where one service port's rules go. */
interface Output {
  services: Rule[];
  nodePorts: Rule[];
  filter: Rule[];
  chains: Chain[];
}

/** One service port, in kube-proxy's terms (syncProxyRules' per-service loop). */
class PortRenderer {
  private readonly svc: string;
  private readonly svl: string;
  private readonly ext: string;
  /** Cluster-policy endpoints (SVC) and this node's (SVL). */
  private readonly clusterEps: Endpoint[];
  private readonly localEps: Endpoint[];
  private readonly used = new Map<string, Endpoint>();

  constructor(
    private readonly p: PortView,
    private readonly info: ServicePortEndpoints['svc'],
    private readonly names: ChainNames,
    private readonly cidr: string | undefined,
  ) {
    this.svc = names.get(PREFIX.svc, p.key);
    this.svl = names.get(PREFIX.svl, p.key);
    this.ext = names.get(PREFIX.ext, p.key);
    const internalLocal = info.internalPolicyLocal;
    this.localEps = internalLocal ? p.internal : p.externalLocal ? p.external : [];
    // With both policies Local, pods and the node still reach the service cluster-wide through
    // EXT's short-circuit, so SVC then holds every usable endpoint.
    this.clusterEps = !internalLocal ? p.internal : !p.externalLocal ? p.external : p.all;
  }

  private get accessible(): boolean {
    return this.p.nodePort !== undefined || this.p.externalIps.length > 0;
  }

  private get internalChain(): string {
    return this.info.internalPolicyLocal ? this.svl : this.svc;
  }

  /** Reject where nothing serves the port anywhere; drop where only the Local policy leaves nothing. */
  private filterTarget(): { target: Target; why: string } {
    if (this.p.all.length === 0) {
      return { target: { kind: 'reject', with: this.p.proto === 'tcp' ? 'tcp-reset' : 'icmp-port-unreachable' }, why: 'has no endpoints' };
    }
    return { target: { kind: 'drop' }, why: 'has no local endpoints' };
  }

  private dest(ip: string, port: number): Match[] {
    return [{ kind: 'destination', cidr: ip }, { kind: 'protocol', proto: this.p.proto }, { kind: 'dport', port }];
  }

  /** The rules in PODWIRE-SERVICES, PODWIRE-NODEPORTS and PODWIRE-SERVICES-FILTER. */
  frontends(out: Output): void {
    const p = this.p;
    const hasEndpoints = p.all.length > 0;
    const block = this.filterTarget();
    const blocked = (matches: Match[]) => out.filter.push(rule([comment(`${p.key} ${block.why}`), ...matches], block.target));
    for (const ip of p.clusterIps) {
      if (p.internal.length) out.services.push(rule([comment(`${p.key} cluster IP`), ...this.dest(ip, p.port)], jump(this.internalChain)));
      else blocked(this.dest(ip, p.port));
    }
    const extIps = ipv4Only(`${p.key} external IPs`, this.info.externalIPs);
    for (const ip of p.externalIps) {
      const what = extIps.includes(ip) ? 'external IP' : 'loadbalancer IP';
      if (hasEndpoints) out.services.push(rule([comment(`${p.key} ${what}`), ...this.dest(ip, p.port)], jump(this.ext)));
      // Local policy without a local endpoint: whatever EXT did not short-circuit is dropped.
      if (!p.external.length) blocked(this.dest(ip, p.port));
    }
    if (p.nodePort === undefined) return;
    const nodePort: Match[] = [{ kind: 'protocol', proto: p.proto }, { kind: 'dport', port: p.nodePort }];
    if (hasEndpoints) out.nodePorts.push(rule([comment(p.key), ...nodePort], jump(this.ext)));
    if (!p.external.length) blocked([{ kind: 'addrtype', field: 'dst', type: 'LOCAL' }, ...nodePort]);
  }

  /** SVC, SVL, EXT and the SEP chains they use. */
  chains(out: Output): void {
    const p = this.p;
    if (p.all.length === 0) return; // filter rules only
    const internalLocal = this.info.internalPolicyLocal;
    if (!internalLocal || this.accessible) {
      out.chains.push({ name: this.svc, rules: [...(internalLocal ? [] : this.clusterIpMasq()), ...this.loadBalance(this.clusterEps)] });
    }
    if (this.localEps.length && (internalLocal || (this.accessible && p.externalLocal))) {
      out.chains.push({ name: this.svl, rules: [...(internalLocal ? this.clusterIpMasq() : []), ...this.loadBalance(this.localEps)] });
    }
    if (this.accessible) out.chains.push({ name: this.ext, rules: this.externalRules() });
    const eps = [...this.used.values()].sort((a, b) => ipv4Number(a.ip) - ipv4Number(b.ip) || a.port - b.port);
    out.chains.push(...eps.map((e) => this.endpointChain(e)));
  }

  /**
   * Traffic to the ClusterIP from outside the pod network (the node, or clients routed to the
   * service CIDR) is masqueraded so replies come back through this node. Restricted to the
   * ClusterIP because EXT also jumps to this chain. No cluster CIDR known: masquerade all of it
   * rather than risk asymmetric replies.
   */
  private clusterIpMasq(): Rule[] {
    const p = this.p;
    const notPods: Match[] = this.cidr ? [{ kind: 'source', cidr: this.cidr, negate: true }] : [];
    return p.clusterIps.map((ip) => rule([comment(`${p.key} cluster IP`), ...this.dest(ip, p.port), ...notPods], MARK_MASQ));
  }

  private sep(e: Endpoint): string {
    const id = endpointId(this.p.key, e.ip, e.port);
    this.used.set(id, e);
    return this.names.get(PREFIX.sep, id);
  }

  /**
   * kube-proxy's writeServiceToEndpointRules: a client seen within the affinity timeout goes
   * back to its endpoint; otherwise arm i of n is taken with probability 1/(n-i) of what reaches
   * it, which makes every endpoint 1/n, and the last arm is unconditional.
   */
  private loadBalance(eps: Endpoint[]): Rule[] {
    const p = this.p;
    const rules: Rule[] = [];
    if (p.affinitySeconds !== undefined) {
      for (const e of eps) {
        const sep = this.sep(e);
        rules.push(rule([
          comment(`${p.key} -> ${e.ip}:${e.port}`),
          { kind: 'recent', op: 'rcheck', name: sep, seconds: p.affinitySeconds, reap: true },
        ], jump(sep)));
      }
    }
    eps.forEach((e, i) => {
      const pick: Match[] = i < eps.length - 1 ? [{ kind: 'statistic', probability: 1 / (eps.length - i) }] : [];
      rules.push(rule([comment(`${p.key} -> ${e.ip}:${e.port}`), ...pick], jump(this.sep(e))));
    });
    return rules;
  }

  private externalRules(): Rule[] {
    const p = this.p;
    if (!p.externalLocal) {
      // Cluster policy: the endpoint may be on another node, and the reply must come back
      // through this one to be un-DNATed, so masquerade whatever the source.
      return [rule([comment(`masquerade traffic for ${p.key} external destinations`)], MARK_MASQ), rule([], jump(this.svc))];
    }
    // Local policy keeps the client IP and uses only local endpoints, but pods and the node are
    // not external clients: they go cluster-wide, as if out to a load balancer and back in. The
    // node's own traffic is masqueraded: its source is a node address the endpoint cannot answer.
    const rules: Rule[] = [];
    if (this.cidr) rules.push(rule([comment(`pod traffic for ${p.key} external destinations`), { kind: 'source', cidr: this.cidr }], jump(this.svc)));
    rules.push(rule([comment(`masquerade LOCAL traffic for ${p.key} external destinations`), LOCAL_SRC], MARK_MASQ));
    rules.push(rule([comment(`route LOCAL traffic for ${p.key} external destinations`), LOCAL_SRC], jump(this.svc)));
    // Without a local endpoint the rest falls through un-DNATed and PODWIRE-SERVICES-FILTER drops it.
    if (p.external.length) rules.push(rule([], jump(this.svl)));
    return rules;
  }

  private endpointChain(e: Endpoint): Chain {
    const p = this.p;
    const name = this.sep(e);
    // Hairpin: a pod reaching itself through the service must see the reply come from the
    // service, so its source is rewritten to the node (bridge) address.
    const hairpin = rule([comment(p.key), { kind: 'source', cidr: e.ip }], MARK_MASQ);
    const record: Match[] = p.affinitySeconds !== undefined ? [{ kind: 'recent', op: 'set', name }] : [];
    const dnat = rule([comment(p.key), { kind: 'protocol', proto: p.proto }, ...record], { kind: 'dnat', ip: e.ip, port: e.port });
    return { name, rules: [hairpin, dnat] };
  }
}

export function renderIptablesIR(input: ProxyInput, opts: RenderOptions = {}): IptIR {
  const cidrs = clusterCidrs(input.clusterCidrs ?? []);
  // `! -s` takes one CIDR; the agent's masquerade allows one per family too.
  if (cidrs.length > 1) throw new ProxyRenderError(`proxy: at most one IPv4 cluster CIDR is supported, got ${cidrs.join(', ')}`);
  const names = new ChainNames();
  const out: Output = { services: [], nodePorts: [], filter: [], chains: [] };
  for (const { view, info } of validPortViews(input, opts.onSkip)) {
    const r = new PortRenderer(view, info, names, cidrs[0]);
    r.frontends(out);
    r.chains(out);
  }
  const jumps = builtinJumps();
  return {
    family: 4,
    tables: {
      nat: { chains: [...baseNatChains(out.services, out.nodePorts), ...out.chains], jumps: jumps.nat },
      filter: { chains: [{ name: IPT_CHAINS.servicesFilter, rules: out.filter }], jumps: jumps.filter },
    },
  };
}
