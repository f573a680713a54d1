import type { Sql } from 'postgres';
import type { Statements } from './schema';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The outcome of a commit whose reply was lost with its connection, from its transaction id:
 * `pg_xact_status` says committed or aborted once the server has finished with it. While it is still
 * 'in progress' (the server has not yet noticed the lost client, or the COMMIT is being flushed) we ask
 * again, up to `withinMs`; past that, or if the server cannot be asked, the outcome stays unknown.
 */
export async function resolveUnknownCommit(
  sql: Sql,
  st: Statements,
  xid: string,
  withinMs: number,
): Promise<'committed' | 'aborted' | 'unknown'> {
  const until = Date.now() + withinMs;
  for (let delay = 10; Date.now() < until; delay = Math.min(250, delay * 2)) {
    try {
      const [row] = await sql.unsafe<Array<{ status: string | null }>>(st.xactStatus, [xid], {
        prepare: true,
      });
      if (row?.status === 'committed') return 'committed';
      if (row?.status === 'aborted') return 'aborted';
      if (row?.status === null || row === undefined) return 'unknown'; // too old to be known
    } catch {
      // unreachable for now: ask again
    }
    await sleep(delay);
  }
  return 'unknown';
}
