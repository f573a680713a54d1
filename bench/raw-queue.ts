import Database from 'better-sqlite3';

/**
 * The baseline every SQLite ratio divides by: a durable queue written by hand on better-sqlite3, with
 * SqliteBackend's schema and file settings (WAL, synchronous=NORMAL, the same journal size limit).
 * One step is one message: push (bump the push counter + insert an ordered key) and pop (read the
 * first item, delete it, bump the pop counter), two transactions, as through the backend contract.
 */
export function rawQueueLoop(file: string, message: Buffer): { step: () => void; close: () => void } {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('journal_size_limit = 67108864');
  db.exec('CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID');
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const bump = db
    .prepare(
      'INSERT INTO kv (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value',
    )
    .pluck()
    .safeIntegers();
  const insert = db.prepare('INSERT INTO kv (key, value) VALUES (?, ?)');
  const first = db.prepare('SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT 1').raw();
  const del = db.prepare('DELETE FROM kv WHERE key = ?');
  const pushKey = Buffer.from('push');
  const popKey = Buffer.from('pop');
  const qStart = Buffer.from('q/');
  const qEnd = Buffer.from('q0');
  return {
    step: () => {
      begin.run();
      const n = bump.get(pushKey) as bigint;
      const key = Buffer.alloc(12);
      key.write('q/', 0);
      key.writeBigUInt64BE(n, 2);
      insert.run(key, message);
      commit.run();
      begin.run();
      const row = first.get(qStart, qEnd) as [Buffer, Buffer] | undefined;
      if (row) {
        del.run(row[0]);
        bump.get(popKey);
      }
      commit.run();
    },
    close: () => db.close(),
  };
}
