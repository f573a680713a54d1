import type { Stmt } from './write-buffer';

/** The kinds of a statement's parameters: with its text, the client's signature of it, approximately. */
const kinds = (s: Stmt): string => {
  let k = '';
  for (const p of s.params) k += Buffer.isBuffer(p) ? 'B' : p === null ? '0' : (typeof p)[0];
  return k;
};

/**
 * Which parameterized statements each pool connection has prepared since it last (re)connected.
 *
 * The client sends a parameterized statement it has not prepared on that connection yet only after a
 * round trip of its own (to learn the parameter types), holding back everything queued behind it. In
 * a commit batch that starts with `LOCK`, that would hold the database-wide lock across a round trip
 * (and across whatever stalls the client meanwhile): so a batch that takes the lock first has its
 * unprepared statements described, before the lock, in one round trip (`missing`). Forgotten when the
 * client reports the connection closed (it then forgets its prepared statements too).
 */
export class PreparedStatements {
  /**
   * By connection: statement text → the parameter kinds it was prepared with. Keyed by the text first:
   * the texts are the same few constant strings (their hashes cached), so a batch is looked up without
   * building a long string per statement.
   */
  private readonly byConnection = new Map<number, Map<string, Set<string>>>();

  /** The parameterized statements of `stmts` not yet prepared on connection `id` (one of each). */
  missing(id: number, stmts: readonly Stmt[]): Stmt[] {
    const known = this.byConnection.get(id);
    const out = new Map<string, Stmt>();
    for (const s of stmts) {
      if (s.params.length === 0) continue;
      const k = kinds(s);
      if (!known?.get(s.text)?.has(k)) out.set(`${k}|${s.text}`, s);
    }
    return [...out.values()];
  }

  prepared(id: number, stmts: readonly Stmt[]): void {
    let known = this.byConnection.get(id);
    if (!known) this.byConnection.set(id, (known = new Map()));
    for (const s of stmts) {
      if (s.params.length === 0) continue;
      let byKinds = known.get(s.text);
      if (!byKinds) known.set(s.text, (byKinds = new Set()));
      byKinds.add(kinds(s));
    }
  }

  closed(id: number): void {
    this.byConnection.delete(id);
  }
}
