import type Database from 'better-sqlite3';

/** How many versions one write of the counter row reserves. */
const BLOCK = 1000n;

/**
 * Commit versions for versionstamps on a SQLite file that several connections (processes) share:
 * each must exceed every version committed before it, by anyone, and be exceeded by every later one.
 *
 * The counter row holds the highest version reserved so far. A connection reserves a block of BLOCK
 * versions (one upsert, inside the transaction that needs a version) and hands out the next version of
 * its block to its following transactions without touching the row, as long as no other connection has
 * committed in between — which `PRAGMA data_version` tells cheaply (it changes exactly when another
 * connection commits). Once anyone else commits, the block is kept only if the counter row shows
 * that nobody reserved since (see stillTop); else the next version comes from a fresh block above
 * everything reserved so far. A reservation rolled back with its transaction is forgotten.
 * Versions therefore have gaps (as FoundationDB's do) but are strictly increasing in commit order.
 */
export class CommitVersions {
  private next = 0n;
  private end = 0n; // exclusive; next === end means no usable block
  private seenDataVersion = -1;
  private reservedInThisTransaction = false;
  /** Reserved since the last savepoint (a member of a group commit, see LockingBackend). */
  private reservedSinceSavepoint = false;
  private readonly dataVersion: Database.Statement<[], number>;
  private readonly reserve: Database.Statement<[Buffer, bigint], bigint>;
  private readonly top: Database.Statement<[Buffer], bigint>;

  constructor(
    db: Database.Database,
    private readonly counterKey: Buffer,
  ) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.reserve = db
      .prepare<[Buffer, bigint], bigint>(
        'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = value + excluded.value RETURNING value',
      )
      .pluck()
      .safeIntegers();
    this.top = db.prepare<[Buffer], bigint>('SELECT value FROM kv WHERE key = ?').pluck().safeIntegers();
  }

  /** A version for the current write transaction, or the next member of its group (holding the lock). */
  allocate(): bigint {
    const dataVersion = this.dataVersion.get()!;
    if (dataVersion !== this.seenDataVersion && this.next < this.end && this.stillTop()) {
      this.seenDataVersion = dataVersion;
      return this.next++;
    }
    if (dataVersion !== this.seenDataVersion || this.next >= this.end) {
      this.seenDataVersion = dataVersion;
      const top = this.reserve.get(this.counterKey, BLOCK)!;
      this.next = top - BLOCK + 1n;
      this.end = top + 1n;
      this.reservedInThisTransaction = true;
      this.reservedSinceSavepoint = true;
    }
    return this.next++;
  }

  /**
   * Others committed since our block was reserved, but the counter still ends at our block: nobody
   * reserved after us, and anyone who allocates a version after our reservation first reserves a
   * block (their `data_version` changed with it), so no version above our next one has been used. One
   * read then keeps the block, where a reservation would write the counter row (a page more to commit)
   * — the usual case of two processes taking turns, one of them never allocating (a consumer whose
   * handler leaves the state as it was, a caller's process that only pushes).
   */
  private stillTop(): boolean {
    return this.top.get(this.counterKey) === this.end - 1n;
  }

  savepoint(): void {
    this.reservedSinceSavepoint = false;
  }

  /** The writes since the savepoint were undone: a block reserved there is forgotten with them. */
  rolledBackToSavepoint(): void {
    if (this.reservedSinceSavepoint) this.next = this.end = 0n;
    this.reservedSinceSavepoint = false;
  }

  committed(): void {
    this.reservedInThisTransaction = false;
  }

  rolledBack(): void {
    if (this.reservedInThisTransaction) this.next = this.end = 0n;
    this.reservedInThisTransaction = false;
  }
}
