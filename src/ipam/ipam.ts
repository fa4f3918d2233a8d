// FileIpam: the host-local style IPAM. Input is validated before any lock is taken; every public
// op then runs under the network's lock, reads a snapshot from the store, decides with the pure
// allocator and writes the result, then syncs before returning.
import { IpamError, type Allocation, type Ipam, type Owner, type RangeSet, type Reservation } from './types.js';
import { describeOwner, chooseAddresses, matchRequested, sameOwner, toAllocation, type ChosenAddress, type HeldIp } from './allocator.js';
import { allocatableCount, canonicalIp, isAllocatable, parseAddress, parseRangeSets, type Address } from './range.js';
import { validateNetworkName, validateOwner, type IpamStore, type StoredReservation, type StoreFactory } from './store.js';
import { DEFAULT_DATA_DIR, DiskStore, type DiskStoreOptions } from './disk-store.js';

export type FileIpamOptions = DiskStoreOptions;

interface Entry extends StoredReservation {
  ip: string; // canonical
  address: Address;
}

function compareAddress(a: Address, b: Address): number {
  return a.family - b.family || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
}

function toReservation(e: Entry): Reservation {
  return { ip: e.ip, containerId: e.owner?.containerId ?? '', ifname: e.owner?.ifname ?? '' };
}

export class FileIpam implements Ipam {
  private readonly openStore: StoreFactory;

  /** A data dir (default /var/lib/podwire/networks) with disk stores, or any store factory. */
  constructor(source: string | StoreFactory = DEFAULT_DATA_DIR, options: FileIpamOptions = {}) {
    this.openStore = typeof source === 'function' ? source : DiskStore.factory(source, options);
  }

  private locked<T>(network: string, fn: (store: IpamStore) => T): T {
    const store = this.openStore(validateNetworkName(network));
    store.lock();
    try {
      return fn(store);
    } finally {
      store.unlock();
    }
  }

  /** The store's reservations with canonical IPs, sorted; names that are not IPs are not ours. */
  private entries(store: IpamStore): Entry[] {
    const out: Entry[] = [];
    for (const r of store.list()) {
      const ip = canonicalIp(r.name);
      if (ip === undefined) continue;
      out.push({ ...r, ip, address: parseAddress(ip, 'ip') });
    }
    return out.sort((a, b) => compareAddress(a.address, b.address));
  }

  allocate(network: string, owner: Owner, rangeSets: RangeSet[], requested?: string[]): Allocation[] {
    validateNetworkName(network);
    const who = validateOwner(owner);
    const sets = parseRangeSets(rangeSets);
    const wanted = matchRequested(sets, requested);
    return this.locked(network, (store) => {
      const reservations: HeldIp[] = this.entries(store).map((e) => ({ ip: e.ip, owner: e.owner }));
      const cursors = sets.map((s) => store.readCursor(s.index));
      const chosen = chooseAddresses({ rangeSets: sets, reservations, owner: who, cursors, requested: wanted });
      this.commit(store, chosen, who);
      return chosen.map(toAllocation);
    });
  }

  /** Reserve the fresh ones of the chosen addresses; on any failure release exactly those, then rethrow. */
  private commit(store: IpamStore, chosen: ChosenAddress[], owner: Owner): void {
    const done: string[] = [];
    try {
      for (const p of chosen.filter((x) => x.fresh)) {
        // Cannot happen under the lock (chooseAddresses saw this IP free), unless someone bypassed it.
        if (!store.reserve(p.ip, owner)) throw new IpamError('unavailable', `${p.ip}: reserved by another process while the lock was held`);
        done.push(p.ip);
        store.writeCursor(p.rangeSetIndex, p.ip);
      }
      if (done.length) store.sync();
    } catch (e) {
      const left: string[] = [];
      for (const ip of done) {
        try {
          store.release(ip);
        } catch {
          left.push(ip);
        }
      }
      try {
        store.sync();
      } catch {
        // the original error matters more; the releases are visible to the next lock holder anyway
      }
      if (left.length === 0) throw e;
      const kind = e instanceof IpamError ? e.kind : 'io';
      const message = e instanceof Error ? e.message : String(e);
      throw new IpamError(kind, `${message}; rollback failed, still reserved for ${describeOwner(owner)}: ${left.join(', ')} (GC or DEL will release them)`);
    }
  }

  private releaseWhere(network: string, doomed: (e: Entry) => boolean): Reservation[] {
    return this.locked(network, (store) => {
      const released: Reservation[] = [];
      for (const e of this.entries(store).filter(doomed)) {
        if (store.release(e.name)) released.push(toReservation(e));
      }
      if (released.length) store.sync();
      return released;
    });
  }

  release(network: string, owner: Owner): Reservation[] {
    validateNetworkName(network);
    const who = validateOwner(owner);
    return this.releaseWhere(network, (e) => sameOwner(e.owner, who));
  }

  gc(network: string, valid: Owner[]): Reservation[] {
    validateNetworkName(network);
    if (!Array.isArray(valid)) throw new IpamError('invalid', 'gc: valid attachments must be an array of {containerId, ifname}');
    const key = (o: Owner): string => JSON.stringify([o.containerId, o.ifname]);
    const keep = new Set(valid.map((o, i) => key(validateOwner(o, `valid[${i}]`))));
    return this.releaseWhere(network, (e) => e.owner === undefined || !keep.has(key(e.owner)));
  }

  list(network: string): Reservation[] {
    validateNetworkName(network);
    return this.locked(network, (store) => this.entries(store).map(toReservation));
  }

  free(network: string, rangeSets: RangeSet[]): number[] {
    validateNetworkName(network);
    const sets = parseRangeSets(rangeSets);
    return this.locked(network, (store) => {
      const entries = this.entries(store);
      return sets.map((set) => {
        const used = entries.filter((e) => isAllocatable(set, e.address)).length;
        const n = allocatableCount(set) - BigInt(used);
        return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
      });
    });
  }
}
