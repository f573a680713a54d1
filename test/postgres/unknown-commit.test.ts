/**
 * A commit whose reply was lost is looked up by its transaction id (pg_xact_status). After a crash,
 * PostgreSQL hands out again the ids it had handed out but never written to the WAL: looked up then,
 * such an id may say 'committed' for another transaction. Against a PostgreSQL of its own (it stops it
 * with an immediate shutdown, as a crash, and starts it again).
 */
import postgres from 'postgres';
import { statements } from '../../src/backend/postgres/schema';
import { resolveUnknownCommit } from '../../src/backend/postgres/unknown-commit';
import { startPostgres, type PostgresServer } from '../helpers/postgres/server';

let pg: PostgresServer;
const st = statements('dgen');

beforeAll(async () => {
  pg = await startPostgres({ maxConnections: 20 });
}, 120_000);

afterAll(async () => {
  await pg?.destroy();
});

const client = () => postgres(pg.url, { max: 2, onnotice: () => undefined });

test('an id handed out again after a crash is never taken for our commit', async () => {
  let sql = client();
  await sql`CREATE TABLE t (v int)`;
  // Our transaction: its id and the server's incarnation are known (as from the commit's first reply),
  // it wrote, and it never committed: the server crashes first.
  const conn = await sql.reserve();
  await conn`BEGIN`;
  const [ours] = await conn.unsafe<Array<{ xid: string; boot: string }>>(st.xid);
  await conn`INSERT INTO t VALUES (1)`;
  await pg.stop('immediate');
  await sql.end({ timeout: 0 }).catch(() => undefined);
  await pg.restart();
  sql = client();
  try {
    // Other transactions commit after the restart and take the same id.
    let reused = false;
    for (let i = 0; i < 20 && !reused; i++) {
      const [, rows] = await sql.begin((tx) => [tx`INSERT INTO t VALUES (2)`, tx.unsafe(st.xid)]);
      reused = (rows as unknown as Array<{ xid: string }>)[0].xid === ours.xid;
    }
    expect(reused).toBe(true); // what makes the lookup by id ambiguous
    const [status] = await sql`SELECT pg_xact_status(${ours.xid}::xid8) AS s`;
    expect(status.s).toBe('committed'); // ...another transaction's
    expect(await resolveUnknownCommit(sql, st, ours.xid, ours.boot, 2000)).toBe('unknown');
    // An id of this incarnation is still resolved.
    const [, mine] = await sql.begin((tx) => [tx`INSERT INTO t VALUES (3)`, tx.unsafe(st.xid)]);
    const now = (mine as unknown as Array<{ xid: string; boot: string }>)[0];
    expect(await resolveUnknownCommit(sql, st, now.xid, now.boot, 2000)).toBe('committed');
  } finally {
    await sql.end({ timeout: 1 });
  }
}, 60_000);
