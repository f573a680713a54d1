import type { ReservedSql } from 'postgres';
import type { PostgresTransaction } from './postgres-transaction';

/**
 * The connection of the last read-only transaction, kept inside that transaction until the end of the
 * event loop's turn, for the next transaction of this process to take: that one sends ROLLBACK ahead
 * of its BEGIN, in its first write. A consumer's snapshot read is followed at once by its handling
 * transaction, and a caller's reply read often by its next push: the ROLLBACK that went out on its own
 * (a system call, a wake-up of the server process, a reply to parse) then rides along. Not taken by
 * the end of the turn, it is rolled back and released as before.
 */
export class SpareConnection {
  private parked: { conn: ReservedSql; tx: PostgresTransaction; timer: NodeJS.Immediate } | undefined;

  /** `release` rolls back and gives back a connection (the backend's usual release). */
  constructor(private readonly release: (conn: ReservedSql, tx: PostgresTransaction) => void) {}

  /** Keeps `conn`, still in `tx` (read-only, its body done), for `take`; a previous one is released. */
  park(conn: ReservedSql, tx: PostgresTransaction): void {
    this.flush();
    if (!tx.handOverReady) return this.release(conn, tx);
    this.parked = { conn, tx, timer: setImmediate(() => this.flush()) };
  }

  /** The parked connection, if any and still open: it must be rolled back before its next BEGIN. */
  take(): ReservedSql | undefined {
    const p = this.parked;
    if (!p) return undefined;
    this.parked = undefined;
    clearImmediate(p.timer);
    if (p.tx.handOver()) return p.conn;
    this.release(p.conn, p.tx); // lost meanwhile: not given back (see StatementPipeline.release)
    return undefined;
  }

  /** Rolls back and releases the parked connection now (end of the turn, or closing). */
  flush(): void {
    const p = this.parked;
    if (!p) return;
    this.parked = undefined;
    clearImmediate(p.timer);
    this.release(p.conn, p.tx);
  }
}
