/**
 * PostgreSQL backend benchmarks, against a PostgreSQL 18 started from npm for the run (or the server
 * at DGEN_TEST_POSTGRES_URL), synchronous_commit=on.
 *
 *   npx ts-node --transpile-only bench/postgres.ts        (or: npm run bench -- --only postgres)
 *
 * - backend.postgres.raw_msgs_per_s        the push/pop loop of bench/backend.ts hand-written on the
 *                                          client library (postgres): push = one pipelined transaction
 *                                          inserting the item (key from a sequence) and bumping a
 *                                          counter; pop = one pipelined transaction deleting the head
 *                                          (DELETE … RETURNING) and bumping a counter
 * - backend.postgres.pushpop_msgs_per_s    the same loop through the contract (setVersionstampedKey +
 *                                          add; getRange(limit 1) + clear + add)
 * - backend.postgres.pushpop_ratio         pushpop ÷ raw, in alternating slices (goal ≥ 0.6)
 * - backend.postgres.roundtrips_per_push / _per_pop   round trips of one contract transaction
 * - backend.postgres.retry_rate            re-run bodies ÷ commits, 4 backend instances (4 pools) × 4
 *                                          concurrent pushers on one queue (goal ≤ 0.05)
 * - backend.postgres.bare_commits_per_s    single-row autocommit upserts, one connection
 * - backend.postgres.watch_p50_ms          commit through one instance → watch fires in another
 */
import postgres from 'postgres';
import { openBackend } from '../src/backend/open-backend';
import { pack, prefixRange, unboundVersionstamp } from '../src/backend/keys';
import type { Backend } from '../src/backend/types';
import { postgresCounters, resetPostgresCounters } from '../src/backend/postgres/counters';
import { startPostgres, type PostgresServer } from '../test/helpers/postgres/server';
import { runMain } from './run-main';

const RUN_MS = Number(process.env.BENCH_MS ?? 3000);
const MESSAGE = Buffer.alloc(100, 7);

interface Loop {
  step: () => Promise<void>;
  close: () => Promise<void>;
}

async function rate(step: Loop['step'], ms: number): Promise<number> {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 20; i++) await step();
    n += 20;
  }
  return n / ((performance.now() - start) / 1000);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Alternating slices, medians: a noisy moment weighs on both sides alike. */
async function compare(a: Loop, b: Loop, totalMs: number): Promise<[number, number]> {
  const slices = 10;
  const ra: number[] = [];
  const rb: number[] = [];
  for (let i = 0; i < 100; i++) {
    await a.step();
    await b.step();
  }
  for (let i = 0; i < slices; i++) {
    ra.push(await rate(a.step, totalMs / slices / 2));
    rb.push(await rate(b.step, totalMs / slices / 2));
  }
  return [median(ra), median(rb)];
}

/** The queue hand-written on the client: the best we could do without the contract, 1 round trip each. */
async function rawPushPop(url: string): Promise<Loop> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  await sql
    .unsafe(
      `
    DROP SCHEMA IF EXISTS bench_raw CASCADE;
    CREATE SCHEMA bench_raw;
    CREATE TABLE bench_raw.q (id bigserial PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE bench_raw.counters (name text PRIMARY KEY, n bigint NOT NULL);
    INSERT INTO bench_raw.counters VALUES ('push', 0), ('pop', 0);`,
    )
    .simple();
  const conn = await sql.reserve();
  const q = (text: string, params: unknown[] = []) =>
    conn.unsafe(text, params as never[], { prepare: true }).execute();
  return {
    step: async () => {
      await Promise.all([
        q('BEGIN'),
        q('INSERT INTO bench_raw.q (value) VALUES ($1)', [MESSAGE]),
        q(`UPDATE bench_raw.counters SET n = n + 1 WHERE name = 'push'`),
        q('COMMIT'),
      ]);
      await Promise.all([
        q('BEGIN'),
        q(
          'DELETE FROM bench_raw.q WHERE id = (SELECT id FROM bench_raw.q ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING value',
        ),
        q(`UPDATE bench_raw.counters SET n = n + 1 WHERE name = 'pop'`),
        q('COMMIT'),
      ]);
    },
    close: async () => {
      conn.release();
      await sql.unsafe('DROP SCHEMA bench_raw CASCADE');
      await sql.end({ timeout: 5 });
    },
  };
}

async function contractPushPop(
  backend: Backend,
): Promise<Loop & { roundTrips: () => Promise<[number, number]> }> {
  const tenant = await backend.openTenant(['bench', 'pushpop']);
  const pushKey = pack(['push']);
  const popKey = pack(['pop']);
  const { start, end } = prefixRange(['q']);
  const push = () =>
    tenant.transact((tx) => {
      tx.setVersionstampedKey(['q', unboundVersionstamp()], MESSAGE);
      tx.add(pushKey, 1);
    });
  const pop = () =>
    tenant.transact(async (tx) => {
      const [item] = await tx.getRange(start, end, { limit: 1 });
      if (item) {
        tx.clear(item.key);
        tx.add(popKey, 1);
      }
    });
  return {
    step: async () => {
      await push();
      await pop();
    },
    close: async () => undefined,
    roundTrips: async () => {
      const per = async (f: () => Promise<unknown>) => {
        const before = postgresCounters.roundTrips;
        for (let i = 0; i < 20; i++) await f();
        return (postgresCounters.roundTrips - before) / 20;
      };
      return [await per(push), await per(pop)];
    },
  };
}

/** Re-run bodies ÷ commits with 4 instances × 4 concurrent pushers to one queue, for about `ms`. */
async function retryRate(
  url: string,
  schema: string,
  ms: number,
): Promise<{ rate: number; pushesPerS: number }> {
  const backends = await Promise.all(
    Array.from({ length: 4 }, () => openBackend(url, { postgres: { schema, poolSize: 4 } })),
  );
  try {
    const tenants = await Promise.all(backends.map((b) => b.openTenant(['bench', 'retry'])));
    const counter = pack(['pushed']);
    resetPostgresCounters();
    const until = performance.now() + ms;
    const started = performance.now();
    let runs = 0;
    let pushes = 0;
    await Promise.all(
      tenants.flatMap((t) =>
        Array.from({ length: 4 }, async () => {
          while (performance.now() < until) {
            await t.transact((tx) => {
              runs++;
              tx.setVersionstampedKey(['q', unboundVersionstamp()], MESSAGE);
              tx.add(counter, 1);
            });
            pushes++;
          }
        }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    return { rate: (runs - pushes) / pushes, pushesPerS: pushes / seconds };
  } finally {
    await Promise.all(backends.map((b) => b.close()));
  }
}

async function bareCommitsPerS(url: string, ms: number): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    await sql.unsafe('CREATE TABLE IF NOT EXISTS bench_bare (id int PRIMARY KEY, n bigint)');
    const step = async () => {
      await sql.unsafe(
        'INSERT INTO bench_bare VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = bench_bare.n + 1',
        [],
        { prepare: true },
      );
    };
    for (let i = 0; i < 100; i++) await step();
    return await rate(step, ms);
  } finally {
    await sql.unsafe('DROP TABLE IF EXISTS bench_bare');
    await sql.end({ timeout: 5 });
  }
}

async function watchP50(url: string, schema: string): Promise<number> {
  const [a, b] = await Promise.all([
    openBackend(url, { postgres: { schema, poolSize: 2 } }),
    openBackend(url, { postgres: { schema, poolSize: 2 } }),
  ]);
  try {
    const ta = await a.openTenant(['bench', 'watch']);
    const tb = await b.openTenant(['bench', 'watch']);
    const key = pack(['w']);
    const samples: number[] = [];
    for (let i = 0; i < 60; i++) {
      const w = await tb.watch(key);
      const t0 = performance.now();
      await ta.transact((tx) => tx.set(key, Buffer.from(String(i))));
      await w.changed;
      if (i >= 5) samples.push(performance.now() - t0);
    }
    return median(samples);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

export async function benchPostgres(): Promise<Record<string, number>> {
  let server: PostgresServer | undefined;
  let url = process.env.DGEN_TEST_POSTGRES_URL;
  if (!url) {
    server = await startPostgres({ maxConnections: 100 });
    url = server.url;
  }
  const schema = `bench_${process.pid}`;
  const backend = await openBackend(url, { postgres: { schema, poolSize: 2 } });
  try {
    const raw = await rawPushPop(url);
    const contract = await contractPushPop(backend);
    let rawRate: number;
    let contractRate: number;
    try {
      [rawRate, contractRate] = await compare(raw, contract, RUN_MS * 2);
    } finally {
      await raw.close();
    }
    const [pushTrips, popTrips] = await contract.roundTrips();
    const retry = await retryRate(url, schema, RUN_MS);
    const bare = await bareCommitsPerS(url, RUN_MS / 2);
    const watch = await watchP50(url, schema);
    console.log(
      `round trips per transaction: push ${pushTrips}, pop ${popTrips} (raw: 1 and 1); ` +
        `4 instances × 4 pushers: ${Math.round(retry.pushesPerS)} pushes/s`,
    );
    return {
      'backend.postgres.raw_msgs_per_s': Math.round(rawRate),
      'backend.postgres.pushpop_msgs_per_s': Math.round(contractRate),
      'backend.postgres.pushpop_ratio': Number((contractRate / rawRate).toFixed(3)),
      'backend.postgres.roundtrips_per_push': pushTrips,
      'backend.postgres.roundtrips_per_pop': popTrips,
      'backend.postgres.retry_rate': Number(retry.rate.toFixed(4)),
      'backend.postgres.concurrent_pushes_per_s': Math.round(retry.pushesPerS),
      'backend.postgres.bare_commits_per_s': Math.round(bare),
      'backend.postgres.watch_p50_ms': Number(watch.toFixed(3)),
    };
  } finally {
    await backend.close();
    const sql = postgres(url, { max: 1, onnotice: () => undefined });
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await sql.end({ timeout: 5 });
    await server?.destroy();
  }
}

if (require.main === module) runMain(benchPostgres, console.log);
