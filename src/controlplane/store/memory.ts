// The in-memory store (tests, fast unit runs) and LocalStore, the part it shares with the SQLite
// store: both keep their data in this process, so one mutex serializes every write and a txn is
// a real transaction (nothing else writes while its function runs); the modRevision checks at
// commit still guard against a second process writing the same SQLite file. Watches are served
// from a bounded event history and then from in-process notification after each commit.
import {
  StoreError, encodeValue, normalizePrefix, validateKey, validateRevision,
  type DeleteResult, type ListResult, type Store, type StoredObject, type Txn, type TxnResult,
  type WatchEvent, type WatchEventType, type WatchHandle, type WriteOptions,
} from './types.js';

export const DEFAULT_MAX_EVENTS = 10_000;
const TXN_ATTEMPTS = 100;

export interface Row { key: string; value: string; createRevision: number; modRevision: number }
export interface EventRow { type: WatchEventType; key: string; value: string; revision: number }
export interface Committed { revision: number; events: EventRow[]; puts: Row[]; deletes: string[] }

export function toObject<T>(row: Row): StoredObject<T> {
  return { key: row.key, value: JSON.parse(row.value) as T, createRevision: row.createRevision, modRevision: row.modRevision };
}

// What a set of writes does to the current rows at the next revision. Deleting a missing key and
// writing an identical value are still changes (etcd counts them too), except the missing delete.
export function planCommit(changes: Map<string, string | null>, current: number, readRow: (key: string) => Row | undefined): Committed {
  const revision = current + 1;
  const out: Committed = { revision, events: [], puts: [], deletes: [] };
  for (const [key, value] of changes) {
    const old = readRow(key);
    if (value === null) {
      if (!old) continue;
      out.deletes.push(key);
      out.events.push({ type: 'DELETED', key, value: old.value, revision });
    } else {
      out.puts.push({ key, value, createRevision: old ? old.createRevision : revision, modRevision: revision });
      out.events.push({ type: old ? 'MODIFIED' : 'ADDED', key, value, revision });
    }
  }
  if (out.events.length === 0) out.revision = current; // nothing changed: no new revision
  return out;
}

// The buffer behind a Txn: remembers the modRevision of every key read (0 = absent) for the
// commit-time check, and the writes. Reads see the txn's own writes; an uncommitted write reads
// back with modRevision 0.
export class TxnBuffer implements Txn {
  readonly reads = new Map<string, number>();
  readonly writes = new Map<string, string | null>();
  constructor(private readonly read: (key: string) => Promise<StoredObject | undefined>) {}

  async get<T = unknown>(key: string): Promise<StoredObject<T> | undefined> {
    validateKey(key);
    const obj = await this.read(key);
    if (!this.reads.has(key)) this.reads.set(key, obj?.modRevision ?? 0);
    if (!this.writes.has(key)) return obj as StoredObject<T> | undefined;
    const w = this.writes.get(key);
    if (w === null || w === undefined) return undefined;
    return { key, value: JSON.parse(w) as T, createRevision: obj?.createRevision ?? 0, modRevision: 0 };
  }

  put(key: string, value: unknown): void {
    validateKey(key);
    this.writes.set(key, encodeValue(key, value));
  }

  delete(key: string): void {
    validateKey(key);
    this.writes.set(key, null);
  }
}

interface Watcher {
  prefix: string;
  queue: EventRow[];
  closed: boolean;
  scheduled: boolean;
  onEvent: (ev: WatchEvent<never>) => void;
  onError?: (err: Error) => void;
}

export abstract class LocalStore implements Store {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Set<Watcher>();
  protected closed = false;

  protected abstract readRow(key: string): Row | undefined;
  protected abstract readPrefix(prefix: string): Row[]; // sorted by key
  protected abstract currentRevision(): number;
  protected abstract compactedRevision(): number; // history holds every event after this revision
  // Atomically: if every checked key still has the given modRevision (0 = absent), apply the
  // writes at the next revision, record their events, trim the history; null if a check failed.
  protected abstract commit(checks: Map<string, number>, writes: Map<string, string | null>): Committed | null;
  protected abstract history(prefix: string, fromRevision: number): EventRow[];
  protected abstract closeBackend(): void;

  async get<T = unknown>(key: string): Promise<StoredObject<T> | undefined> {
    this.checkOpen();
    validateKey(key);
    const row = this.readRow(key);
    return row ? toObject<T>(row) : undefined;
  }

  async list<T = unknown>(prefix: string): Promise<ListResult<T>> {
    this.checkOpen();
    const p = normalizePrefix(prefix);
    // Both reads in the same synchronous turn: a consistent snapshot.
    return { items: this.readPrefix(p).map((r) => toObject<T>(r)), revision: this.currentRevision() };
  }

  async revision(): Promise<number> {
    this.checkOpen();
    return this.currentRevision();
  }

  async create<T = unknown>(key: string, value: T): Promise<StoredObject<T>> {
    validateKey(key);
    const text = encodeValue(key, value);
    return this.exclusive(() => {
      const c = this.commit(new Map([[key, 0]]), new Map([[key, text]]));
      if (!c) throw new StoreError('AlreadyExists', `${key} already exists`, key);
      this.publish(c.events);
      return toObject<T>(c.puts[0]!);
    });
  }

  async update<T = unknown>(key: string, value: T, opts: WriteOptions = {}): Promise<StoredObject<T>> {
    validateKey(key);
    const text = encodeValue(key, value);
    return this.exclusive(() => {
      const mod = this.expect(key, opts).modRevision;
      const c = this.commit(new Map([[key, mod]]), new Map([[key, text]]));
      if (!c) throw new StoreError('Conflict', `${key} was modified concurrently`, key);
      this.publish(c.events);
      return toObject<T>(c.puts[0]!);
    });
  }

  async delete<T = unknown>(key: string, opts: WriteOptions = {}): Promise<DeleteResult<T>> {
    validateKey(key);
    return this.exclusive(() => {
      const old = this.expect(key, opts);
      const c = this.commit(new Map([[key, old.modRevision]]), new Map([[key, null]]));
      if (!c) throw new StoreError('Conflict', `${key} was modified concurrently`, key);
      this.publish(c.events);
      return { object: toObject<T>(old), revision: c.revision };
    });
  }

  txn<R>(fn: (tx: Txn) => Promise<R>): Promise<TxnResult<R>> {
    return this.exclusive(async () => {
      for (let attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
        const tx = new TxnBuffer((k) => this.get(k));
        const result = await fn(tx);
        this.checkOpen();
        if (tx.writes.size === 0) return { result, revision: this.currentRevision() };
        const c = this.commit(tx.reads, tx.writes);
        if (c) {
          this.publish(c.events);
          return { result, revision: c.revision };
        }
      }
      throw new StoreError('Conflict', `txn kept conflicting after ${TXN_ATTEMPTS} attempts`);
    });
  }

  async watch<T = unknown>(prefix: string, fromRevision: number, onEvent: (ev: WatchEvent<T>) => void, onError?: (err: Error) => void): Promise<WatchHandle> {
    this.checkOpen();
    const p = normalizePrefix(prefix);
    validateRevision(fromRevision, 'fromRevision');
    const compacted = this.compactedRevision();
    if (fromRevision < compacted) {
      throw new StoreError('Gone', `revision ${fromRevision} is older than the retained history (from ${compacted + 1})`);
    }
    // History read and registration happen in one synchronous turn, and commits publish in the
    // turn they commit: no event is missed or delivered twice.
    const w: Watcher = { prefix: p, queue: this.history(p, fromRevision), closed: false, scheduled: false, onEvent: onEvent as Watcher['onEvent'], onError };
    this.watchers.add(w);
    this.schedule(w);
    return { close: () => this.closeWatcher(w) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) this.closeWatcher(w);
    await this.chain.catch(() => undefined);
    this.closeBackend();
  }

  protected checkOpen(): void {
    if (this.closed) throw new StoreError('Closed', 'store is closed');
  }

  // The current row, after the NotFound and expectedModRevision checks.
  private expect(key: string, opts: WriteOptions): Row {
    const row = this.readRow(key);
    if (!row) throw new StoreError('NotFound', `${key} not found`, key);
    if (opts.expectedModRevision !== undefined && opts.expectedModRevision !== row.modRevision) {
      throw new StoreError('Conflict', `${key} is at modRevision ${row.modRevision}, not ${opts.expectedModRevision}`, key);
    }
    return row;
  }

  // Runs writes one at a time, in call order.
  private exclusive<R>(fn: () => R | Promise<R>): Promise<R> {
    const run = this.chain.then(() => {
      this.checkOpen();
      return fn();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private publish(events: EventRow[]): void {
    for (const w of this.watchers) {
      const mine = events.filter((e) => e.key.startsWith(w.prefix));
      if (mine.length === 0) continue;
      w.queue.push(...mine);
      this.schedule(w);
    }
  }

  // Delivery is asynchronous so that a callback never runs inside a store call (it may well call
  // the store itself), and in order, one watcher's events after another.
  private schedule(w: Watcher): void {
    if (w.scheduled || w.queue.length === 0) return;
    w.scheduled = true;
    setImmediate(() => {
      w.scheduled = false;
      while (!w.closed && w.queue.length > 0) {
        const e = w.queue.shift()!;
        try {
          w.onEvent({ type: e.type, key: e.key, value: JSON.parse(e.value) as never, revision: e.revision });
        } catch (err) {
          this.closeWatcher(w);
          w.onError?.(err as Error);
        }
      }
    });
  }

  private closeWatcher(w: Watcher): void {
    w.closed = true;
    w.queue = [];
    this.watchers.delete(w);
  }
}

export interface MemoryStoreOptions {
  maxEvents?: number; // event history kept for watches (default 10,000)
}

export class MemoryStore extends LocalStore {
  private readonly rows = new Map<string, Row>();
  private events: EventRow[] = [];
  private rev = 0;
  private compacted = 0;
  private readonly maxEvents: number;

  constructor(opts: MemoryStoreOptions = {}) {
    super();
    this.maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
  }

  protected readRow(key: string): Row | undefined {
    const r = this.rows.get(key);
    return r && { ...r };
  }

  protected readPrefix(prefix: string): Row[] {
    const out = [...this.rows.values()].filter((r) => prefix === '/' || r.key.startsWith(prefix)).map((r) => ({ ...r }));
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  protected currentRevision(): number {
    return this.rev;
  }

  protected compactedRevision(): number {
    return this.compacted;
  }

  protected commit(checks: Map<string, number>, writes: Map<string, string | null>): Committed | null {
    for (const [key, mod] of checks) if ((this.rows.get(key)?.modRevision ?? 0) !== mod) return null;
    const c = planCommit(writes, this.rev, (k) => this.rows.get(k));
    for (const r of c.puts) this.rows.set(r.key, r);
    for (const k of c.deletes) this.rows.delete(k);
    this.rev = c.revision;
    this.events.push(...c.events);
    this.trim();
    return c;
  }

  protected history(prefix: string, fromRevision: number): EventRow[] {
    return this.events.filter((e) => e.revision > fromRevision && e.key.startsWith(prefix));
  }

  protected closeBackend(): void {}

  // Drops whole revisions so that "every event after compacted" stays true.
  private trim(): void {
    if (this.events.length <= this.maxEvents) return;
    const cut = this.events[this.events.length - this.maxEvents - 1]!.revision;
    this.events = this.events.filter((e) => e.revision > cut);
    this.compacted = cut;
  }
}
