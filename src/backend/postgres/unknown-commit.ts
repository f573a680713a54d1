import type { Sql } from 'postgres';
import type { Statements } from './schema';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The outcome of a commit whose reply was lost with its connection, from its transaction id:
 * `pg_xact_status` says committed or aborted once the server has finished with it. While it is still
 * 'in progress' (the server has not yet noticed the lost client, or the COMMIT is being flushed) we ask
 * again, up to `withinMs`; past that, or if the server cannot be asked, the outcome stays unknown.
 *
 * If the server restarted since it handed out the id (`boot` differs), 'committed' may be another
 * transaction's: an id never written to the WAL before a crash is handed out again after it (and
 * looked up before that, it is "in the future"), and one that did commit before the crash says
 * 'committed' too: that answer then stays unknown (the body runs again: at worst a duplicate, never a
 * loss). 'aborted' is ours either way: an id handed out again was never in a commit record.
 */
export async function resolveUnknownCommit(
  sql: Sql,
  st: Statements,
  xid: string,
  boot: string | undefined,
  withinMs: number,
): Promise<'committed' | 'aborted' | 'unknown'> {
  const until = Date.now() + withinMs;
  for (let delay = 10; Date.now() < until; delay = Math.min(250, delay * 2)) {
    try {
      const [row] = await sql.unsafe<Array<{ status: string | null; boot: string }>>(st.xactStatus, [xid], {
        prepare: true,
      });
      if (row === undefined || row.status === null) return 'unknown'; // too old to be known
      if (row.status === 'committed') return row.boot === boot ? 'committed' : 'unknown';
      if (row.status === 'aborted') return 'aborted';
    } catch {
      // unreachable for now (or the id is "in the future": the server restarted): ask again
    }
    await sleep(delay);
  }
  return 'unknown';
}
