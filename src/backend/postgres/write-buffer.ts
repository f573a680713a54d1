/** A statement and its parameters. */
export interface Stmt {
  text: string;
  params: unknown[];
}

const startsWith = (key: Buffer, prefix: Buffer): boolean =>
  key.length >= prefix.length && key.subarray(0, prefix.length).equals(prefix);

/**
 * The buffered writes of one transaction, in two ordered lists: those that may go out with the next
 * read, and those that wait for the commit lock (adds, versionstamped writes, and any later write that
 * touches one of their keys, so writes to one key keep their order). The second list goes out in the
 * commit batch, right after `LOCK`, so the lock is held only while the server runs that batch — never
 * across the body, whatever the body or the network does meanwhile.
 *
 * Writes that wait and writes that go ahead never touch the same key, so sending the latter first
 * keeps the transaction's meaning. A read that could see a waiting write makes the transaction take
 * the lock at once (`mustLockFor*`): rare (the runtime never reads back its counters in the
 * transaction that adds to them), and then the lock is held from that read on, as before.
 */
export class WriteBuffer {
  /** Writes free to go with the next read. */
  ready: Stmt[] = [];
  /** Writes waiting for the commit lock, in order. */
  locked: Stmt[] = [];
  /** Hex full keys written by `locked` statements. */
  private readonly lockedKeys = new Set<string>();
  /** Full-key prefixes (up to their stamp) of versionstamped keys: their final key is not known. */
  private readonly stampedPrefixes: Buffer[] = [];
  /** Whether the commit lock is held (LOCK was sent): from then on every write is simply in order. */
  lockTaken = false;
  /** Per hex key, the buffered add that is the key's last buffered write (see `addTo`). */
  private readonly lastAdds = new Map<string, Stmt>();

  get size(): number {
    return this.ready.length + this.locked.length;
  }

  /**
   * The buffered add that is still `key`'s last buffered write, if any: a further add to the key can
   * change its delta instead of adding a statement (one UPDATE of a counter row for a batch of pops).
   */
  addTo(key: Buffer): Stmt | undefined {
    return this.lastAdds.get(key.toString('hex'));
  }

  /** A write to one known key; `needsLock` for adds and versionstamped values; `add` for adds. */
  key(stmt: Stmt, key: Buffer, needsLock: boolean, add = false): void {
    const hex = key.toString('hex');
    if (add) this.lastAdds.set(hex, stmt);
    else this.lastAdds.delete(hex);
    if (!this.lockTaken && (needsLock || this.lockedKeys.has(hex) || this.underStamped(key))) {
      this.locked.push(stmt);
      this.lockedKeys.add(hex);
    } else this.ready.push(stmt);
  }

  /** A versionstamped key: its bytes up to the stamp are `prefix`. */
  stamped(stmt: Stmt, prefix: Buffer): void {
    this.lastAdds.clear(); // its key is not known yet
    if (this.lockTaken) return void this.ready.push(stmt);
    this.locked.push(stmt);
    this.stampedPrefixes.push(prefix);
  }

  /** A write to the range [start, end). */
  range(stmt: Stmt, start: Buffer, end: Buffer): void {
    this.lastAdds.clear();
    if (!this.lockTaken && this.overlapsLocked(start, end)) this.locked.push(stmt);
    else this.ready.push(stmt);
  }

  mustLockForKey(key: Buffer): boolean {
    return !this.lockTaken && (this.lockedKeys.has(key.toString('hex')) || this.underStamped(key));
  }

  mustLockForRange(start: Buffer, end: Buffer): boolean {
    return !this.lockTaken && this.overlapsLocked(start, end);
  }

  /** Everything buffered, ready ones first; empties the buffer. */
  take(withLocked: boolean): Stmt[] {
    const out = withLocked ? [...this.ready, ...this.locked] : this.ready;
    this.lastAdds.clear(); // (sent: no longer to be changed)
    this.ready = [];
    if (withLocked) this.locked = [];
    return out;
  }

  private underStamped(key: Buffer): boolean {
    return this.stampedPrefixes.some((p) => startsWith(key, p));
  }

  private overlapsLocked(start: Buffer, end: Buffer): boolean {
    for (const hex of this.lockedKeys) {
      const k = Buffer.from(hex, 'hex');
      if (Buffer.compare(k, start) >= 0 && Buffer.compare(k, end) < 0) return true;
    }
    // Keys starting with p lie in [p, strinc(p)): they meet [start, end) iff p < end and start is
    // at most p or itself starts with p.
    return this.stampedPrefixes.some(
      (p) => Buffer.compare(p, end) < 0 && (Buffer.compare(start, p) <= 0 || startsWith(start, p)),
    );
  }
}
