import type Database from 'better-sqlite3';
import { decodeInt64LE, encodeInt64LE } from '../common/int64';
import type { SyncStore } from '../common/sync-store';
import type { KeyValue } from '../types';

/** What the `value` column holds: bytes, or a counter kept by `add` as an SQLite integer. */
type Stored = Buffer | bigint;
/** A row of a range read, as better-sqlite3 returns it. */
type StoredRow = { key: Buffer; value: Stored };

/** A stored value as the contract shows it: counters are their 8-byte little-endian encoding. */
const asBytes = (v: Stored): Buffer => (typeof v === 'bigint' ? encodeInt64LE(v) : v);

/**
 * `dgen_add(old, delta)`: FoundationDB's ADD for the cases SQL arithmetic does not cover (the old value
 * is bytes, or the sum overflows int64 and must wrap). Registered on every connection.
 */
export function registerSqlFunctions(db: Database.Database): void {
  db.function('dgen_add', { deterministic: true, safeIntegers: true }, (old: unknown, delta: unknown) =>
    BigInt.asIntN(
      64,
      (typeof old === 'bigint' ? old : decodeInt64LE(old as Buffer | undefined)) + (delta as bigint),
    ),
  );
}

/**
 * The key-value operations of one SQLite connection over the `kv` table, as prepared statements
 * (preparing once and reusing is most of what makes a small transaction fast).
 *
 * Values written by `set` are BLOBs. A value produced by `add` is always exactly an 8-byte
 * little-endian int64, so it is stored as an SQLite INTEGER instead: one upsert adds to it in SQL with
 * no read into JavaScript (about twice as fast as read + write), and every read turns it back into the
 * 8 bytes the contract promises, so no caller can tell the difference.
 */
export class SqliteStore implements SyncStore {
  private readonly getStmt: Database.Statement<[Buffer], Stored>;
  private readonly setStmt: Database.Statement<[Buffer, Buffer]>;
  private readonly addStmt: Database.Statement<[Buffer, bigint]>;
  private readonly deleteStmt: Database.Statement<[Buffer]>;
  private readonly deleteRangeStmt: Database.Statement<[Buffer, Buffer]>;
  /** Range statements by direction and limit: SQLite runs `LIMIT 1` about 3x faster than `LIMIT ?`. */
  private readonly rangeStmts = new Map<number, Database.Statement<[Buffer, Buffer], StoredRow>>();

  constructor(private readonly db: Database.Database) {
    this.getStmt = db.prepare<[Buffer], Stored>('SELECT value FROM kv WHERE key = ?').pluck().safeIntegers();
    this.setStmt = db.prepare<[Buffer, Buffer]>(
      'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.addStmt = db.prepare<[Buffer, bigint]>(
      `INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value =
         CASE WHEN typeof(value) = 'integer' AND typeof(value + excluded.value) = 'integer'
              THEN value + excluded.value
              ELSE dgen_add(value, excluded.value) END`,
    );
    this.deleteStmt = db.prepare<[Buffer]>('DELETE FROM kv WHERE key = ?');
    this.deleteRangeStmt = db.prepare<[Buffer, Buffer]>('DELETE FROM kv WHERE key >= ? AND key < ?');
  }

  get(key: Buffer): Buffer | undefined {
    const v = this.getStmt.get(key);
    return v === undefined ? undefined : asBytes(v);
  }

  range(start: Buffer, end: Buffer, limit: number, reverse: boolean): KeyValue[] {
    // Rows come as { key, value } objects already (not raw arrays copied into new objects: one
    // allocation less per row); only a counter's value needs its bytes.
    const rows = this.rangeStatement(limit > 0 ? limit : 0, reverse).all(start, end);
    for (const row of rows) row.value = asBytes(row.value);
    return rows as KeyValue[];
  }

  set(key: Buffer, value: Buffer): void {
    this.setStmt.run(key, value);
  }

  add(key: Buffer, delta: bigint): void {
    this.addStmt.run(key, delta);
  }

  delete(key: Buffer): void {
    this.deleteStmt.run(key);
  }

  deleteRange(start: Buffer, end: Buffer): void {
    this.deleteRangeStmt.run(start, end);
  }

  /** The values of `keys` that exist, by hex key (for watch rechecks). */
  readMany(keys: Buffer[]): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const key of keys) {
      const value = this.get(key);
      if (value !== undefined) out.set(key.toString('hex'), value);
    }
    return out;
  }

  private rangeStatement(limit: number, reverse: boolean): Database.Statement<[Buffer, Buffer], StoredRow> {
    // Limits are a handful of constants in practice; past 64 distinct ones, stop caching new ones.
    const id = reverse ? -1 - limit : limit;
    let stmt = this.rangeStmts.get(id);
    if (!stmt) {
      stmt = this.db
        .prepare<[Buffer, Buffer], StoredRow>(
          `SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key${reverse ? ' DESC' : ''}` +
            (limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''),
        )
        .safeIntegers();
      if (this.rangeStmts.size < 64) this.rangeStmts.set(id, stmt);
    }
    return stmt;
  }
}
