// A separate process writing a burst into a SQLite store, for the kill -9 durability test.
// Usage: node store-writer.js DB_PATH
// Writes /pods/ns/p0, p1, … (every third one through a txn that also bumps /alloc/counter) and
// prints each key on stdout only after the write was acknowledged, until killed.
import { SqliteStore } from '../../src/controlplane/store/sqlite.js';
import { parentAlive } from './orphan-guard.js';

async function main(dbPath: string): Promise<void> {
  const store = new SqliteStore({ path: dbPath });
  process.stdout.write('ready\n');
  for (let i = 0; parentAlive(); i++) {
    const key = `/pods/ns/p${i}`;
    if (i % 3 === 0) {
      await store.txn(async (tx) => {
        const c = await tx.get<number>('/alloc/counter');
        tx.put('/alloc/counter', (c?.value ?? 0) + 1);
        tx.put(key, { i });
      });
    } else {
      await store.create(key, { i });
    }
    process.stdout.write(key + '\n');
  }
  await store.close();
}

main(process.argv[2]!).catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
