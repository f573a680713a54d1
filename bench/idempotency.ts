/**
 * What idempotency keys cost, on the SQLite backend at its default durability (synchronous=FULL).
 *
 *   npm run bench -- --only idempotency [--json]     (or alone: npx ts-node --transpile-only bench/idempotency.ts)
 *   BENCH_MS=… sets how long each side runs in total (3000 ms by default).
 *
 * Keys (all numbers):
 * - server.sqlite.plain_casts_per_s        cast (enqueue) + handle, one process, the consumer draining meanwhile
 * - server.sqlite.idempotent_casts_per_s   the same with a fresh idempotency key per cast (claim: one read of
 *                                          the key, one of the expiry index's head, two more keys written)
 * - server.sqlite.idempotent_cast_ratio    idempotent ÷ plain (goal ≥ 0.7); the two alternate in slices and
 *                                          their medians are compared, so a noisy moment weighs on both
 * - server.sqlite.idempotent_repeat_casts_per_s  repeats of keys already seen (nothing enqueued: one read commit)
 * - server.sqlite.idempotent_call_ratio    calls through the queue (consume:false caller, consumer in the same
 *                                          process) with a fresh key ÷ without; the key also stores the reply
 * - …_normal: the cast figures at synchronous=NORMAL (no fsync per commit), where the two extra rows a
 *   claim writes (the key, its expiry entry) weigh on SQLite's commit instead of hiding behind the fsync
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../src/facade/runtime';
import type { ServerRef } from '../src/runtime/server-ref';
import { Counter } from '../test/helpers/runtime/servers';
import { openSqlite } from '../test/helpers/runtime/sqlite';

const RUN_MS = Number(process.env.BENCH_MS ?? 3000);
const SLICES = 6;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, digits = 3) => Number(x.toFixed(digits));

let nextKey = 0;

/** Casts one after another for about `ms` (keyed or not), then waits until all were handled: casts/s. */
async function castSlice(
  ref: ServerRef,
  handled: { n: number },
  ms: number,
  keyed: boolean,
): Promise<number> {
  const before = handled.n;
  const start = now();
  let sent = 0;
  while (now() - start < ms) {
    for (let i = 0; i < 20; i++)
      await ref.cast({ type: 'add', by: 1 }, keyed ? { idempotencyKey: `k${nextKey++}` } : undefined);
    sent += 20;
  }
  const deadline = Date.now() + 60_000;
  while (handled.n - before < sent) {
    if (Date.now() > deadline) throw new Error('bench: the casts were not handled within 60 s');
    await sleep(1);
  }
  return (sent * 1000) / (now() - start);
}

/** Calls one after another for about `ms`: calls/s. */
async function callSlice(ref: ServerRef, ms: number, keyed: boolean): Promise<number> {
  const start = now();
  let n = 0;
  while (now() - start < ms) {
    await ref.call('get', keyed ? { idempotencyKey: `c${nextKey++}` } : undefined);
    n++;
  }
  return (n * 1000) / (now() - start);
}

/** Repeats of keys already claimed: resolved by one read, nothing enqueued. */
async function repeatRate(ref: ServerRef, ms: number): Promise<number> {
  const start = now();
  let n = 0;
  while (now() - start < ms) {
    await ref.cast({ type: 'add', by: 1 }, { idempotencyKey: `k${n % 1000}` });
    n++;
  }
  return (n * 1000) / (now() - start);
}

/** Plain and keyed casts (and calls) on one server, in alternating slices, at `synchronous`. */
async function figures(dir: string, synchronous: 'full' | 'normal'): Promise<Record<string, number>> {
  const backend = await openSqlite(path.join(dir, `idem-${synchronous}.sqlite`), synchronous);
  try {
    const tenant = await backend.openTenant(['bench']);
    const ref = await Runtime.start(Counter, undefined, { tenant });
    const handled = { n: 0 };
    ref.events$.subscribe((e) => void (e.type === 'handled' && e.kind === 'cast' && handled.n++));
    await castSlice(ref, handled, RUN_MS / 6, false); // warm up (the JIT)
    await castSlice(ref, handled, RUN_MS / 6, true);
    const plain: number[] = [];
    const keyed: number[] = [];
    for (let i = 0; i < SLICES; i++) {
      plain.push(await castSlice(ref, handled, RUN_MS / SLICES, false));
      keyed.push(await castSlice(ref, handled, RUN_MS / SLICES, true));
    }
    const p = median(plain);
    const k = median(keyed);
    if (synchronous === 'normal')
      return {
        'server.sqlite.plain_casts_per_s_normal': Math.round(p),
        'server.sqlite.idempotent_casts_per_s_normal': Math.round(k),
        'server.sqlite.idempotent_cast_ratio_normal': round(k / p),
      };
    const repeats = await repeatRate(ref, RUN_MS / 3);
    const caller = await Runtime.start(Counter, undefined, { tenant, consume: false, name: 'caller' });
    await callSlice(caller, RUN_MS / 6, true); // warm up
    const plainCalls: number[] = [];
    const keyedCalls: number[] = [];
    for (let i = 0; i < SLICES / 2; i++) {
      plainCalls.push(await callSlice(caller, RUN_MS / SLICES, false));
      keyedCalls.push(await callSlice(caller, RUN_MS / SLICES, true));
    }
    return {
      'server.sqlite.plain_casts_per_s': Math.round(p),
      'server.sqlite.idempotent_casts_per_s': Math.round(k),
      'server.sqlite.idempotent_cast_ratio': round(k / p),
      'server.sqlite.idempotent_repeat_casts_per_s': Math.round(repeats),
      'server.sqlite.idempotent_call_ratio': round(median(keyedCalls) / median(plainCalls)),
    };
  } finally {
    await Runtime.stopAll();
    await backend.close();
  }
}

export async function benchIdempotency(): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-bench-idem-'));
  try {
    return { ...(await figures(dir, 'full')), ...(await figures(dir, 'normal')) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module)
  void benchIdempotency().then(
    (r) => console.log(r),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
