/**
 * ChangesFollower benchmarks, against PouchDB Server (express-pouchdb, in-memory, in a child
 * process so the server's CPU is not the follower's):
 *
 *   npx ts-node --transpile-only bench/follower.ts     (or through bench/index.ts: npm run bench)
 *
 * Throughput: a 10,000-document db (docs of 100–500 bytes), includeDocs, from since=0; every side
 * runs ROUNDS times, alternating, after a warm-up; the medians are reported.
 * - follower.changes_per_s           rows/s delivered to @OnChange, default options (continuous feed)
 * - follower.bare_fetch_per_s        the same continuous feed read by a bare fetch loop (read, split
 *                                    lines, JSON.parse each row)
 * - follower.changes_ratio           ours ÷ bare fetch (goal ≥ 0.7)
 * - follower.nano_per_s              nano's changesReader.get() with its defaults (longpoll requests of
 *                                    100 rows); spool() is left out: it expects a normal feed with one
 *                                    row per line and PouchDB Server sends it as one line, so it never ends
 * - follower.vs_nano_ratio           ours (defaults, as above) ÷ nano (defaults) (goal ≥ 1.0)
 * - follower.longpoll100_vs_nano_ratio    same feed and batch on both sides: ours with
 *                                    { feed: 'longpoll', limit: 100 } ÷ nano get({ batchSize: 100 })
 * - follower.longpoll1000_vs_nano_ratio   the same with 1000-row batches
 * Client-bound, the same feed bytes (10,000 rows, five times over) replayed by a plain Node HTTP
 * server at full speed (no PouchDB in the way), so the figures show the follower's own overhead:
 * - follower.replay_changes_per_s / follower.replay_bare_fetch_per_s / follower.replay_ratio
 * Reconnection, through the fault proxy, default jitter (0–500 ms):
 * - follower.reconnect_ms            median time from cutting the connection to the first change
 *                                    handled after it (a doc written right after the cut) (goal ≤ 1000)
 * - follower.reconnect_max_ms        the slowest of RECONNECTS
 *
 * PouchDB Server writes a continuous feed row by row and is the bottleneck there (ours and the bare
 * loop both run at its pace); it answers batched requests much faster, hence the batched comparisons.
 */
import 'reflect-metadata';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import nano from 'nano';
import {
  ChangesFollower,
  OnChange,
  follow,
  type ChangeRow,
  type FollowOptions,
  type FollowerRef,
} from '../src/couch';
import { Init } from '../src/decorators';
import { startFollower } from '../src/couch/start-follower';
import { defineClass } from '../src/registry/class-definition';
import { ok, stop } from '../src/returns';
import { FaultProxy } from '../test/helpers/couch/fault-proxy';
import { startPouchServer } from '../test/helpers/couch/pouch-server';
import { runMain } from './run-main';

const DOCS = Number(process.env.BENCH_FOLLOWER_DOCS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_FOLLOWER_ROUNDS ?? 5);
/** The replayed feed is the captured one this many times over (longer runs, less start-up noise). */
const REPLAYS = 5;
const RECONNECTS = Number(process.env.BENCH_FOLLOWER_RECONNECTS ?? 10);

/** Rejects instead of hanging when something never happens. */
function withTimeout<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench/follower: timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 0) => Number(x.toFixed(digits));

interface CountArg {
  url: string;
  target: number;
  options?: FollowOptions;
}

/** Counts rows; stops itself with 'done' at the target. */
@ChangesFollower()
class Counter {
  private target = 0;
  @Init() init(arg: CountArg) {
    this.target = arg.target;
    return follow(arg.url, { n: 0, bytes: 0 }, { includeDocs: true, since: 0, ...arg.options });
  }
  @OnChange() change(row: ChangeRow, s: { n: number; bytes: number }) {
    const next = { n: s.n + 1, bytes: s.bytes + (row.doc ? (row.doc.payload as string).length : 0) };
    return next.n >= this.target ? stop('done', next) : ok(next);
  }
}

async function oursPerSecond(url: string, options?: FollowOptions, target = DOCS): Promise<number> {
  const started = performance.now();
  const ref = await startFollower<{ n: number }>(defineClass(Counter), { url, target, options });
  const reason = await withTimeout(ref.done, 'the follower to read the feed', 120_000);
  if (reason !== 'done') throw new Error(`the follower stopped with ${String(reason)}`);
  return target / ((performance.now() - started) / 1000);
}

/** The minimal correct reader of the same feed: fetch, split lines, JSON.parse each row. */
async function bareFetchPerSecond(url: string, target = DOCS): Promise<number> {
  const started = performance.now();
  const ac = new AbortController();
  const res = await fetch(
    `${url}/_changes?feed=continuous&heartbeat=60000&timeout=7200000&since=0&include_docs=true`,
    {
      headers: { accept: 'application/json', 'accept-encoding': 'identity' },
      signal: ac.signal,
    },
  );
  if (!res.body) throw new Error('no body');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let n = 0;
  let bytes = 0;
  while (n < target) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let start = 0;
    let nl: number;
    while ((nl = buffered.indexOf('\n', start)) !== -1) {
      if (nl > start) {
        const row = JSON.parse(buffered.slice(start, nl)) as { id?: string; doc?: { payload?: string } };
        if (row.id !== undefined) {
          n++;
          bytes += row.doc?.payload?.length ?? 0;
        }
      }
      start = nl + 1;
    }
    buffered = buffered.slice(start);
  }
  ac.abort();
  if (n < target || bytes === 0) throw new Error(`bare fetch read ${n} rows`);
  return target / ((performance.now() - started) / 1000);
}

/** nano's changesReader.get() (repeated longpoll requests of batchSize rows) until DOCS rows arrived. */
async function nanoPerSecond(server: string, db: string, batchSize?: number): Promise<number> {
  const client = nano(server);
  const started = performance.now();
  const reader = client.use(db).changesReader;
  const read = new Promise<void>((resolve, reject) => {
    let n = 0;
    const opts = { since: '0', includeDocs: true, ...(batchSize ? { batchSize } : {}) };
    const ee = reader.get(opts);
    ee.on('batch', (rows: unknown[]) => {
      n += rows.length;
      if (n >= DOCS) {
        reader.stop();
        resolve();
      }
    });
    ee.on('error', reject);
  });
  await withTimeout(read, `nano's changesReader (batchSize ${batchSize ?? 'default'})`, 120_000);
  return DOCS / ((performance.now() - started) / 1000);
}

@ChangesFollower()
class Watcher {
  @Init() init(url: string) {
    return follow(url, 0, { since: 'now', heartbeat: 10_000 }); // default jitter
  }
  @OnChange() change(_row: ChangeRow, n: number) {
    return ok(n + 1);
  }
}

/** Cut → first change handled after it, RECONNECTS times, through the fault proxy. */
async function reconnectTimes(
  host: string,
  port: number,
  db: nano.DocumentScope<unknown>,
  dbName: string,
): Promise<number[]> {
  const proxy = await FaultProxy.start(host, port);
  const times: number[] = [];
  let ref: FollowerRef<number> | undefined;
  try {
    ref = await startFollower<number>(defineClass(Watcher), `${proxy.url}/${dbName}`);
    const r = ref;
    const waitConnected = () =>
      new Promise<void>((resolve) => {
        const sub = r.events$.subscribe((e) => {
          if (e.type === 'connected') {
            sub.unsubscribe();
            resolve();
          }
        });
      });
    const firstChange = () =>
      new Promise<number>((resolve) => {
        const sub = r.events$.subscribe((e) => {
          if (e.type === 'change') {
            sub.unsubscribe();
            resolve(performance.now());
          }
        });
      });
    // warm up: a first connection (since=now: only after it is up can a write be seen) and change
    await withTimeout(waitConnected(), 'the first connection');
    const warm = firstChange();
    await db.insert({ _id: 'warm-up' });
    await withTimeout(warm, 'the warm-up change');
    for (let i = 0; i < RECONNECTS; i++) {
      const connected = waitConnected();
      const changed = firstChange();
      const cutAt = performance.now();
      proxy.cutAll();
      await db.insert({ _id: `after-cut-${i}` });
      times.push((await withTimeout(changed, `the change after cut ${i + 1}`)) - cutAt);
      await withTimeout(connected, 'the reconnection');
    }
  } finally {
    await ref?.stop().catch(() => undefined);
    await proxy.close();
  }
  return times;
}

/** The continuous feed's bytes, DOCS rows, as PouchDB Server sent them. */
async function captureFeed(url: string): Promise<Buffer> {
  const ac = new AbortController();
  const res = await fetch(`${url}/_changes?feed=continuous&since=0&include_docs=true&heartbeat=60000`, {
    headers: { 'accept-encoding': 'identity' },
    signal: ac.signal,
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const parts: Buffer[] = [];
  let rows = 0;
  while (rows < DOCS) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(Buffer.from(value));
    for (const b of value) if (b === 0x0a) rows++;
  }
  ac.abort();
  return Buffer.concat(parts);
}

/**
 * A server that answers every `_changes` request with the captured bytes (64 KiB writes) and then
 * keeps the response open: the client is the only bottleneck, so this shows our own overhead.
 */
async function replayServer(feed: Buffer): Promise<{ url: string; close(): Promise<void> }> {
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    open.add(res);
    res.on('close', () => open.delete(res));
    let at = 0;
    const pump = () => {
      while (at < feed.length) {
        const ok = res.write(feed.subarray(at, at + 65_536));
        at += 65_536;
        if (!ok) return void res.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/replay`,
    close: () =>
      new Promise<void>((r) => {
        for (const res of open) res.destroy();
        server.close(() => r());
      }),
  };
}

export async function benchFollower(): Promise<Record<string, number>> {
  const server = await startPouchServer();
  try {
    const client = nano(server.url);
    const dbName = 'bench-follower';
    await client.db.create(dbName);
    const db = client.use<{ n: number; payload: string }>(dbName);
    for (let i = 0; i < DOCS; i += 500)
      await db.bulk({
        docs: Array.from({ length: Math.min(500, DOCS - i) }, (_, k) => ({
          _id: `doc-${String(i + k).padStart(6, '0')}`,
          n: i + k,
          payload: 'x'.repeat(100 + ((i + k) % 400)),
        })),
      });
    const url = `${server.url}/${dbName}`;

    // warm-up (JIT on both sides, server caches), then alternate so drift hits every side alike
    await bareFetchPerSecond(url);
    await oursPerSecond(url);
    await nanoPerSecond(server.url, dbName);
    const runs: Record<string, number[]> = {
      ours: [],
      bare: [],
      nano: [],
      ours100: [],
      ours1000: [],
      nano1000: [],
    };
    for (let r = 0; r < ROUNDS; r++) {
      runs.bare.push(await bareFetchPerSecond(url));
      runs.ours.push(await oursPerSecond(url));
      runs.nano.push(await nanoPerSecond(server.url, dbName));
      runs.ours100.push(await oursPerSecond(url, { feed: 'longpoll', limit: 100 }));
      runs.ours1000.push(await oursPerSecond(url, { feed: 'longpoll', limit: 1000 }));
      runs.nano1000.push(await nanoPerSecond(server.url, dbName, 1000));
    }
    const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));

    const captured = await captureFeed(url);
    const replay = await replayServer(Buffer.concat(Array<Buffer>(REPLAYS).fill(captured)));
    const replayRows = DOCS * REPLAYS;
    const replayRuns: Record<string, number[]> = { ours: [], bare: [] };
    try {
      await bareFetchPerSecond(replay.url, replayRows);
      await oursPerSecond(replay.url, undefined, replayRows);
      for (let r = 0; r < ROUNDS; r++) {
        replayRuns.bare.push(await bareFetchPerSecond(replay.url, replayRows));
        replayRuns.ours.push(await oursPerSecond(replay.url, undefined, replayRows));
      }
    } finally {
      await replay.close();
    }

    const reconnects = await reconnectTimes(
      server.host,
      server.port,
      db as nano.DocumentScope<unknown>,
      dbName,
    );

    return {
      'follower.changes_per_s': round(m.ours),
      'follower.bare_fetch_per_s': round(m.bare),
      'follower.changes_ratio': round(m.ours / m.bare, 3),
      'follower.nano_per_s': round(m.nano),
      'follower.vs_nano_ratio': round(m.ours / m.nano, 3),
      'follower.longpoll100_vs_nano_ratio': round(m.ours100 / m.nano, 3),
      'follower.longpoll1000_vs_nano_ratio': round(m.ours1000 / m.nano1000, 3),
      'follower.replay_changes_per_s': round(median(replayRuns.ours)),
      'follower.replay_bare_fetch_per_s': round(median(replayRuns.bare)),
      'follower.replay_ratio': round(median(replayRuns.ours) / median(replayRuns.bare), 3),
      'follower.reconnect_ms': round(median(reconnects)),
      'follower.reconnect_max_ms': round(Math.max(...reconnects)),
    };
  } finally {
    await server.close();
  }
}

if (require.main === module)
  runMain(benchFollower, (figures) => {
    for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(30)} ${v}`);
  });
