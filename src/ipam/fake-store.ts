// In-memory IpamStore for unit tests: same contract as DiskStore (records are the same text, so
// malformed ones can be planted), strict about the lock (every op outside it throws), with fault
// injection and a journal of mutations.
import { IpamError, type Owner } from './types.js';
import { decodeOwner, encodeOwner, validateNetworkName, type IpamStore, type StoredReservation, type StoreFactory } from './store.js';

export interface FakeNetwork {
  files: Map<string, string>; // IP name → record text
  cursors: Map<number, string>;
  locked: boolean;
  /** Held by "another process": lock() fails with busy. */
  heldElsewhere: boolean;
}

export class FakeStore {
  readonly networks = new Map<string, FakeNetwork>();
  /** Mutations in order: "reserve net 10.1.2.3", "release net ...", "cursor net 0 ...", "sync net". */
  readonly journal: string[] = [];
  /** Return an Error to make that op fail (as an I/O error would). */
  fault: ((op: 'reserve' | 'release' | 'writeCursor', network: string, ip: string) => Error | undefined) | undefined;

  net(network: string): FakeNetwork {
    let n = this.networks.get(network);
    if (!n) {
      n = { files: new Map(), cursors: new Map(), locked: false, heldElsewhere: false };
      this.networks.set(network, n);
    }
    return n;
  }

  /** Plant a raw record (e.g. a malformed one). */
  put(network: string, name: string, text: string): void {
    this.net(network).files.set(name, text);
  }

  factory(): StoreFactory {
    return (network) => new FakeNetworkStore(this, validateNetworkName(network));
  }
}

class FakeNetworkStore implements IpamStore {
  private held = false;
  constructor(private readonly fake: FakeStore, readonly network: string) {}

  private get state(): FakeNetwork {
    return this.fake.net(this.network);
  }

  private check(op: string): FakeNetwork {
    if (!this.held) throw new Error(`FakeStore ${this.network}: ${op} without the lock`);
    return this.state;
  }

  private maybeFail(op: 'reserve' | 'release' | 'writeCursor', ip: string): void {
    const e = this.fake.fault?.(op, this.network, ip);
    if (e) throw new IpamError('io', `${op} ${ip}: ${e.message}`);
  }

  lock(): void {
    const s = this.state;
    if (this.held) throw new Error(`FakeStore ${this.network}: lock() while already locked`);
    if (s.locked || s.heldElsewhere) throw new IpamError('busy', `network ${JSON.stringify(this.network)}: lock held by another process; try again later`);
    s.locked = true;
    this.held = true;
  }

  unlock(): void {
    if (!this.held) return;
    this.held = false;
    this.state.locked = false;
  }

  list(): StoredReservation[] {
    return [...this.check('list').files].map(([name, text]) => ({ name, owner: decodeOwner(text) }));
  }

  reserve(ip: string, owner: Owner): boolean {
    const s = this.check('reserve');
    this.maybeFail('reserve', ip);
    if (s.files.has(ip)) return false;
    s.files.set(ip, encodeOwner(owner));
    this.fake.journal.push(`reserve ${this.network} ${ip}`);
    return true;
  }

  release(name: string): boolean {
    const s = this.check('release');
    this.maybeFail('release', name);
    this.fake.journal.push(`release ${this.network} ${name}`);
    return s.files.delete(name);
  }

  readCursor(index: number): string | undefined {
    return this.check('readCursor').cursors.get(index);
  }

  writeCursor(index: number, ip: string): void {
    const s = this.check('writeCursor');
    this.maybeFail('writeCursor', ip);
    s.cursors.set(index, ip);
    this.fake.journal.push(`cursor ${this.network} ${index} ${ip}`);
  }

  sync(): void {
    this.check('sync');
    this.fake.journal.push(`sync ${this.network}`);
  }
}
