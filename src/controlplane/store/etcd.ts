// The etcd store (for HA control planes): every key lives under a prefix (default /podwire), the
// store revision is etcd's own revision, a watch is an etcd watch from startRevision, and a txn
// is optimistic: run the function against live reads, then commit through an etcd Txn that
// compares the modRevision of every key read, and start over if one changed. Txns are also
// serialized within this process, so retries only happen against other control planes.
import { Etcd3, type IKeyValue, type IRequestOp, type ICompare, type IOptions, type Watcher as EtcdWatcher } from 'etcd3';
import { TxnBuffer } from './memory.js';
import {
  StoreError, encodeValue, normalizePrefix, validateKey, validateRevision,
  type DeleteResult, type ListResult, type Store, type StoredObject, type Txn, type TxnResult,
  type WatchEvent, type WatchHandle, type WriteOptions,
} from './types.js';

const TXN_ATTEMPTS = 100;

export interface EtcdStoreOptions {
  hosts: string | string[]; // e.g. http://127.0.0.1:2379
  prefix?: string; // key prefix in etcd, default /podwire
  dialTimeout?: number; // ms
  client?: Omit<IOptions, 'hosts'>; // anything else for the etcd3 client (auth, TLS)
}

const put = (key: string, value: string): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
const del = (key: string): IRequestOp => ({ request_delete_range: { key: Buffer.from(key), prev_kv: true } });
const range = (key: string): IRequestOp => ({ request_range: { key: Buffer.from(key) } });
const modIs = (key: string, mod: number): ICompare => ({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: mod });
const exists = (key: string): ICompare => ({ key: Buffer.from(key), target: 'Create', result: 'Greater', create_revision: 0 });

function isCompacted(e: unknown): boolean {
  return /compacted/i.test(String((e as Error)?.message ?? e));
}

export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Set<EtcdWatcher>();
  private closed = false;

  constructor(opts: EtcdStoreOptions) {
    this.prefix = opts.prefix ?? '/podwire';
    if (this.prefix !== '') validateKey(this.prefix);
    this.client = new Etcd3({ ...opts.client, hosts: opts.hosts, dialTimeout: opts.dialTimeout ?? 5000 });
  }

  private full(key: string): string {
    return this.prefix + key;
  }

  private toObject<T>(kv: IKeyValue): StoredObject<T> {
    return {
      key: kv.key.toString().slice(this.prefix.length),
      value: JSON.parse(kv.value.toString()) as T,
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
    };
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('Closed', 'store is closed');
  }

  async get<T = unknown>(key: string): Promise<StoredObject<T> | undefined> {
    this.checkOpen();
    validateKey(key);
    const res = await this.client.get(this.full(key)).exec();
    const kv = res.kvs[0];
    return kv && this.toObject<T>(kv);
  }

  async list<T = unknown>(prefix: string): Promise<ListResult<T>> {
    this.checkOpen();
    const res = await this.client.getAll().prefix(this.full(normalizePrefix(prefix))).exec();
    return { items: res.kvs.map((kv) => this.toObject<T>(kv)), revision: Number(res.header.revision) };
  }

  async revision(): Promise<number> {
    this.checkOpen();
    const res = await this.client.get(this.full('/')).exec();
    return Number(res.header.revision);
  }

  async create<T = unknown>(key: string, value: T): Promise<StoredObject<T>> {
    this.checkOpen();
    validateKey(key);
    const k = this.full(key);
    const res = await this.client.kv.txn({ compare: [modIs(k, 0)], success: [put(k, encodeValue(key, value))] });
    if (!res.succeeded) throw new StoreError('AlreadyExists', `${key} already exists`, key);
    const rev = Number(res.header.revision);
    return { key, value: JSON.parse(JSON.stringify(value)) as T, createRevision: rev, modRevision: rev };
  }

  async update<T = unknown>(key: string, value: T, opts: WriteOptions = {}): Promise<StoredObject<T>> {
    this.checkOpen();
    validateKey(key);
    const k = this.full(key);
    const text = encodeValue(key, value);
    // Ask for the old object in the same Txn: its createRevision on success, the reason on failure.
    const res = await this.client.kv.txn({ compare: this.guard(k, opts), success: [range(k), put(k, text)], failure: [range(k)] });
    const old = res.responses[0]!.response_range.kvs[0];
    if (!res.succeeded) throw this.writeFailure(key, old, opts);
    const rev = Number(res.header.revision);
    return { key, value: JSON.parse(text) as T, createRevision: Number(old!.create_revision), modRevision: rev };
  }

  async delete<T = unknown>(key: string, opts: WriteOptions = {}): Promise<DeleteResult<T>> {
    this.checkOpen();
    validateKey(key);
    const k = this.full(key);
    const res = await this.client.kv.txn({ compare: this.guard(k, opts), success: [del(k)], failure: [range(k)] });
    if (!res.succeeded) throw this.writeFailure(key, res.responses[0]!.response_range.kvs[0], opts);
    const prev = res.responses[0]!.response_delete_range.prev_kvs[0]!;
    return { object: this.toObject<T>(prev), revision: Number(res.header.revision) };
  }

  private guard(k: string, opts: WriteOptions): ICompare[] {
    return [opts.expectedModRevision === undefined ? exists(k) : modIs(k, opts.expectedModRevision)];
  }

  private writeFailure(key: string, current: IKeyValue | undefined, opts: WriteOptions): StoreError {
    if (!current) return new StoreError('NotFound', `${key} not found`, key);
    return new StoreError('Conflict', `${key} is at modRevision ${current.mod_revision}, not ${opts.expectedModRevision}`, key);
  }

  txn<R>(fn: (tx: Txn) => Promise<R>): Promise<TxnResult<R>> {
    const run = this.chain.then(() => this.txnAttempts(fn));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async txnAttempts<R>(fn: (tx: Txn) => Promise<R>): Promise<TxnResult<R>> {
    for (let attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
      this.checkOpen();
      const tx = new TxnBuffer((k) => this.get(k));
      const result = await fn(tx);
      if (tx.writes.size === 0) return { result, revision: await this.revision() };
      const compare = [...tx.reads].map(([k, mod]) => modIs(this.full(k), mod));
      const success = [...tx.writes].map(([k, v]) => (v === null ? del(this.full(k)) : put(this.full(k), v)));
      const res = await this.client.kv.txn({ compare, success });
      if (res.succeeded) return { result, revision: Number(res.header.revision) };
      // Another writer won; back off a little (randomized, growing) before re-reading.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
    }
    throw new StoreError('Conflict', `txn kept conflicting after ${TXN_ATTEMPTS} attempts`);
  }

  async watch<T = unknown>(prefix: string, fromRevision: number, onEvent: (ev: WatchEvent<T>) => void, onError?: (err: Error) => void): Promise<WatchHandle> {
    this.checkOpen();
    const p = this.full(normalizePrefix(prefix));
    validateRevision(fromRevision, 'fromRevision');
    await this.checkNotCompacted(p, fromRevision);
    let watcher: EtcdWatcher;
    try {
      watcher = await this.client.watch().prefix(p).startRevision(String(fromRevision + 1)).withPreviousKV().create();
    } catch (e) {
      throw isCompacted(e) ? this.gone(fromRevision) : e;
    }
    this.watchers.add(watcher);
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      this.watchers.delete(watcher);
      watcher.removeAllListeners();
      watcher.on('error', () => undefined); // late errors of a closed watch are nobody's business
      watcher.cancel().catch(() => undefined);
    };
    const deliver = (ev: WatchEvent<T>) => {
      if (!open) return;
      try {
        onEvent(ev);
      } catch (e) {
        close();
        onError?.(e as Error);
      }
    };
    watcher.on('put', (kv: IKeyValue) => {
      const o = this.toObject<T>(kv);
      deliver({ type: kv.version === '1' ? 'ADDED' : 'MODIFIED', key: o.key, value: o.value, revision: o.modRevision });
    });
    watcher.on('delete', (kv: IKeyValue, prev?: IKeyValue) => {
      const key = kv.key.toString().slice(this.prefix.length);
      deliver({ type: 'DELETED', key, value: (prev ? JSON.parse(prev.value.toString()) : null) as T, revision: Number(kv.mod_revision) });
    });
    watcher.on('error', (e: Error) => {
      close();
      onError?.(isCompacted(e) ? this.gone(fromRevision) : e);
    });
    return { close };
  }

  // etcd accepts a watch from a compacted revision and cancels it just after; a range read at
  // that revision fails at once instead, so the caller gets 'Gone' from watch() itself.
  private async checkNotCompacted(p: string, fromRevision: number): Promise<void> {
    const res = await this.client.get(this.full('/')).exec();
    if (fromRevision + 1 > Number(res.header.revision)) return; // future revision: nothing to check
    try {
      await this.client.getAll().prefix(p).revision(fromRevision + 1).limit(1).exec();
    } catch (e) {
      throw isCompacted(e) ? this.gone(fromRevision) : e;
    }
  }

  private gone(fromRevision: number): StoreError {
    return new StoreError('Gone', `revision ${fromRevision} has been compacted in etcd`);
  }

  // Compacts etcd's history up to revision (tests and operators; etcd can also auto-compact).
  async compact(revision: number): Promise<void> {
    await this.client.kv.compact({ revision, physical: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.watchers].map((w) => w.cancel()));
    this.watchers.clear();
    await this.chain.catch(() => undefined);
    this.client.close();
  }
}
