// The IPVS mode's applier: IPVS balances (virtual services, real servers over generic netlink),
// the dummy device holds the service addresses, podwire's nftables table does the rest (ipvs-
// objects: masquerade, reject, drop). A full sync (start, node changes, periodic resync, after a
// failure) reads what IPVS holds and changes only what differs, so a restart adopts the existing
// virtual services without disturbing their connections; a partial sync diffs the changed
// service ports against its own record of the last sync and reads nothing.
import type { CommandRunner } from '../../exec/runner.js';
import { NFT_TABLE } from '../../exec/names.js';
import type { Transaction } from '../../exec/nft/transaction.js';
import type { ProxyBackend, ProxySyncReport } from '../backend.js';
import type { ProxyInput } from '../types.js';
import type { DnatCounter } from '../counters.js';
import { applyOps, applyOpsInPlace, diffIpvs, type IpvsOp, type ObservedService } from './diff.js';
import type { IpvsKernel, IpvsOwnership } from './kernel.js';
import { isIpvsName, renderIpvsNft } from './nft.js';
import { desiredFromPlan, updatePorts, type DesiredState } from './state.js';
import { fullIpvsTransaction, partialIpvsTransaction, removeIpvsTransaction, type ExistingIpvsObjects } from './nft-sync.js';
import { ipvsKey, planIpvs, type IpvsPlan, type PlanOptions } from './plan.js';

export type IpvsBackendOptions = PlanOptions;

interface SyncedState {
  /** The desired virtual services, per-port bookkeeping and reference counts (state.ts). */
  want: DesiredState;
  /** What IPVS holds of ours, as of the end of the last sync (weight-0 real servers included). */
  services: Map<string, ObservedService>;
  draining: string[];
}

const keyOf = (s: ObservedService) => ipvsKey(s.proto, s.address, s.port);

export class IpvsProxyBackend implements ProxyBackend {
  readonly mode = 'ipvs' as const;
  private state: SyncedState | undefined;

  constructor(
    private readonly kernel: IpvsKernel,
    private readonly runner: CommandRunner,
    private readonly ownership: IpvsOwnership,
    private readonly opts: IpvsBackendOptions = {},
  ) {}

  /** Real servers at weight 0 waiting for their connections to end, as of the last sync. */
  get draining(): readonly string[] {
    return this.state?.draining ?? [];
  }

  sync(input: ProxyInput, changed: ReadonlySet<string> | undefined): ProxySyncReport {
    const t0 = performance.now();
    const report = (scope: 'full' | 'partial', bytes: number): ProxySyncReport => ({ scope, bytes, ms: Math.round((performance.now() - t0) * 10) / 10 });
    try {
      if (changed !== undefined && this.state) return report('partial', this.partial(this.state, input, changed));
      this.state = undefined;
      return report('full', this.full(planIpvs(input, this.opts)));
    } catch (e) {
      this.state = undefined; // unknown kernel state: the next sync is a full one
      throw e;
    }
  }

  /**
   * False when a full sync is due: real servers are draining (only a dump sees their
   * connections end), or the device lost addresses or our table objects went missing.
   */
  intact(): boolean {
    const s = this.state;
    if (!s || s.draining.length > 0) return false;
    if (this.kernel.boundAddresses().length !== s.want.boundRefs.size) return false;
    const have = this.existing();
    const names = new Set([...have.chains, ...have.maps, ...have.sets]);
    const want = renderIpvsNft({ clusterCidrs: s.want.clusterCidrs, services: [], boundIps: [], hairpinIps: [] });
    return [...want.chains, ...want.maps, ...want.sets].every((o) => names.has(o.name));
  }

  /**
   * Per real server: the connections IPVS scheduled to it (`packets`, as the other modes count
   * the first packet of each connection) and their incoming bytes, from one dump; for the given
   * service port keys, or all.
   */
  counters(keys?: ReadonlySet<string>): DnatCounter[] {
    const s = this.state;
    if (!s) throw new Error('the IPVS proxy has not synced yet (or its last sync failed): no virtual services to read counters from');
    const wanted = new Set<string>();
    for (const v of s.want.desired.values()) if (!keys || keys.has(v.portKey)) wanted.add(v.key);
    const out: DnatCounter[] = [];
    for (const v of this.kernel.listServices()) {
      if (!wanted.has(keyOf(v))) continue;
      for (const d of v.dests) {
        out.push({ in: 'ipvs', dest: { ip: v.address, port: v.port, proto: v.proto }, endpoint: { ip: d.address, port: d.port }, packets: d.stats?.conns ?? 0, bytes: d.stats?.inBytes ?? 0 });
      }
    }
    return out;
  }

  remove(): void {
    this.state = undefined;
    if (this.kernel.present()) {
      const bound = new Set(this.kernel.boundAddresses());
      const owned = new Set(this.ownership.read());
      for (const s of this.kernel.listServices()) {
        if (owned.has(keyOf(s)) || bound.has(s.address)) this.kernel.apply({ op: 'delService', service: { key: keyOf(s), proto: s.proto, address: s.address, port: s.port } });
      }
    }
    this.kernel.removeDevice();
    this.runNft(removeIpvsTransaction(NFT_TABLE, this.existing()));
    // Only when there is a record: an agent in another mode that never ran IPVS leaves no file.
    if (this.ownership.read().length) this.ownership.write([]);
  }

  private full(plan: IpvsPlan): number {
    this.kernel.prepare(this.opts.scheduler ?? 'rr');
    const observed = this.kernel.listServices();
    const observedByKey = new Map(observed.map((o) => [keyOf(o), o]));
    const bound = new Set(this.kernel.boundAddresses());
    const recorded = new Set(this.ownership.read());
    const owned = (s: ObservedService) => recorded.has(keyOf(s)) || bound.has(s.address);
    for (const s of plan.services) {
      const cur = observedByKey.get(s.key);
      if (cur && !owned(cur)) this.opts.onSkip?.(s.portKey, `IPVS already has a virtual service ${s.key} that podwire did not make: left alone`);
    }
    const diff = diffIpvs(plan.services, observed, { owned });
    // Addresses first, so a new virtual service answers as soon as it exists; the nft elements
    // and IPVS in one pass each; addresses no service uses last.
    const want = new Set(plan.boundIps);
    this.kernel.bind(plan.boundIps.filter((ip) => !bound.has(ip)));
    this.applyIpvs(diff.ops);
    const bytes = this.runNft(fullIpvsTransaction(renderIpvsNft(plan), this.existing()));
    this.kernel.unbind([...bound].filter((ip) => !want.has(ip)));
    const ours = new Map<string, ObservedService>();
    for (const s of observed) if (owned(s)) ours.set(keyOf(s), s);
    const services = applyOps(ours, diff.ops);
    this.ownership.write([...services.keys()].sort());
    this.state = { want: desiredFromPlan(plan), services, draining: diff.draining };
    return bytes;
  }

  /** O(changed ports): only they are planned, diffed and written (state.ts keeps the rest). */
  private partial(state: SyncedState, input: ProxyInput, changed: ReadonlySet<string>): number {
    const plan = planIpvs({ ...input, ports: input.ports.filter((p) => changed.has(p.svc.key)) }, this.opts);
    const u = updatePorts(state.want, plan, changed, this.opts.onSkip);
    const observed: ObservedService[] = [];
    for (const k of u.scope) {
      const o = state.services.get(k);
      if (o) observed.push(o);
    }
    const diff = diffIpvs(u.next, observed, { owned: () => true, only: u.scope });
    this.kernel.bind(u.bind);
    this.applyIpvs(diff.ops);
    const tx = partialIpvsTransaction(NFT_TABLE, u.prevElements, u.nextElements);
    const bytes = tx.size ? this.runNft(tx) : 0;
    this.kernel.unbind(u.unbind);
    applyOpsInPlace(state.services, diff.ops);
    if (diff.ops.some((o) => o.op === 'addService' || o.op === 'delService')) this.ownership.write([...state.services.keys()].sort());
    // Draining outside this sync's scope stays as it was; inside it, as the diff says.
    state.draining = [...state.draining.filter((d) => !u.scope.has(d.split(' ')[0]!)), ...diff.draining];
    return bytes;
  }

  private applyIpvs(ops: readonly IpvsOp[]): void {
    if (ops.length === 1) this.kernel.apply(ops[0]!);
    else if (ops.length > 1) this.kernel.applyAll(ops);
  }

  /** Names of the ipvs- objects in table inet podwire (names only, never rules or elements). */
  private existing(): ExistingIpvsObjects {
    const out: ExistingIpvsObjects = { chains: [], maps: [], sets: [] };
    for (const [what, list] of [['chains', out.chains], ['sets', out.sets], ['maps', out.maps]] as const) {
      const r = this.runner.run('nft', ['-j', '-t', 'list', what, 'inet']);
      if (r.code !== 0) throw new Error(`nft list ${what} inet failed (exit ${r.code}): ${r.stderr.trim()}`);
      const kind = what.slice(0, -1);
      for (const item of (JSON.parse(r.stdout) as { nftables: Record<string, { name?: string; table?: string }>[] }).nftables) {
        const o = item[kind];
        if (o?.table === NFT_TABLE && o.name && isIpvsName(o.name)) list.push(o.name);
      }
    }
    return out;
  }

  private runNft(tx: Transaction): number {
    const script = tx.text();
    if (!script) return 0;
    const r = this.runner.run('nft', ['-f', '-'], script);
    if (r.code !== 0) {
      const first = script.split('\n').slice(0, 3).join(' | ');
      throw new Error(`nft -f failed (exit ${r.code}): ${r.stderr.trim().slice(0, 1000)} (script of ${script.length} bytes starting: ${first})`);
    }
    return script.length;
  }
}
