/**
 * Cross-process and concurrent call figures of bench/server.ts (issue #10), all at the SQLite default
 * durability, synchronous=FULL (one fsync per commit), in both processes:
 *
 * - server.sqlite.call_xproc_p50_ms / _p99_ms   a call from this process to a server consumed in a child
 * - server.sqlite.commits_per_xproc_call      commits of both processes per such call, counted by
 *                                             CountingBackend (test/helpers/runtime) (goal ≤ 2)
 * - server.sqlite.flushes_per_xproc_call      of those, the commits flushed to disk (fsync'ed): the push
 *                                             defers its flush to the handling's commit (TransactOptions.deferFlush)
 * - server.sqlite.raw_full_msgs_per_s         bench/raw-queue.ts at FULL (two commits per message)
 * - server.sqlite.xproc_call_ratio            sequential cross-process calls/s ÷ raw_full_msgs_per_s (goal ≥ 0.5)
 * - server.sqlite.bare_full_commits_per_s     one-row FULL commits/s on the servers' own file
 * - server.sqlite.enqueue32_ratio             casts/s with 32 in flight from one process ÷ bare commits/s (goal ≥ 3)
 * - server.sqlite.xproc_concurrent32_ratio    calls/s of 32 concurrent callers in this process to the
 *                                             server consumed in the child ÷ bare commits/s (goal ≥ 1.5)
 * - server.sqlite.inproc_concurrent32_ratio   calls/s of 32 concurrent callers with the consumer in the
 *                                             same process ÷ sequential calls/s of one (goal ≥ 3)
 *
 * Throughput sides alternate in slices and the ratios divide medians, so a noisy moment weighs on both.
 */
import type { Tenant } from '../src/backend/types';
import { Runtime } from '../src/facade/runtime';
import type { ServerRef } from '../src/runtime/server-ref';
import { countingBackend, type CommitCounts } from '../test/helpers/runtime/counting-backend';
import { Counter } from '../test/helpers/runtime/servers';
import { openSqlite } from '../test/helpers/runtime/sqlite';
import { Workers } from '../test/helpers/runtime/workers';
import { bareCommitLoop, rawQueueLoop } from './raw-queue';

const RUN_MS = Number(process.env.BENCH_MS ?? 3000);
const MESSAGE = Buffer.alloc(100, 7);
const SLICES = 3;

const now = () => Number(process.hrtime.bigint()) / 1e6;
const round = (x: number, digits = 3) => Number(x.toFixed(digits));
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const quantile = (xs: number[], q: number): number => {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const median = (xs: number[]) => quantile(xs, 0.5);

/** Steps per second of a synchronous loop over about `ms`. */
function syncRate(step: () => void, ms: number): number {
  const start = now();
  let n = 0;
  while (now() - start < ms) {
    step();
    n++;
  }
  return (n * 1000) / (now() - start);
}

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

async function callTimes(ref: ServerRef, n: number, maxMs: number): Promise<number[]> {
  const times: number[] = [];
  const start = now();
  for (let i = 0; i < n && now() - start < maxMs; i++) {
    const t0 = now();
    await ref.call('get');
    times.push(now() - t0);
  }
  return times;
}

/** Alternates slices of `a` and `b` (each about `ms` per slice), returning both medians. */
async function alternate(
  a: (ms: number) => number | Promise<number>,
  b: (ms: number) => number | Promise<number>,
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

export async function xprocFigures(
  file: (n: string) => string,
  script: string,
): Promise<Record<string, number>> {
  const db = file('xproc.sqlite');
  const workers = new Workers();
  const backend = countingBackend(await openSqlite(db, 'full'));
  const raw = rawQueueLoop(file('raw-full.sqlite'), MESSAGE, 'FULL');
  try {
    const tenant: Tenant = await backend.openTenant(['bench']);
    const child = await workers.spawn({
      db,
      tenant: ['bench'],
      script,
      env: { DGEN_SYNCHRONOUS: 'full', DGEN_COUNT_COMMITS: '1' },
    });
    await child.rpc('start', { ref: 'c', server: 'Counter', opts: {}, quiet: true });
    const caller = await Runtime.start(Counter, undefined, { tenant, consume: false });
    await callTimes(caller, 30, RUN_MS);

    // Sequential calls: latency, commits per call, and calls/s against the raw two-commit loop.
    const counts = async (): Promise<CommitCounts> => {
      const theirs = await child.rpc<CommitCounts>('commits');
      return {
        writes: backend.counts.writes + theirs.writes,
        readOnly: backend.counts.readOnly + theirs.readOnly,
        deferred: backend.counts.deferred + theirs.deferred,
        reads: backend.counts.reads + theirs.reads,
      };
    };
    const times: number[] = [];
    const before = await counts();
    const [rawRate, callRate] = await alternate(
      (ms) => syncRate(raw.step, ms),
      async (ms) => {
        const t = await callTimes(caller, 100_000, ms);
        times.push(...t);
        return (t.length * 1000) / t.reduce((x, y) => x + y, 0);
      },
      RUN_MS / SLICES,
    );
    const after = await counts();
    const commits = after.writes + after.readOnly - before.writes - before.readOnly;
    const flushes = after.writes - after.deferred - (before.writes - before.deferred);

    // Concurrency: 32 callers to the child's consumer, 32 casts in flight, against bare commits.
    const bare = bareCommitLoop(db, 'FULL');
    let bareRate: number;
    let xproc32: number;
    let enqueue32: number;
    try {
      [bareRate, xproc32] = await alternate(
        (ms) => syncRate(bare.step, ms),
        (ms) => concurrentRate(32, () => caller.call('get'), ms),
        RUN_MS / SLICES,
      );
      const publisher = await Runtime.start(Counter, { id: 'enqueue' }, { tenant, consume: false });
      [, enqueue32] = await alternate(
        (ms) => syncRate(bare.step, ms),
        (ms) => concurrentRate(32, () => publisher.cast({ type: 'add', by: 1 }), ms),
        RUN_MS / SLICES,
      );
    } finally {
      bare.close();
    }
    await child.exit();

    // In one process: a consume:false caller and the consumer, one caller against 32.
    const local = await Runtime.start(Counter, { id: 'local' }, { tenant });
    const localCaller = await Runtime.start(Counter, { id: 'local' }, { tenant, consume: false });
    await callTimes(localCaller, 30, RUN_MS);
    const [seqLocal, conc32Local] = await alternate(
      async (ms) => concurrentRate(1, () => localCaller.call('get'), ms),
      async (ms) => concurrentRate(32, () => localCaller.call('get'), ms),
      RUN_MS / SLICES,
    );
    await local.stop();

    return {
      'server.sqlite.call_xproc_p50_ms': round(median(times)),
      'server.sqlite.call_xproc_p99_ms': round(quantile(times, 0.99)),
      'server.sqlite.commits_per_xproc_call': round(commits / times.length),
      'server.sqlite.flushes_per_xproc_call': round(flushes / times.length),
      'server.sqlite.raw_full_msgs_per_s': Math.round(rawRate),
      'server.sqlite.xproc_calls_per_s': Math.round(callRate),
      'server.sqlite.xproc_call_ratio': round(callRate / rawRate),
      'server.sqlite.bare_full_commits_per_s': Math.round(bareRate),
      'server.sqlite.enqueue32_casts_per_s': Math.round(enqueue32),
      'server.sqlite.enqueue32_ratio': round(enqueue32 / bareRate),
      'server.sqlite.xproc_concurrent32_calls_per_s': Math.round(xproc32),
      'server.sqlite.xproc_concurrent32_ratio': round(xproc32 / bareRate),
      'server.sqlite.inproc_calls_per_s': Math.round(seqLocal),
      'server.sqlite.inproc_concurrent32_calls_per_s': Math.round(conc32Local),
      'server.sqlite.inproc_concurrent32_ratio': round(conc32Local / seqLocal),
    };
  } finally {
    raw.close();
    await Runtime.stopAll();
    await backend.close();
    await workers.killAll();
  }
}
