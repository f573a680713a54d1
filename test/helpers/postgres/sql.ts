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
