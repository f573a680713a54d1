/**
 * The floor of a cross-process durable call on PostgreSQL (issue #9), hand-written on the client
 * library (postgres), no dgen-ts: what `server.postgres.call_p50_ms` would be with nothing of ours in
 * the way, on the same machine and server kind. A caller pushes (INSERT + NOTIFY, one round trip,
 * synchronous_commit = off, as our push) and waits for the reply's NOTIFY; a consumer in a child
 * process LISTENs and handles each push in a flushed commit:
 *   2rt  read the item and the state (BEGIN, 2 SELECTs), compute in JavaScript, then write (DELETE,
 *        UPDATE, NOTIFY with the reply, COMMIT): the shape of a durable server's handling
 *   1rt  one round trip (DELETE … RETURNING joined with the UPDATE, NOTIFY, COMMIT): no handler code
 * Per call: p50, p99, CPU µs of the caller and of the server's processes (from /proc).
 *
 *   npx ts-node --transpile-only bench/pg-raw-call.ts      # N=1000, both modes
 */
import { fork } from 'node:child_process';
import postgres from 'postgres';
import { serverTicks } from './postgres-server-cpu';
import { startPostgres } from '../test/helpers/postgres/server';
import { runMain } from './run-main';

const N = Number(process.env.N ?? 1000);
type Row = Record<string, unknown>;

async function consumer(url: string, mode: string, table: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  const conn = await sql.reserve();
  const q = (text: string, params: unknown[] = []) =>
    conn.unsafe(text, params as never[], { prepare: true }).execute() as unknown as Promise<Row[]>;
  let busy = false;
  let again = false;
  const drain = async (): Promise<void> => {
    for (;;) {
      again = false;
      let empty: boolean;
      if (mode === '1rt') {
        const [, done] = await Promise.all([
          q('BEGIN'),
          q(
            `WITH d AS (DELETE FROM ${table}_q WHERE id = (SELECT min(id) FROM ${table}_q) RETURNING id) UPDATE ${table}_state SET n = n + 1 FROM d WHERE k = 1 RETURNING n`,
          ),
          q(`SELECT pg_notify('${table}_reply', 'x')`),
          q('COMMIT'),
        ]);
        empty = done.length === 0;
      } else {
        const [, items, state] = await Promise.all([
          q('BEGIN'),
          q(`SELECT id FROM ${table}_q ORDER BY id LIMIT 1`),
          q(`SELECT n FROM ${table}_state WHERE k = 1`),
        ]);
        empty = items.length === 0;
        if (empty) await q('COMMIT');
        else {
          const n = String(Number(state[0].n) + 1);
          await Promise.all([
            q(`DELETE FROM ${table}_q WHERE id = $1::bigint`, [String(items[0].id)]),
            q(`UPDATE ${table}_state SET n = $1::bigint WHERE k = 1`, [n]),
            q(`SELECT pg_notify('${table}_reply', $1)`, [n]),
            q('COMMIT'),
          ]);
        }
      }
      if (empty && !again) return;
    }
  };
  const wake = (): void => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    drain().then(
      () => (busy = false),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  await sql.listen(`${table}_push`, wake);
  process.send!('ready');
}

async function run(url: string, dataDir: string, mode: string): Promise<Record<string, unknown>> {
  const table = `rawcall_${mode}`;
  const sql = postgres(url, { max: 2, onnotice: () => undefined });
  await sql
    .unsafe(
      `DROP TABLE IF EXISTS ${table}_q, ${table}_state; CREATE TABLE ${table}_q (id bigserial PRIMARY KEY, value bytea NOT NULL); CREATE TABLE ${table}_state (k int PRIMARY KEY, n bigint NOT NULL); INSERT INTO ${table}_state VALUES (1, 0);`,
    )
    .simple();
  const child = fork(__filename, ['consumer', url, mode, table], { execArgv: process.execArgv });
  await new Promise((resolve) => child.once('message', resolve));
  let replied: (() => void) | undefined;
  await sql.listen(`${table}_reply`, () => {
    const r = replied;
    replied = undefined;
    r?.();
  });
  const conn = await sql.reserve();
  const q = (text: string, params: unknown[] = []) =>
    conn.unsafe(text, params as never[], { prepare: true }).execute() as unknown as Promise<Row[]>;
  const message = Buffer.alloc(100, 7);
  const times: number[] = [];
  let s0 = 0;
  let c0 = process.cpuUsage();
  for (let i = 0; i < N + 100; i++) {
    if (i === 100) [s0, c0] = [serverTicks(dataDir), process.cpuUsage()];
    const t = performance.now();
    const reply = new Promise<void>((resolve) => (replied = resolve));
    await Promise.all([
      q('BEGIN'),
      q('SET LOCAL synchronous_commit = off'),
      q(`INSERT INTO ${table}_q (value) VALUES ($1)`, [message]),
      q(`SELECT pg_notify('${table}_push', '')`),
      q('COMMIT'),
    ]);
    await reply;
    if (i >= 100) times.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(c0);
  const server = serverTicks(dataDir) - s0;
  times.sort((a, b) => a - b);
  conn.release();
  child.kill('SIGKILL');
  await sql.end({ timeout: 1 });
  return {
    mode,
    p50_ms: Number(times[N >> 1].toFixed(2)),
    p99_ms: Number(times[Math.floor(N * 0.99)].toFixed(2)),
    calls_per_s: Math.round(N / (times.reduce((a, b) => a + b, 0) / 1000)),
    caller_cpu_us: Math.round((cpu.user + cpu.system) / N),
    server_cpu_us: Math.round((server * 10000) / N),
  };
}

async function main(): Promise<void> {
  const server = await startPostgres({ maxConnections: 50 });
  try {
    for (const mode of ['2rt', '1rt'])
      console.log(JSON.stringify(await run(server.url, server.dataDir, mode)));
  } finally {
    await server.destroy();
  }
}

if (process.argv[2] === 'consumer') void consumer(process.argv[3], process.argv[4], process.argv[5]);
else runMain(main);
