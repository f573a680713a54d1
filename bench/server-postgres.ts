/**
 * Durable servers on PostgreSQL (issue #9), synchronous_commit=on, against a PostgreSQL 18 started from
 * npm for the run (or the server at DGEN_TEST_POSTGRES_URL). A consumer runs in a child process; the
 * callers in this process do not consume (`consume: false`).
 *
 *   npm run bench -- --only server-postgres --json
 *
 * - server.postgres.call_p50_ms / _p99_ms     sequential calls from this process to the child's consumer
 * - server.postgres.roundtrips_per_call      this process's round trips per call (the child's are not counted)
 * - server.postgres.watcher_reads_per_call   this process's watcher reads per call (keys re-read after a
 *                                             NOTIFY that did not carry their values: 0 when they all did)
 * - server.postgres.raw32_commits_per_s      32 connections updating one row, autocommit (the raw baseline)
 * - server.postgres.concurrent32_ops_per_s   calls/s of 32 concurrent callers in this process
 * - server.postgres.concurrent32_ratio       concurrent32 ÷ raw32, alternating slices (goal ≥ 1.0)
 * - server.postgres.bare_commits_per_s       one connection, single-row autocommit upserts
 * - server.postgres.drain_casts_per_s        one consumer process draining 5,000 queued casts
 * - server.postgres.drain_ratio              drain ÷ bare commits (goal ≥ 5)
 * - server.postgres.commits_per_call          commits per sequential call, both processes (the push, the handling)
 * - server.postgres.concurrent32_commits_per_call   the same with 32 concurrent callers (group commit: < 1)
 * - server.postgres.drain_casts_per_commit    casts handled per consumer commit while draining
 * The child counts its commits (DGEN_COUNT_COMMITS=1) and starts its refs quiet (no event per message
 * over IPC: the harness's cost, not the library's).
 */
import * as path from 'node:path';
import postgres from 'postgres';
import { openBackend } from '../src/backend/open-backend';
import { postgresCounters } from '../src/backend/postgres/counters';
import { Runtime } from '../src/facade/runtime';
import type { ServerRef } from '../src/runtime/server-ref';
import { startPostgres, type PostgresServer } from '../test/helpers/postgres/server';
import { transpileTree } from '../test/helpers/transpile';
import { Counter } from '../test/helpers/runtime/servers';
import { Workers } from '../test/helpers/runtime/workers';
import { runMain } from './run-main';

const RUN_MS = Number(process.env.BENCH_MS ?? 3000);
const SLICES = 3;
const DRAIN = 5000;
const ROOT = path.resolve(__dirname, '..');

const now = () => performance.now();
const round = (x: number, digits = 3) => Number(x.toFixed(digits));
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const median = (xs: number[]) => quantile(xs, 0.5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Operations per second of `lanes` concurrent loops of `op` over about `ms`. */
async function concurrentRate(lanes: number, op: () => Promise<unknown>, ms: number): Promise<number> {
  const start = now();
  let n = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (now() - start < ms) {
        await op();
        n++;
      }
    }),
  );
  return (n * 1000) / (now() - start);
}

async function alternate(
  a: (ms: number) => Promise<number>,
  b: (ms: number) => Promise<number>,
  ms: number,
): Promise<[number, number]> {
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < SLICES; i++) {
    as.push(await a(ms));
    bs.push(await b(ms));
  }
  return [median(as), median(bs)];
}

/** The raw baselines on the same server: single-row autocommit updates, on 1 or 32 connections. */
async function rawCommits(url: string): Promise<{
  one: (ms: number) => Promise<number>;
  many: (ms: number) => Promise<number>;
  close: () => Promise<void>;
}> {
  const sql = postgres(url, { max: 32, onnotice: () => undefined });
  await sql.unsafe('CREATE TABLE IF NOT EXISTS bench_row (id int PRIMARY KEY, n bigint NOT NULL)');
  await sql.unsafe('INSERT INTO bench_row VALUES (1, 0), (2, 0) ON CONFLICT (id) DO NOTHING');
  const bump = (id: number) =>
    sql.unsafe('UPDATE bench_row SET n = n + 1 WHERE id = $1', [id], { prepare: true });
  await concurrentRate(32, () => bump(1), 200); // opens the 32 connections
  return {
    one: (ms) => concurrentRate(1, () => bump(2), ms),
    many: (ms) => concurrentRate(32, () => bump(1), ms),
    close: async () => {
      await sql.unsafe('DROP TABLE IF EXISTS bench_row');
      await sql.end({ timeout: 5 });
    },
  };
}

async function callTimes(ref: ServerRef, ms: number): Promise<number[]> {
  const times: number[] = [];
  const start = now();
  while (now() - start < ms) {
    const t0 = now();
    await ref.call('get');
    times.push(now() - t0);
  }
  return times;
}

export async function benchServerPostgres(): Promise<Record<string, number>> {
  let server: PostgresServer | undefined;
  let url = process.env.DGEN_TEST_POSTGRES_URL;
  if (!url) {
    server = await startPostgres({ maxConnections: 100 });
    url = server.url;
  }
  const schema = `bench_srv_${process.pid}`;
  const db = `${url}#${schema}`;
  const script = transpileTree(
    ['src', 'test/helpers/runtime'],
    path.join(ROOT, '.bench-tmp', 'js-pg'),
  )(path.join(ROOT, 'test', 'helpers', 'runtime', 'worker.ts'));
  const workers = new Workers();
  // 32 callers: a pool that size, so that they are not waiting for connections.
  const backend = await openBackend(url, { postgres: { schema, poolSize: 32 } });
  const raw = await rawCommits(url);
  try {
    const tenant = await backend.openTenant(['bench']);
    const child = await workers.spawn({
      db,
      tenant: ['bench'],
      script,
      env: { DGEN_PG_POOL: '8', DGEN_COUNT_COMMITS: '1' },
    });
    const childCommits = async () => ((await child.rpc('commits', {})) as { writes: number }).writes;
    await child.rpc('start', { ref: 'c', server: 'Counter', opts: {}, quiet: true });
    const caller = await Runtime.start(Counter, undefined, { tenant, consume: false });
    await callTimes(caller, 500);
    // Opens this process's 32 pool connections, as rawCommits does for its own.
    await concurrentRate(32, () => caller.call('get'), 500);

    const trips0 = postgresCounters.roundTrips;
    const watcherReads0 = postgresCounters.watcherReads;
    let commits0 = postgresCounters.commits + (await childCommits());
    const times = await callTimes(caller, RUN_MS);
    const tripsPerCall = (postgresCounters.roundTrips - trips0) / times.length;
    const watcherReadsPerCall = (postgresCounters.watcherReads - watcherReads0) / times.length;
    const commitsPerCall = (postgresCounters.commits + (await childCommits()) - commits0) / times.length;

    let calls = 0;
    commits0 = postgresCounters.commits + (await childCommits());
    const [raw32, calls32] = await alternate(
      raw.many,
      (ms) => concurrentRate(32, () => caller.call('get').then(() => calls++), ms),
      RUN_MS / SLICES,
    );
    const commits32 = (postgresCounters.commits + (await childCommits()) - commits0) / calls;

    // Drain: 5,000 casts queued while no consumer runs, then one consumer process empties the queue.
    const drained = await Runtime.start(Counter, { id: 'drain' }, { tenant, consume: false });
    for (let i = 0; i < DRAIN; i += 100)
      await drained.castMany(Array.from({ length: 100 }, () => ({ type: 'add', by: 1 })));
    const bare = await raw.one(RUN_MS / 2);
    const drainCommits0 = await childCommits();
    const t0 = now();
    await child.rpc('start', { ref: 'd', server: 'Counter', arg: { id: 'drain' }, opts: {}, quiet: true });
    while ((await drained.queueLength()) > 0) await sleep(10);
    const drainRate = (DRAIN * 1000) / (now() - t0);
    const drainCommits = (await childCommits()) - drainCommits0;
    await child.exit();

    return {
      'server.postgres.call_p50_ms': round(median(times)),
      'server.postgres.call_p99_ms': round(quantile(times, 0.99)),
      'server.postgres.roundtrips_per_call': round(tripsPerCall, 2),
      'server.postgres.watcher_reads_per_call': round(watcherReadsPerCall, 2),
      'server.postgres.raw32_commits_per_s': Math.round(raw32),
      'server.postgres.concurrent32_ops_per_s': Math.round(calls32),
      'server.postgres.concurrent32_ratio': round(calls32 / raw32),
      'server.postgres.bare_commits_per_s': Math.round(bare),
      'server.postgres.drain_casts_per_s': Math.round(drainRate),
      'server.postgres.drain_ratio': round(drainRate / bare),
      'server.postgres.commits_per_call': round(commitsPerCall, 2),
      'server.postgres.concurrent32_commits_per_call': round(commits32, 3),
      'server.postgres.drain_casts_per_commit': round(DRAIN / drainCommits, 1),
    };
  } finally {
    await Runtime.stopAll();
    await workers.killAll();
    await raw.close();
    await backend.close();
    const sql = postgres(url, { max: 1, onnotice: () => undefined });
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await sql.end({ timeout: 5 });
    await server?.destroy();
  }
}

if (require.main === module) runMain(benchServerPostgres, console.log);
