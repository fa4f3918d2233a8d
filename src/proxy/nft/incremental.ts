// The nftables renderer's memory between syncs: one PortFragment per service port, who claims
// which map key, how many ports use each endpoint IP, and the names in use. A partial sync
// re-renders only the changed ports and returns two small IRs (before and after, holding just
// what those ports touch) for diff.ts; so a one-service change costs O(that service), never
// O(all services). No I/O: the backend applies what comes out.
//
// Invariant (tested against renderProxyIR after every step): ir() equals the full render of the
// input last passed to build() or update().
import type { MapElement } from '../../exec/nft/objects.js';
import { NameRegistry } from './names.js';
import { portView } from '../port-view.js';
import {
  assemble, claimElements, claimId, renderContext, renderPortFragment, portViews, sameContext, shellIR,
  type NftIR, type PortFragment, type RenderContext, type RenderOptions,
} from './render.js';
import type { ProxyInput } from '../types.js';

/** Before and after of a partial sync, restricted to what the changed ports touch. */
export interface PartialIRs {
  prev: NftIR;
  next: NftIR;
  /** Ports re-rendered. */
  rendered: number;
}

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export class NftRenderState {
  private readonly frags = new Map<string, PortFragment>();
  /**
   * claimId → the port key claiming it, or the keys (sorted) when several do: the first one
   * wins, as in assemble. A lone owner is kept as the key itself, not a one-element array: at
   * 10,000 services the claims are most of this state's memory.
   */
  private readonly claims = new Map<string, string | string[]>();
  /** endpoint IP → number of ports using it. */
  private readonly ipRefs = new Map<string, number>();
  private readonly names = new NameRegistry();

  private constructor(private readonly ctx: RenderContext, private readonly opts: RenderOptions) {}

  /** Everything rendered from scratch. */
  static build(input: ProxyInput, opts: RenderOptions = {}): NftRenderState {
    const state = new NftRenderState(renderContext(input, opts), opts);
    for (const p of portViews(input, opts)) state.add(renderPortFragment(p, state.ctx, state.names));
    return state;
  }

  /** The whole IR (for a full sync). */
  ir(): NftIR {
    return assemble(this.ctx, [...this.frags.keys()].sort(byKey).map((k) => this.frags.get(k)!));
  }

  /** Names of every chain, map and set the state's ruleset has (the shell's and the fragments'). */
  objectNames(): { chains: string[]; maps: string[]; sets: string[] } {
    const shell = shellIR(this.ctx, new Map(), []);
    const chains = shell.chains.map((c) => c.name);
    const sets = shell.sets.map((x) => x.name);
    for (const f of this.frags.values()) {
      for (const c of f.chains) chains.push(c.name);
      for (const x of f.sets) sets.push(x.name);
    }
    return { chains, maps: shell.maps.map((m) => m.name), sets };
  }

  get ports(): number {
    return this.frags.size;
  }

  /** One service port's fragment (its chains and shared-pick claims), if it renders anything. */
  fragment(key: string): PortFragment | undefined {
    return this.frags.get(key);
  }

  /** Every fragment chain's name → its service port key (nft 1.0.6's JSON listing omits chain comments). */
  chainKeys(): Map<string, string> {
    const out = new Map<string, string>();
    for (const f of this.frags.values()) for (const c of f.chains) out.set(c.name, f.key);
    return out;
  }

  /**
   * Re-renders the changed keys of input and updates the state. undefined when the node-wide
   * facts (cluster CIDRs, node IPs) differ: then only build() is right. Throws on invalid input
   * (the state is then unusable: build again).
   */
  update(input: ProxyInput, changed: ReadonlySet<string>): PartialIRs | undefined {
    if (!sameContext(renderContext(input, this.opts), this.ctx)) return undefined;
    const keys = [...changed].sort(byKey);
    const ports = new Map(input.ports.filter((p) => changed.has(p.svc.key)).map((p) => [p.svc.key, p]));
    // Render first, so a new port never reuses a name an old one still holds in the kernel.
    const fresh = new Map<string, PortFragment>();
    for (const key of keys) {
      const sp = ports.get(key);
      if (!sp) continue;
      const view = portView(sp);
      if (typeof view === 'string') this.opts.onSkip?.(key, view);
      else fresh.set(key, renderPortFragment(view, this.ctx, this.names));
    }
    const old = keys.flatMap((k) => (this.frags.has(k) ? [this.frags.get(k)!] : []));
    const touchedElements = new Set<string>();
    const touchedIps = new Set<string>();
    for (const f of [...old, ...fresh.values()]) {
      for (const e of f.elements) touchedElements.add(claimId(e));
      for (const ip of f.endpointIps) touchedIps.add(ip);
    }
    const before = this.view(touchedElements, touchedIps, old);
    for (const f of old) this.drop(f);
    for (const f of fresh.values()) this.add(f);
    const after = this.view(touchedElements, touchedIps, [...fresh.values()]);
    // Names the old fragments held and the new ones do not: free again.
    const kept = new Set([...fresh.values()].flatMap((f) => f.names.map(([p, id]) => p + '\0' + id)));
    for (const f of old) for (const [p, id] of f.names) if (!kept.has(p + '\0' + id)) this.names.release(p, id);
    return { prev: before, next: after, rendered: fresh.size };
  }

  /** The shell with the winners of the given claims, the given hairpin IPs still in use, and the fragments' own objects. */
  private view(claimIds: Set<string>, ips: Set<string>, frags: PortFragment[]): NftIR {
    const elements = new Map<string, MapElement[]>();
    for (const id of claimIds) {
      const owner = this.owner(id);
      const hit = owner === undefined ? undefined : this.frags.get(owner)!.elements.find((e) => claimId(e) === id);
      if (!hit) continue;
      const list = elements.get(hit.map);
      if (list) list.push(...claimElements(hit));
      else elements.set(hit.map, claimElements(hit));
    }
    const ir = shellIR(this.ctx, elements, [...ips].filter((ip) => (this.ipRefs.get(ip) ?? 0) > 0));
    for (const f of frags) {
      ir.chains.push(...f.chains);
      ir.sets.push(...f.sets);
    }
    return ir;
  }

  private owner(id: string): string | undefined {
    const c = this.claims.get(id);
    return typeof c === 'string' ? c : c?.[0];
  }

  private add(f: PortFragment): void {
    this.frags.set(f.key, f);
    for (const e of f.elements) {
      const id = claimId(e);
      const c = this.claims.get(id);
      if (c === undefined) this.claims.set(id, f.key);
      else if (c !== f.key && !(typeof c !== 'string' && c.includes(f.key))) this.claims.set(id, [...(typeof c === 'string' ? [c] : c), f.key].sort(byKey));
    }
    for (const ip of f.endpointIps) this.ipRefs.set(ip, (this.ipRefs.get(ip) ?? 0) + 1);
  }

  private drop(f: PortFragment): void {
    this.frags.delete(f.key);
    for (const e of f.elements) {
      const id = claimId(e);
      const c = this.claims.get(id);
      const owners = c === undefined ? [] : typeof c === 'string' ? [c] : c;
      const left = owners.filter((k) => k !== f.key);
      if (left.length === 0) this.claims.delete(id);
      else this.claims.set(id, left.length === 1 ? left[0] : left);
    }
    for (const ip of f.endpointIps) {
      const n = (this.ipRefs.get(ip) ?? 0) - 1;
      if (n > 0) this.ipRefs.set(ip, n);
      else this.ipRefs.delete(ip);
    }
  }
}
