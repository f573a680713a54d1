import Database from 'better-sqlite3';

export type Synchronous = 'NORMAL' | 'FULL';

/** A connection with SqliteBackend's schema and file settings (WAL, the same journal size limit). */
function connect(file: string, synchronous: Synchronous): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('journal_size_limit = 67108864');
  db.exec('CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID');
  return db;
}

/**
 * The baseline every SQLite message ratio divides by: a durable queue written by hand on better-sqlite3,
 * with SqliteBackend's schema and file settings, at the given durability (FULL, the default, fsyncs
 * every commit). One step is one message: push (bump the push counter + insert an ordered key) and pop
 * (read the first item, delete it, bump the pop counter), two transactions, as through the backend contract.
 */
export function rawQueueLoop(
  file: string,
  message: Buffer,
  synchronous: Synchronous = 'FULL',
): { step: () => void; close: () => void } {
  const db = connect(file, synchronous);
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

/**
 * Bare commits on an existing file (e.g. the one a benchmark's servers use): one step is one
 * transaction that bumps one counter row outside every tenant, so at FULL one fsync. What group commit
 * is measured against: operations per second ÷ commits per second of the same file.
 */
export function bareCommitLoop(
  file: string,
  synchronous: Synchronous = 'FULL',
): { step: () => void; close: () => void } {
  const db = connect(file, synchronous);
  db.pragma('busy_timeout = 5000');
  const bump = db.prepare(
    'INSERT INTO kv (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1',
  );
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const key = Buffer.from('\xff\xfebench/bare-commits', 'latin1');
  return {
    step: () => {
      begin.run();
      bump.run(key);
      commit.run();
    },
    close: () => db.close(),
  };
}
