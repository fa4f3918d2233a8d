// What to change in IPVS to go from what is there to the plan (pure). Only podwire's virtual
// services are ever touched: the caller says which observed ones are ours (owned). Graceful
// removal as kube-proxy's graceful termination manager, without its timer: a real server that
// leaves a TCP or SCTP service first gets weight 0 (no new connection picks it, existing ones go
// on), and is deleted by a later sync that sees its active and inactive connections at 0; a UDP
// one is deleted at once (its conntrack entries go with it, service-proxy.ts).
import type { L4Proto } from '../../exec/nft/objects.js';
import { ipvsKey, type RealServer, type VirtualServer } from './plan.js';

export interface ObservedDest {
  address: string;
  port: number;
  weight: number;
  /** undefined: not known (a partial sync diffs against its own last plan, not a dump). */
  activeConns?: number;
  inactiveConns?: number;
  /** From a dump: connections IPVS scheduled to it and their incoming bytes (`podwire services`). */
  stats?: { conns: number; inBytes: number };
}

export interface ObservedService {
  proto: L4Proto;
  address: string;
  port: number;
  scheduler: string;
  persistenceSeconds?: number;
  dests: ObservedDest[];
}

export interface ServiceRef {
  key: string;
  proto: L4Proto;
  address: string;
  port: number;
}

export type IpvsOp =
  | { op: 'addService'; service: VirtualServer }
  | { op: 'editService'; service: VirtualServer }
  | { op: 'delService'; service: ServiceRef }
  | { op: 'addDest'; service: ServiceRef; dest: RealServer }
  | { op: 'editDest'; service: ServiceRef; dest: RealServer }
  | { op: 'delDest'; service: ServiceRef; dest: RealServer };

export interface IpvsDiff {
  ops: IpvsOp[];
  /** Real servers kept at weight 0 until their connections end ("tcp/10.96.0.5:80 -> 10.244.1.7:8080"). */
  draining: string[];
}

export interface DiffOptions {
  /** Is this observed virtual service podwire's? Others are never changed. */
  owned: (s: ObservedService) => boolean;
  /** Limit the diff to these keys (a partial sync); undefined: every key. */
  only?: ReadonlySet<string>;
}

const ref = (s: { proto: L4Proto; address: string; port: number }): ServiceRef => ({ key: ipvsKey(s.proto, s.address, s.port), proto: s.proto, address: s.address, port: s.port });
const destKey = (d: { address: string; port: number }) => `${d.address}:${d.port}`;

function sameService(want: VirtualServer, have: ObservedService): boolean {
  return want.scheduler === have.scheduler && (want.persistenceSeconds ?? 0) === (have.persistenceSeconds ?? 0);
}

export function diffIpvs(desired: readonly VirtualServer[], observed: readonly ObservedService[], opts: DiffOptions): IpvsDiff {
  const inScope = (key: string) => opts.only === undefined || opts.only.has(key);
  const have = new Map<string, ObservedService>();
  for (const s of observed) {
    const key = ipvsKey(s.proto, s.address, s.port);
    if (inScope(key)) have.set(key, s);
  }
  const adds: IpvsOp[] = [];
  const edits: IpvsOp[] = [];
  const dels: IpvsOp[] = [];
  const draining: string[] = [];
  const wanted = new Set<string>();
  for (const want of desired) {
    // Answered by a local server: no virtual service (one left from before goes below).
    if (!inScope(want.key) || want.classification === 'nodeLocal') continue;
    wanted.add(want.key);
    const cur = have.get(want.key);
    const r = ref(want);
    if (!cur) {
      adds.push({ op: 'addService', service: want });
      for (const d of want.dests) adds.push({ op: 'addDest', service: r, dest: d });
      continue;
    }
    // Someone else's virtual service on our address (e.g. made by hand): left alone, and said so
    // by the caller through the ownership check, not taken over.
    if (!opts.owned(cur)) continue;
    if (!sameService(want, cur)) edits.push({ op: 'editService', service: want });
    const curDests = new Map(cur.dests.map((d) => [destKey(d), d]));
    for (const d of want.dests) {
      const c = curDests.get(destKey(d));
      if (!c) adds.push({ op: 'addDest', service: r, dest: d });
      else if (c.weight !== d.weight) edits.push({ op: 'editDest', service: r, dest: d });
      curDests.delete(destKey(d));
    }
    for (const c of curDests.values()) {
      const dest = { address: c.address, port: c.port, weight: 0 };
      if (want.proto === 'udp') dels.push({ op: 'delDest', service: r, dest });
      else if (c.weight !== 0) {
        edits.push({ op: 'editDest', service: r, dest });
        draining.push(`${want.key} -> ${destKey(c)}`);
      } else if (c.activeConns === 0 && c.inactiveConns === 0) dels.push({ op: 'delDest', service: r, dest });
      else draining.push(`${want.key} -> ${destKey(c)}`);
    }
  }
  for (const [key, cur] of have) {
    if (wanted.has(key) || !opts.owned(cur)) continue;
    // A virtual service whose service is gone goes at once, as kube-proxy's: its connections
    // end with it (expire_nodest_conn).
    dels.push({ op: 'delService', service: ref(cur) });
  }
  return { ops: [...adds, ...edits, ...dels], draining };
}

/** The observed form of a plan (what a partial sync diffs against): connection counts unknown. */
export function asObserved(services: Iterable<VirtualServer | ObservedService>): ObservedService[] {
  const out: ObservedService[] = [];
  for (const s of services) {
    out.push({
      proto: s.proto, address: s.address, port: s.port, scheduler: s.scheduler,
      ...(s.persistenceSeconds !== undefined ? { persistenceSeconds: s.persistenceSeconds } : {}),
      dests: s.dests.map((d) => ({ address: d.address, port: d.port, weight: d.weight })),
    });
  }
  return out;
}

/**
 * The state after ops were applied to it (pure; a new map, the input untouched): what a
 * partial sync diffs against next. A real server put at weight 0 stays, with its connection
 * counts unknown, until a full sync reads them.
 */
export function applyOps(state: ReadonlyMap<string, ObservedService>, ops: readonly IpvsOp[]): Map<string, ObservedService> {
  return applyOpsInPlace(new Map(state), ops);
}

/** applyOps on the map itself (the services it changes are replaced, never mutated: a caller's copies stay as they were). */
export function applyOpsInPlace(next: Map<string, ObservedService>, ops: readonly IpvsOp[]): Map<string, ObservedService> {
  const editable = (key: string): ObservedService | undefined => {
    const s = next.get(key);
    if (!s) return undefined;
    const copy = { ...s, dests: [...s.dests] };
    next.set(key, copy);
    return copy;
  };
  for (const o of ops) {
    switch (o.op) {
      case 'addService':
      case 'editService': {
        const cur = next.get(o.service.key);
        const [obs] = asObserved([o.service]);
        next.set(o.service.key, { ...obs!, dests: cur ? cur.dests : [] });
        break;
      }
      case 'delService':
        next.delete(o.service.key);
        break;
      case 'addDest':
      case 'editDest': {
        const s = editable(o.service.key);
        if (!s) break;
        const i = s.dests.findIndex((d) => d.address === o.dest.address && d.port === o.dest.port);
        const d = { address: o.dest.address, port: o.dest.port, weight: o.dest.weight };
        if (i < 0) s.dests.push(d);
        else s.dests[i] = d;
        break;
      }
      case 'delDest': {
        const s = editable(o.service.key);
        if (s) s.dests = s.dests.filter((d) => d.address !== o.dest.address || d.port !== o.dest.port);
        break;
      }
    }
  }
  return next;
}
