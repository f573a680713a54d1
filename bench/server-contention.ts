/**
 * What servers cost each other on one SQLite backend (issue #10), at synchronous=FULL:
 *
 * - server.sqlite.slow_neighbour_call_p99_ms   p99 of queued calls to a fast server while another server
 *                                              of the same backend (same process) keeps a 1 s handler
 *                                              running (goal ≤ 10); _p50_ms its median;
 *                                              no_neighbour_call_p99_ms: the same calls just before, alone
 * - server.sqlite.multi_consumer_drain_ratio   time for 3 consumer processes (maxBatch 1) to drain 300
 *                                              casts of a server whose state holds 3,500 ids ÷ the time
 *                                              for 1 (goal ≤ 1.5); _1_ms / _3_ms its parts;
 *                                              _cpu_1_ms / _cpu_3_ms: CPU the consumer processes used
 *                                              meanwhile, all together (standbys should add ~nothing)
 */
import type { Tenant } from '../src/backend/types';
import { Runtime } from '../src/facade/runtime';
import { Catalog, Counter, Sloth, type CatalogState } from '../test/helpers/runtime/servers';
import { openSqlite } from '../test/helpers/runtime/sqlite';
import { waitUntil, Workers } from '../test/helpers/runtime/workers';

const RUN_MS = Number(process.env.BENCH_MS ?? 3000);

const now = () => Number(process.hrtime.bigint()) / 1e6;
const round = (x: number, digits = 3) => Number(x.toFixed(digits));
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function slowNeighbour(file: (n: string) => string): Promise<Record<string, number>> {
  const backend = await openSqlite(file('neighbour.sqlite'), 'full');
  try {
    const tenant: Tenant = await backend.openTenant(['bench']);
    const sloth = await Runtime.start(Sloth, undefined, { tenant });
    await Runtime.start(Counter, { id: 'fast' }, { tenant });
    const caller = await Runtime.start(Counter, { id: 'fast' }, { tenant, consume: false });
    const callsFor = async (ms: number): Promise<number[]> => {
      const times: number[] = [];
      const start = now();
      while (now() - start < ms) {
        const t0 = now();
        await caller.call('get');
        times.push(now() - t0);
      }
      return times;
    };
    await callsFor(RUN_MS / 6); // warm up
    const alone = await callsFor(RUN_MS / 2);
    // Always one 1 s nap queued or running, for the whole measurement.
    await sloth.castMany(
      Array.from({ length: Math.ceil(RUN_MS / 1000) + 2 }, () => ({ type: 'nap', ms: 1000 })),
    );
    await new Promise((r) => setTimeout(r, 50));
    const times = await callsFor(RUN_MS);
    return {
      'server.sqlite.slow_neighbour_call_p50_ms': round(quantile(times, 0.5)),
      'server.sqlite.slow_neighbour_call_p99_ms': round(quantile(times, 0.99)),
      'server.sqlite.no_neighbour_call_p99_ms': round(quantile(alone, 0.99)),
    };
  } finally {
    await Runtime.stopAll();
    await backend.close();
  }
}

/**
 * Milliseconds `consumers` child processes (maxBatch 1) take to drain 300 casts of a 3,500-id server,
 * and the milliseconds of CPU they used meanwhile, together.
 */
async function drainMs(
  file: (n: string) => string,
  script: string,
  consumers: number,
): Promise<{ ms: number; cpuMs: number }> {
  const db = file(`drain-${consumers}.sqlite`);
  const backend = await openSqlite(db, 'full');
  const workers = new Workers();
  try {
    const tenant = await backend.openTenant(['bench']);
    const pub = await Runtime.start<CatalogState>(Catalog, { ids: 3500 }, { tenant, consume: false });
    const children = await Promise.all(
      Array.from({ length: consumers }, () =>
        workers.spawn({ db, tenant: ['bench'], script, env: { DGEN_SYNCHRONOUS: 'full' } }),
      ),
    );
    for (const c of children)
      await c.rpc('start', { ref: 'cat', server: 'Catalog', arg: { ids: 3500 }, opts: { maxBatch: 1 } });
    await pub.cast('bump');
    await waitUntil(
      () => pub.queueLength(),
      (n) => n === 0,
      60_000,
      5,
    );
    const cpu = () => Promise.all(children.map((c) => c.rpc<number>('cpu')));
    const cpu0 = await cpu();
    const t0 = now();
    await pub.castMany(Array.from({ length: 300 }, () => 'bump'));
    await waitUntil(
      () => pub.queueLength(),
      (n) => n === 0,
      300_000,
      5,
    );
    const ms = now() - t0;
    const cpuMs = (await cpu()).reduce((sum, us, i) => sum + us - cpu0[i], 0) / 1000;
    if ((await pub.readState()).count !== 301) throw new Error('bench: a cast was lost or doubled');
    await Promise.all(children.map((c) => c.exit()));
    return { ms, cpuMs };
  } finally {
    await Runtime.stopAll();
    await backend.close();
    await workers.killAll();
  }
}

export async function contentionFigures(
  file: (n: string) => string,
  script: string,
): Promise<Record<string, number>> {
  const neighbour = await slowNeighbour(file);
  const one = await drainMs(file, script, 1);
  const three = await drainMs(file, script, 3);
  return {
    ...neighbour,
    'server.sqlite.multi_consumer_drain_1_ms': Math.round(one.ms),
    'server.sqlite.multi_consumer_drain_3_ms': Math.round(three.ms),
    'server.sqlite.multi_consumer_drain_ratio': round(three.ms / one.ms),
    'server.sqlite.multi_consumer_cpu_1_ms': Math.round(one.cpuMs),
    'server.sqlite.multi_consumer_cpu_3_ms': Math.round(three.cpuMs),
  };
}
