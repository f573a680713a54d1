import type { ChangeRow, Seq } from './change-row';
import { ask, TIMEOUT_MS, UNREACHABLE } from './db-request';
import type { ResolvedDb } from './db-target';

export { UNREACHABLE } from './db-request';

/** The last row a checkpoint covers: a revision that only the same database knows. */
export interface RowMark {
  readonly id: string;
  readonly rev: string;
}

export function markOf(row: ChangeRow): RowMark | undefined {
  const changes: unknown = row.changes;
  if (!Array.isArray(changes)) return undefined;
  for (const c of changes as unknown[]) {
    const rev = typeof c === 'object' && c !== null ? (c as { rev?: unknown }).rev : undefined;
    if (typeof rev === 'string' && rev.length > 0) return { id: row.id, rev };
  }
  return undefined;
}

/**
 * Whether the database at `db` is still the one a position (`since`, and the last row handled
 * before it) was read from. A database deleted and created again under the same name starts its
 * seqs anew, and a follower resuming at the old seq would skip its changes silently. Two signs:
 * a numeric seq (PouchDB, CouchDB 1.x) ahead of the database's `update_seq`, and a last handled
 * revision that the database does not know (`_revs_diff`; works with CouchDB 2+'s opaque seqs
 * too). Returns why it was replaced, `undefined` when it was not (or the server cannot tell), or
 * UNREACHABLE.
 *
 * Not used: `instance_start_time`, which is no identity — "0" on CouchDB 2+, the time the database
 * was opened on CouchDB 1.x and the server's start time on PouchDB Server (both change on restart).
 */
export async function replacedReason(
  db: ResolvedDb,
  since: Seq | undefined,
  mark: RowMark | undefined,
  heartbeatMs: number,
): Promise<string | undefined | typeof UNREACHABLE> {
  const timeoutMs = Math.min(heartbeatMs * 2, TIMEOUT_MS);
  if (typeof since === 'number') {
    const info = await ask(db, '', timeoutMs);
    if (info === UNREACHABLE) return UNREACHABLE;
    const updateSeq = (info as { update_seq?: unknown } | undefined)?.update_seq;
    if (typeof updateSeq === 'number' && since > updateSeq)
      return `is at update_seq ${updateSeq}, behind the seq ${since} to resume from`;
  }
  if (mark === undefined) return undefined;
  const diff = await ask(db, '/_revs_diff', timeoutMs, { [mark.id]: [mark.rev] });
  if (diff === UNREACHABLE) return UNREACHABLE;
  if (typeof diff !== 'object' || diff === null || !Object.hasOwn(diff, mark.id)) return undefined;
  const entry = (diff as Record<string, { missing?: unknown } | null>)[mark.id];
  if (Array.isArray(entry?.missing) && entry.missing.includes(mark.rev))
    return `does not know revision ${mark.rev} of ${JSON.stringify(mark.id)}, the last row handled before`;
  return undefined;
}
