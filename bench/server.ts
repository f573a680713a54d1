/**
 * Durable server benchmarks on the SQLite backend, at its default durability, synchronous=FULL (every
 * commit fsync'ed; the raw baselines too) unless a figure's name says `normal`.
 *
 *   npm run bench -- --only server [--json]     (or alone: npx ts-node --transpile-only bench/server.ts)
 *   BENCH_MS=… sets how long each throughput side runs (3000 ms by default).
 *
 * Keys (all numbers):
 * - server.sqlite.raw_msgs_per_s      the baseline: bench/raw-queue.ts, a hand-written better-sqlite3 push/pop loop
 * - server.sqlite.casts_per_s         cast (enqueue) + handle, one process, a consumer draining meanwhile
 * - server.sqlite.cast_ratio          casts_per_s ÷ raw_msgs_per_s (goal ≥ 0.5)
 * - server.sqlite.call_inline_p50_ms  a call on a consuming ref with an empty queue (handled inline)
 * - server.sqlite.call_p50_ms         a call through the durable queue: a consume:false caller and a
 *                                     consumer in the same process (goal ≤ 1 ms); _normal_ms at 'normal'
 * - bench/server-xproc.ts: cross-process calls (latency, commits per call, ratios) and concurrency
 * - bench/server-contention.ts: a slow neighbour server, several consumer processes of one server
 * - server.idle_baseline_rss_mb       RSS of a child with the library loaded, before starting servers
 *                                     (this child and its figures run at synchronous=NORMAL)
 * - server.idle_10k_rss_mb            RSS of that child with 10,000 started idle servers (goal ≤ 200)
 * - server.idle_10k_start_s           how long starting those 10,000 servers took
 * - server.sqlite.casts_per_s_alone / _among_10k_idle
 *                                     one busy server's casts/s in that child, before and after the
 *                                     10,000 idle servers started (what idle neighbours cost)
 * - server.queue_depth_cost_ratio     per-message cost draining a 100,000-deep queue ÷ a 100-deep one (goal ≤ 1.5);
 *                                     server.queue_100_ms_per_msg, _100k_ms_per_msg, _100k_mean_ms_per_msg its parts
 *
 * Child processes run plain JavaScript transpiled once into .bench-tmp/ (not ts-node), so their memory
 * and start-up are the library's, not the TypeScript compiler's. Every loop is bounded by BENCH_MS.
 */
import { transpileTree } from '../test/helpers/transpile';
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Backend, Tenant } from '../src/backend/types';
import { Runtime } from '../src/facade/runtime';
import type { ServerRef } from '../src/runtime/server-ref';
import { Counter } from '../test/helpers/runtime/servers';
import { openSqlite } from '../test/helpers/runtime/sqlite';
import { Workers } from '../test/helpers/runtime/workers';
import { rawQueueLoop } from './raw-queue';
import { contentionFigures } from './server-contention';
import { xprocFigures } from './server-xproc';

const ROOT = path.resolve(__dirname, '..');
/** Milliseconds each throughput side runs, in total. */
const RUN_MS = Number(process.env.BENCH_MS ?? 3000);
const MESSAGE = Buffer.alloc(100, 7);
const IDLE_SERVERS = 10_000;
const DEEP = 100_000;
const SHALLOW = 100;

const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, digits = 3) => Number(x.toFixed(digits));

function tempDir(): { file: (name: string) => string; dispose: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-bench-server-'));
  return {
    file: (name) => path.join(dir, name),
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// ---- the baseline -------------------------------------------------------------------------------

/** Messages per second of the raw loop over about `ms`. */
function rawRate(step: () => void, ms: number): number {
  const start = now();
  let n = 0;
  while (now() - start < ms) {
    for (let i = 0; i < 50; i++) step();
    n += 50;
  }
  return (n * 1000) / (now() - start);
}

// ---- helpers ------------------------------------------------------------------------------------

/** Counts a ref's committed handlings of one kind. */
function handledCounter(ref: ServerRef, kind: string): { readonly n: number } {
  const c = { n: 0 };
  ref.events$.subscribe((e) => {
    if (e.type === 'handled' && e.kind === kind) c.n++;
  });
  return c;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} did not happen within ${timeoutMs} ms`);
    await sleep(1);
  }
}

async function withSqlite<T>(
  file: string,
  fn: (tenant: Tenant, backend: Backend) => Promise<T>,
  synchronous: 'full' | 'normal' = 'full',
): Promise<T> {
  const backend = await openSqlite(file, synchronous);
  try {
    return await fn(await backend.openTenant(['bench']), backend);
  } finally {
    await Runtime.stopAll();
    await backend.close();
  }
}

// ---- cast throughput ----------------------------------------------------------------------------

/**
 * One slice of casts: cast one message after another for about `ms` while the consumer (same process)
 * drains, then wait until all were handled. Casts per second, enqueue + handle.
 */
async function castSlice(pub: ServerRef, handled: { readonly n: number }, ms: number): Promise<number> {
  const before = handled.n;
  const start = now();
  let sent = 0;
  while (now() - start < ms) {
    for (let i = 0; i < 20; i++) await pub.cast({ type: 'add', by: 1 });
    sent += 20;
  }
  await until(() => handled.n - before >= sent, 60_000, 'draining the casts');
  return (sent * 1000) / (now() - start);
}

async function castRatio(file: (n: string) => string): Promise<Record<string, number>> {
  // In a directory of its own: the server's file watcher need not hear about the raw loop's writes.
  fs.mkdirSync(file('raw'));
  const raw = rawQueueLoop(file(path.join('raw', 'raw.sqlite')), MESSAGE, 'FULL');
  try {
    return await withSqlite(file('casts.sqlite'), async (tenant) => {
      const consumer = await Runtime.start(Counter, undefined, { tenant });
      const handled = handledCounter(consumer, 'cast');
      // Casting through the consuming ref itself; a consume:false ref would do the same work.
      const pub = consumer;
      await castSlice(pub, handled, RUN_MS / 3); // warm up (the JIT)
      for (let i = 0; i < 300; i++) raw.step();
      // Alternate slices of both loops; compare medians, so a noisy moment weighs on both alike.
      const slices = 6;
      const rawRates: number[] = [];
      const castRates: number[] = [];
      for (let i = 0; i < slices; i++) {
        rawRates.push(rawRate(raw.step, RUN_MS / slices));
        castRates.push(await castSlice(pub, handled, RUN_MS / slices));
      }
      const r = median(rawRates);
      const c = median(castRates);
      return {
        'server.sqlite.raw_msgs_per_s': Math.round(r),
        'server.sqlite.casts_per_s': Math.round(c),
        'server.sqlite.cast_ratio': round(c / r),
      };
    });
  } finally {
    raw.close();
  }
}

// ---- call latency -------------------------------------------------------------------------------

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

async function callLatency(file: (n: string) => string): Promise<Record<string, number>> {
  const full = await withSqlite(file('calls.sqlite'), async (tenant) => {
    const consumer = await Runtime.start(Counter, undefined, { tenant });
    const caller = await Runtime.start(Counter, undefined, { tenant, consume: false });
    await callTimes(consumer, 50, RUN_MS);
    const inline = await callTimes(consumer, 2000, RUN_MS / 2);
    await callTimes(caller, 50, RUN_MS);
    const queued = await callTimes(caller, 2000, RUN_MS / 2);
    return {
      'server.sqlite.call_inline_p50_ms': round(median(inline)),
      'server.sqlite.call_p50_ms': round(median(queued)),
    };
  });
  const normal = await withSqlite(
    file('calls-normal.sqlite'),
    async (tenant) => {
      await Runtime.start(Counter, undefined, { tenant });
      const caller = await Runtime.start(Counter, undefined, { tenant, consume: false });
      await callTimes(caller, 200, RUN_MS);
      return { 'server.sqlite.call_p50_normal_ms': round(median(await callTimes(caller, 2000, RUN_MS / 2))) };
    },
    'normal',
  );
  return { ...full, ...normal };
}

// ---- child processes ----------------------------------------------------------------------------

/**
 * Transpiles src/ and the worker helpers to plain CommonJS under .bench-tmp/js (no type check, as
 * ts-node --transpile-only would), so child processes start fast and carry no TypeScript compiler.
 */
function transpiledWorker(): string {
  const out = transpileTree(['src', 'test/helpers/runtime'], path.join(ROOT, '.bench-tmp', 'js'));
  return out(path.join(ROOT, 'test', 'helpers', 'runtime', 'worker.ts'));
}

async function idleRss(file: (n: string) => string, script: string): Promise<Record<string, number>> {
  const db = file('idle.sqlite');
  const workers = new Workers();
  try {
    const child = await workers.spawn({
      db,
      tenant: ['bench'],
      script,
      nodeArgs: ['--expose-gc'],
      // Memory and what idle neighbours cost, not fsyncs: 10,000 sequential starts at 'full' would
      // take minutes of disk flushes here.
      env: { DGEN_SYNCHRONOUS: 'normal' },
    });
    // Load everything a server needs (and let start-up garbage go) before the baseline.
    await child.rpc('start', { ref: 'warm', server: 'Counter', arg: { id: 'warm' }, opts: {} });
    const baseline = await child.rpc<number>('rss');
    await child.rpc<number>('castRate', { ms: RUN_MS / 3 }); // warm up (the JIT)
    const castsAlone = await child.rpc<number>('castRate', { ms: RUN_MS / 3 });
    const t0 = now();
    await child.rpc('startMany', { count: IDLE_SERVERS }, 600_000);
    const startMs = now() - t0;
    await sleep(200);
    const rss = await child.rpc<number>('rss');
    // What 10,000 idle neighbours cost one busy server in the same process.
    const castsAmongIdle = await child.rpc<number>('castRate', { ms: RUN_MS / 3 }, 120_000);
    await child.exit(30_000);
    return {
      'server.idle_baseline_rss_mb': round(baseline / 2 ** 20, 1),
      'server.idle_10k_rss_mb': round(rss / 2 ** 20, 1),
      'server.idle_10k_start_s': round(startMs / 1000, 1),
      'server.sqlite.casts_per_s_alone': Math.round(castsAlone),
      'server.sqlite.casts_per_s_among_10k_idle': Math.round(castsAmongIdle),
    };
  } finally {
    await workers.killAll();
  }
}

// ---- queue depth --------------------------------------------------------------------------------

/**
 * Fills the queue with `depth` casts (castMany, 1000 per transaction) while nobody consumes, then starts
 * a consumer and records when each message was handled. Returns the per-message cost (ms) of every run
 * of 100 consecutive messages, and the drain's mean per-message cost.
 */
async function drainCost(tenant: Tenant, depth: number): Promise<{ windows: number[]; mean: number }> {
  const pub = await Runtime.start(Counter, undefined, { tenant, consume: false });
  const batch = Array.from({ length: Math.min(depth, 1000) }, () => ({ type: 'add', by: 1 }));
  for (let left = depth; left > 0; left -= batch.length) await pub.castMany(batch.slice(0, left));
  const consumer = await Runtime.start(Counter, undefined, { tenant, consume: true });
  const times = new Float64Array(depth);
  let n = 0;
  consumer.events$.subscribe((e) => {
    if (e.type === 'handled' && n < depth) times[n++] = now();
  });
  await until(() => n >= depth, 600_000, `draining ${depth} messages`);
  await consumer.stop();
  await pub.stop();
  const windows: number[] = [];
  for (let i = 0; i + SHALLOW <= depth; i += SHALLOW)
    windows.push((times[i + SHALLOW - 1] - times[i]) / (SHALLOW - 1));
  return { windows, mean: (times[depth - 1] - times[0]) / (depth - 1) };
}

/**
 * Per-message cost draining a 100,000-deep queue ÷ a 100-deep one. Both sides are medians of the cost
 * of 100 consecutive messages (1,000 windows of the deep drain; 30 whole shallow drains around it), so
 * a busy moment on the machine weighs on neither side alone; the deep drain's plain mean is reported too.
 */
async function queueDepth(file: (n: string) => string): Promise<Record<string, number>> {
  return withSqlite(file('depth.sqlite'), async (tenant) => {
    await drainCost(tenant, SHALLOW); // warm up
    const shallow: number[] = [];
    for (let i = 0; i < 15; i++) shallow.push(...(await drainCost(tenant, SHALLOW)).windows);
    const deep = await drainCost(tenant, DEEP);
    for (let i = 0; i < 15; i++) shallow.push(...(await drainCost(tenant, SHALLOW)).windows);
    const s = median(shallow);
    const d = median(deep.windows);
    return {
      'server.queue_100_ms_per_msg': round(s, 4),
      'server.queue_100k_ms_per_msg': round(d, 4),
      'server.queue_100k_mean_ms_per_msg': round(deep.mean, 4),
      'server.queue_depth_cost_ratio': round(d / s),
    };
  });
}

// ---- all ----------------------------------------------------------------------------------------

export async function benchServer(): Promise<Record<string, number>> {
  const tmp = tempDir();
  try {
    const script = transpiledWorker();
    return {
      ...(await castRatio(tmp.file)),
      ...(await callLatency(tmp.file)),
      ...(await xprocFigures(tmp.file, script)),
      ...(await contentionFigures(tmp.file, script)),
      ...(await idleRss(tmp.file, script)),
      ...(await queueDepth(tmp.file)),
    };
  } finally {
    tmp.dispose();
  }
}

/** `npm run bench -- --only server-xproc`: the cross-process figures alone (bench/server-xproc.ts). */
export async function benchServerXproc(): Promise<Record<string, number>> {
  const tmp = tempDir();
  try {
    return await xprocFigures(tmp.file, transpiledWorker());
  } finally {
    tmp.dispose();
  }
}

if (require.main === module)
  void benchServer().then(
    (r) => console.log(r),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
