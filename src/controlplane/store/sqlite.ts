// The default store: one SQLite file (better-sqlite3). WAL journal with synchronous = FULL, so a
// write is on disk when its promise resolves and survives kill -9 or power loss. The event
// history lives in a table, so a watch can resume from a revision across a restart. Watches are
// in-process: a second process writing the same file would not notify this one's watchers.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_MAX_EVENTS, LocalStore, planCommit, type Committed, type EventRow, type Row } from './memory.js';
import { StoreError } from './types.js';

// Schema migrations, in order; PRAGMA user_version records how many have run. Append, never edit.
const MIGRATIONS: string[] = [
  `CREATE TABLE kv (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     create_rev INTEGER NOT NULL,
     mod_rev INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     revision INTEGER NOT NULL,
     type TEXT NOT NULL,
     key TEXT NOT NULL,
     value TEXT NOT NULL
   );
   CREATE INDEX events_revision ON events (revision);`,
];

export interface SqliteStoreOptions {
  path: string; // the database file; its directory is created if missing
  maxEvents?: number; // event history kept for watches (default 10,000)
}

interface RawRow { key: string; value: string; create_rev: number; mod_rev: number }

function fromRaw(r: RawRow): Row {
  return { key: r.key, value: r.value, createRevision: r.create_rev, modRevision: r.mod_rev };
}

// Keys under prefix P sort between P and P with its last '/' replaced by '0' (the next byte).
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + '0';
}

/**
 * The store holds every object and the node tokens' hashes: owner only (0600), whatever the umask.
 * SQLite creates -wal and -shm with the database file's mode, so creating that file 0600 before
 * SQLite opens it is enough; files an older podwire made 0644 are tightened.
 */
function createPrivately(file: string): void {
  fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      fs.chmodSync(f, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(`store schema version ${version} is newer than this podwire (${MIGRATIONS.length})`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

export class SqliteStore extends LocalStore {
  private readonly db: Database.Database;
  private readonly maxEvents: number;
  private eventCount: number;
  private readonly stmt;
  private readonly commitTx: Database.Transaction<(checks: Map<string, number>, writes: Map<string, string | null>) => Committed | null>;

  constructor(opts: SqliteStoreOptions) {
    super();
    this.maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
    fs.mkdirSync(path.dirname(path.resolve(opts.path)), { recursive: true });
    createPrivately(opts.path);
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL'); // fsync the WAL on every commit: acknowledged = durable
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.stmt = this.prepare();
    this.eventCount = (this.stmt.countEvents.get() as { n: number }).n;
    this.commitTx = this.db.transaction((checks, writes) => this.commitInTx(checks, writes));
  }

  private prepare() {
    const db = this.db;
    return {
      get: db.prepare('SELECT key, value, create_rev, mod_rev FROM kv WHERE key = ?'),
      all: db.prepare('SELECT key, value, create_rev, mod_rev FROM kv ORDER BY key'),
      range: db.prepare('SELECT key, value, create_rev, mod_rev FROM kv WHERE key > ? AND key < ? ORDER BY key'),
      meta: db.prepare('SELECT value FROM meta WHERE name = ?').pluck(),
      setMeta: db.prepare('UPDATE meta SET value = ? WHERE name = ?'),
      upsert: db.prepare(`INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (@key, @value, @createRevision, @modRevision)
                          ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev`),
      del: db.prepare('DELETE FROM kv WHERE key = ?'),
      addEvent: db.prepare('INSERT INTO events (revision, type, key, value) VALUES (@revision, @type, @key, @value)'),
      countEvents: db.prepare('SELECT count(*) AS n FROM events'),
      nthEventRevision: db.prepare('SELECT revision FROM events ORDER BY id LIMIT 1 OFFSET ?').pluck(),
      dropEvents: db.prepare('DELETE FROM events WHERE revision <= ?'),
      history: db.prepare('SELECT type, key, value, revision FROM events WHERE revision > ? AND key > ? AND key < ? ORDER BY id'),
    };
  }

  protected readRow(key: string): Row | undefined {
    const r = this.stmt.get.get(key) as RawRow | undefined;
    return r && fromRaw(r);
  }

  protected readPrefix(prefix: string): Row[] {
    const rows = (prefix === '/' ? this.stmt.all.all() : this.stmt.range.all(prefix, prefixEnd(prefix))) as RawRow[];
    return rows.map(fromRaw);
  }

  protected currentRevision(): number {
    return this.stmt.meta.get('revision') as number;
  }

  protected compactedRevision(): number {
    return this.stmt.meta.get('compacted') as number;
  }

  protected commit(checks: Map<string, number>, writes: Map<string, string | null>): Committed | null {
    // IMMEDIATE: take the write lock before the checks, so another process cannot slip in between.
    return this.commitTx.immediate(checks, writes);
  }

  private commitInTx(checks: Map<string, number>, writes: Map<string, string | null>): Committed | null {
    for (const [key, mod] of checks) if ((this.readRow(key)?.modRevision ?? 0) !== mod) return null;
    const c = planCommit(writes, this.currentRevision(), (k) => this.readRow(k));
    for (const r of c.puts) this.stmt.upsert.run(r);
    for (const k of c.deletes) this.stmt.del.run(k);
    for (const e of c.events) this.stmt.addEvent.run(e);
    this.stmt.setMeta.run(c.revision, 'revision');
    this.eventCount += c.events.length;
    this.trim();
    return c;
  }

  // Drops whole revisions so that "every event after compacted" stays true.
  private trim(): void {
    if (this.eventCount <= this.maxEvents) return;
    const cut = this.stmt.nthEventRevision.get(this.eventCount - this.maxEvents - 1) as number;
    this.eventCount -= this.stmt.dropEvents.run(cut).changes;
    this.stmt.setMeta.run(cut, 'compacted');
  }

  protected history(prefix: string, fromRevision: number): EventRow[] {
    const hi = prefix === '/' ? '\u{10ffff}' : prefixEnd(prefix);
    const lo = prefix === '/' ? '' : prefix;
    return this.stmt.history.all(fromRevision, lo, hi) as EventRow[];
  }

  protected closeBackend(): void {
    this.db.close();
  }
}

export function openSqliteStore(opts: SqliteStoreOptions): SqliteStore {
  try {
    return new SqliteStore(opts);
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new Error(`cannot open the SQLite store ${opts.path}: ${(e as Error).message}`, { cause: e });
  }
}
