import type { Stmt } from './write-buffer';

/** The client's signature of a statement, approximately: its text and the kinds of its parameters. */
const signature = (s: Stmt): string =>
  `${s.params.map((p) => (Buffer.isBuffer(p) ? 'b' : p === null ? 'n' : typeof p)).join('')}|${s.text}`;

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
  private readonly byConnection = new Map<number, Set<string>>();

  /** The parameterized statements of `stmts` not yet prepared on connection `id` (one of each). */
  missing(id: number, stmts: readonly Stmt[]): Stmt[] {
    const known = this.byConnection.get(id);
    const out = new Map<string, Stmt>();
    for (const s of stmts) {
      if (s.params.length === 0) continue;
      const sig = signature(s);
      if (!known?.has(sig)) out.set(sig, s);
    }
    return [...out.values()];
  }

  prepared(id: number, stmts: readonly Stmt[]): void {
    let known = this.byConnection.get(id);
    if (!known) this.byConnection.set(id, (known = new Set()));
    for (const s of stmts) if (s.params.length > 0) known.add(signature(s));
  }

  closed(id: number): void {
    this.byConnection.delete(id);
  }
}
