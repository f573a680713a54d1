/**
 * Storage backend benchmarks (SQLite at synchronous=NORMAL in WAL, on both sides: what the contract
 * costs over raw SQLite, without the disk flush that synchronous=FULL, the default, adds to both).
 *
 *   npx ts-node --transpile-only bench/backend.ts        (or through bench/index.ts: npm run bench)
 *
 * - backend.sqlite.raw_msgs_per_s      a queue written by hand on better-sqlite3: push = ordered key
 *                                      insert + counter update, pop = first item + delete + counter
 *                                      update, two transactions per message, same file settings
 * - backend.sqlite.pushpop_msgs_per_s  the same loop through the contract: setVersionstampedKey + add,
 *                                      getRange(limit 1) + clear + add
 * - backend.sqlite.pushpop_ratio       pushpop ÷ raw, measured in alternating slices (goal ≥ 0.8)
 * - backend.sqlite.watch_p50_ms        commit in this process → watch fires in another (goal ≤ 5 ms)
 *
 * Every loop is bounded by BENCH_MS (default 3000 ms per side).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteBackend } from '../src/backend/sqlite/sqlite-backend';
import { pack, prefixRange, unboundVersionstamp } from '../src/backend/keys';
import { KvWorker } from '../test/helpers/backend/kv-workers';
import { rawQueueLoop } from './raw-queue';

/** Milliseconds each side of the push/pop comparison runs. */
const RUN_MS = Number(process.env.BENCH_MS ?? 3000);
const SYNCHRONOUS = 'normal' as const;
const MESSAGE = Buffer.alloc(100, 7);

function tempFile(name: string): { file: string; dispose: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-bench-'));
  return { file: path.join(dir, name), dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

interface Loop {
  step: () => void | Promise<void>;
  close: () => Promise<void>;
}

/** Messages per second of `step` (one message: a push and a pop) over about `ms`. */
async function rate(step: Loop['step'], ms: number): Promise<number> {
  const start = process.hrtime.bigint();
  const until = start + BigInt(Math.round(ms * 1e6));
  let n = 0;
  let now = start;
  while (now < until) {
    for (let i = 0; i < 50; i++) await step();
    n += 50;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs the two loops in alternating slices and compares the medians, so that a noisy moment on the
 * machine (other processes, disk flushes) weighs on both sides alike.
 */
async function compare(a: Loop, b: Loop, totalMs: number): Promise<[number, number]> {
  const slices = 10;
  const ra: number[] = [];
  const rb: number[] = [];
  for (let i = 0; i < 300; i++) {
    await a.step();
    await b.step();
  }
  for (let i = 0; i < slices; i++) {
    ra.push(await rate(a.step, totalMs / slices / 2));
    rb.push(await rate(b.step, totalMs / slices / 2));
  }
  return [median(ra), median(rb)];
}

/** The baseline (bench/raw-queue.ts), in a file of its own. */
function rawPushPop(): Loop {
  const { file, dispose } = tempFile('raw.sqlite');
  const raw = rawQueueLoop(file, MESSAGE, 'NORMAL');
  return {
    step: raw.step,
    close: async () => {
      raw.close();
      dispose();
    },
  };
}

/** The same loop through the backend contract: versionstamped key + atomic add; range read + clear + add. */
async function contractPushPop(): Promise<Loop> {
  const { file, dispose } = tempFile('contract.sqlite');
  const backend = new SqliteBackend(file, { synchronous: SYNCHRONOUS });
  {
    const tenant = await backend.openTenant(['bench']);
    const pushKey = pack(['push']);
    const popKey = pack(['pop']);
    const { start: qStart, end: qEnd } = prefixRange(['q']);
    const step = async () => {
      await tenant.transact((tx) => {
        tx.setVersionstampedKey(['q', unboundVersionstamp()], MESSAGE);
        tx.add(pushKey, 1);
      });
      await tenant.transact(async (tx) => {
        const [item] = await tx.getRange(qStart, qEnd, { limit: 1 });
        if (item) {
          tx.clear(item.key);
          tx.add(popKey, 1);
        }
      });
    };
    return {
      step,
      close: async () => {
        await backend.close();
        dispose();
      },
    };
  }
}

/**
 * Cross-process watch latency: process B (a kv-worker child) has a watch armed on a key; this process
 * commits a change to it; B notes when its watch fired. Both read the same monotonic clock
 * (process.hrtime: CLOCK_MONOTONIC on Linux and macOS), so the difference is the latency, measured from
 * the start of the committing transact() call.
 */
async function watchLatencyMs(): Promise<number> {
  const { file, dispose } = tempFile('watch.sqlite');
  const backend = new SqliteBackend(file, { synchronous: SYNCHRONOUS });
  let worker: KvWorker | undefined;
  try {
    const tenant = await backend.openTenant(['mp']); // the worker's tenant
    worker = await KvWorker.start(`sqlite:${file}`);
    const samples: number[] = [];
    const until = Date.now() + Math.min(RUN_MS, 3000);
    for (let i = 0; i < 300 && (i < 30 || Date.now() < until); i++) {
      await worker.request('arm', { key: 'w' });
      const fired = worker.request<{ changed: boolean; at: string }>('fired', { key: 'w' });
      const t0 = process.hrtime.bigint();
      await tenant.transact((tx) => tx.set(pack(['w']), Buffer.from(String(i))));
      const { at } = await fired;
      if (i >= 5) samples.push(Number(BigInt(at) - t0) / 1e6); // the first few warm B up
    }
    return median(samples);
  } finally {
    await worker?.stop();
    await backend.close();
    dispose();
  }
}

export async function benchBackend(): Promise<Record<string, number>> {
  const rawLoop = rawPushPop();
  const contractLoop = await contractPushPop();
  let raw: number;
  let contract: number;
  try {
    [raw, contract] = await compare(rawLoop, contractLoop, RUN_MS * 2);
  } finally {
    await rawLoop.close();
    await contractLoop.close();
  }
  const watchP50 = await watchLatencyMs();
  return {
    'backend.sqlite.raw_msgs_per_s': Math.round(raw),
    'backend.sqlite.pushpop_msgs_per_s': Math.round(contract),
    'backend.sqlite.pushpop_ratio': Number((contract / raw).toFixed(3)),
    'backend.sqlite.watch_p50_ms': Number(watchP50.toFixed(3)),
  };
}

if (require.main === module) void benchBackend().then((r) => console.log(r));
