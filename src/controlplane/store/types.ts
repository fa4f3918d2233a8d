// The control plane's storage contract: one interface, three implementations (memory, SQLite,
// etcd) that pass one shared contract suite (test/lib/store-contract.ts).
//
// Model (etcd's, so that the etcd store is a thin mapping and the others imitate it):
// - objects are JSON values under keys such as /nodes/<name> or /services/<ns>/<name>;
// - one cluster-wide revision (a positive integer) grows with every committed write; writes of
//   one txn share one revision; revisions are monotonic but not necessarily contiguous (etcd
//   counts writes outside podwire's prefix too);
// - each object carries the revision of its creation and of its last modification;
// - a watch delivers every change after a given revision, in revision order, or fails with
//   'Gone' when the store no longer holds that part of its history (the API answers 410).

export type StoreErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict' // expectedModRevision mismatch, or a txn that kept conflicting past its retries
  | 'Gone' // watch from a revision older than the retained event history
  | 'InvalidKey'
  | 'InvalidValue' // not representable as JSON
  | 'Closed';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}

export interface StoredObject<T = unknown> {
  key: string;
  value: T;
  createRevision: number;
  modRevision: number;
}

export interface ListResult<T = unknown> {
  items: StoredObject<T>[]; // sorted by key
  revision: number; // the store revision the list is a consistent snapshot of
}

export interface WriteOptions {
  // Write only if the object's current modRevision is this one ('Conflict' otherwise).
  expectedModRevision?: number;
}

export interface DeleteResult<T = unknown> {
  object: StoredObject<T>; // the object as it was just before the delete
  revision: number; // the revision of the delete
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent<T = unknown> {
  type: WatchEventType;
  key: string;
  value: T; // for DELETED: the last value before the delete
  revision: number; // the revision of this change
}

export interface WatchHandle {
  close(): void; // idempotent; no event is delivered after it returns
}

// A txn's view of the store: reads see the txn's own buffered writes; writes are buffered and
// committed together, at one revision, when the txn function returns (or not at all if it
// throws). The function may run more than once (optimistic retry), so it must have no side
// effects outside the txn.
export interface Txn {
  get<T = unknown>(key: string): Promise<StoredObject<T> | undefined>;
  put(key: string, value: unknown): void; // create or replace
  delete(key: string): void; // no-op if the key does not exist
}

export interface TxnResult<R> {
  result: R; // what the txn function returned
  revision: number; // the commit revision; the current revision if the txn wrote nothing
}

export interface Store {
  get<T = unknown>(key: string): Promise<StoredObject<T> | undefined>;
  // Every object strictly under prefix ('/services' and '/services/' are the same, and do not
  // match '/servicesx/…'; '/' lists everything).
  list<T = unknown>(prefix: string): Promise<ListResult<T>>;
  create<T = unknown>(key: string, value: T): Promise<StoredObject<T>>; // 'AlreadyExists'
  update<T = unknown>(key: string, value: T, opts?: WriteOptions): Promise<StoredObject<T>>; // 'NotFound', 'Conflict'
  delete<T = unknown>(key: string, opts?: WriteOptions): Promise<DeleteResult<T>>; // 'NotFound', 'Conflict'
  // Atomic read-modify-write of several keys (e.g. an allocation bitmap and the new Service).
  txn<R>(fn: (tx: Txn) => Promise<R>): Promise<TxnResult<R>>;
  // Events with revision > fromRevision under prefix, in revision order (fromRevision 0 = from the
  // start of the retained history; pass list().revision to continue after a list). Rejects with
  // 'Gone' if fromRevision is older than the retained history. onError reports a failure after
  // the watch started (e.g. a compaction or a lost etcd connection); the watch is then closed.
  watch<T = unknown>(
    prefix: string,
    fromRevision: number,
    onEvent: (ev: WatchEvent<T>) => void,
    onError?: (err: Error) => void,
  ): Promise<WatchHandle>;
  revision(): Promise<number>; // the current store revision
  close(): Promise<void>; // closes all watches; later calls fail with 'Closed'
}

const KEY_RE = /^(\/[a-z0-9.-]+)+$/;

export function validateKey(key: string): void {
  if (typeof key !== 'string' || !KEY_RE.test(key) || key.length > 1024) {
    throw new StoreError('InvalidKey', `invalid key ${JSON.stringify(key)}: want /-separated segments of [a-z0-9.-]`, key);
  }
}

// '/x' and '/x/' → '/x/'; '/' → '/'. A key matches when it starts with the normalized prefix.
export function normalizePrefix(prefix: string): string {
  if (prefix === '/' || prefix === '') return '/';
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  validateKey(p);
  return p + '/';
}

// The stored form of a value: its JSON text (so stores never alias the caller's objects).
export function encodeValue(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new StoreError('InvalidValue', `value for ${key} is not JSON: ${(e as Error).message}`, key);
  }
  if (text === undefined) throw new StoreError('InvalidValue', `value for ${key} is not JSON`, key);
  return text;
}

export function validateRevision(rev: number, what: string): void {
  if (!Number.isSafeInteger(rev) || rev < 0) throw new StoreError('InvalidValue', `${what} must be a non-negative integer, got ${rev}`);
}
