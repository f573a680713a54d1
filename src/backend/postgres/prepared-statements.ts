import type { Stmt } from './write-buffer';

/** The kinds of a statement's parameters: with its text, the client's signature of it, approximately. */
const kinds = (s: Stmt): string => {
  let k = '';
  for (const p of s.params) k += Buffer.isBuffer(p) ? 'B' : p === null ? '0' : (typeof p)[0];
  return k;
};

/** The last statement name handed out, in this process (unique across backends: easier to follow). */
let nextName = 0;

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
    this.named.delete(id);
  }

  /**
   * By connection: statement text → the name it was prepared under with SQL `PREPARE`, for the
   * simple-protocol commit query (see StatementPipeline.commitLocked), which takes no parameters and so
   * cannot use the client's prepared statements. Names are never reused: after a failed query, whether
   * its PREPAREs ran is unknown, and the connection's names are forgotten (`forget`).
   */
  private readonly named = new Map<number, Map<string, string>>();

  /**
   * The name of `text` on connection `id`, and whether it is new there: the query that first executes
   * it must then `PREPARE` it first.
   */
  nameOf(id: number, text: string): { name: string; fresh: boolean } {
    let names = this.named.get(id);
    if (!names) this.named.set(id, (names = new Map()));
    const known = names.get(text);
    if (known !== undefined) return { name: known, fresh: false };
    const name = `dgen_s${++nextName}`;
    names.set(text, name);
    return { name, fresh: true };
  }

  /** After a commit query failed on connection `id`: its PREPAREs may or may not have run. */
  forget(id: number): void {
    this.named.delete(id);
  }
}
