import postgres from 'postgres';

/**
 * Client connections the server at `url` holds right now, besides the one asking (from
 * pg_stat_activity): how the fault test sees leaked connections from the database's side.
 */
export async function clientConnections(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => undefined });
  try {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where backend_type = 'client backend' and pid <> pg_backend_pid()`;
    return row.n;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** A session that holds or waits for a schema's commit lock (pg_locks joined with pg_stat_activity). */
export interface CommitLockEntry {
  pid: number;
  clientPort: number | null;
  granted: boolean;
  state: string | null;
  waitEvent: string | null;
  /** The session's last statement, shortened. */
  query: string;
  /** How long it has been in its current state. */
  stateMs: number;
}

/** Who holds and who waits for the commit lock (the `commit_lock` table of any schema) right now. */
export async function commitLockEntries(url: string): Promise<CommitLockEntry[]> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => undefined });
  try {
    return await sql<CommitLockEntry[]>`
      select l.pid, a.client_port as "clientPort", l.granted, a.state, a.wait_event as "waitEvent",
             left(a.query, 60) as query,
             (extract(epoch from clock_timestamp() - a.state_change) * 1000)::int as "stateMs"
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'relation' and l.relation::regclass::text like '%commit_lock'
      order by l.granted desc, l.pid`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The sessions that are not idle right now (what each waits for, its statement, for how long). */
export async function busySessions(url: string): Promise<Array<Record<string, unknown>>> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => undefined });
  try {
    return await sql`
      select pid, client_port as port, state, wait_event_type as "waitType", wait_event as wait,
             left(query, 50) as query,
             (extract(epoch from clock_timestamp() - xact_start) * 1000)::int as "xactMs"
      from pg_stat_activity
      where backend_type = 'client backend' and state <> 'idle' and pid <> pg_backend_pid()
      order by xact_start`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}
