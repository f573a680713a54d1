/**
 * Several processes on one SQLite file: real child processes (test/helpers/backend/kv-worker.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pack, prefixRange, unpack } from '../../src/backend/keys';
import { SqliteBackend } from '../../src/backend/sqlite/sqlite-backend';
import { KvWorker } from '../helpers/backend/kv-workers';

jest.setTimeout(60_000);

let dir: string;
let file: string;
const workers: KvWorker[] = [];
const start = async (n: number) => {
  const started = await Promise.all(Array.from({ length: n }, () => KvWorker.start(`sqlite:${file}`)));
  workers.push(...started);
  return started;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dgen-mp-'));
  file = join(dir, 'db.sqlite');
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.kill()));
  rmSync(dir, { recursive: true, force: true });
});

const openTenant = async () => {
  const backend = new SqliteBackend(file);
  return { backend, tenant: await backend.openTenant(['mp']) };
};

test('4 processes incrementing one counter by read-modify-write end exactly right', async () => {
  const ws = await start(4);
  const n = 150;
  await Promise.all(ws.map((w) => w.request('increment', { n })));
  const { backend, tenant } = await openTenant();
  try {
    const v = await tenant.read((tx) => tx.get(pack(['counter'])));
    expect(v!.readBigInt64LE(0)).toBe(BigInt(4 * n));
  } finally {
    await backend.close();
  }
});

test('versionstamped keys written by 2 processes come back in commit order', async () => {
  const ws = await start(2);
  await Promise.all(ws.map((w, i) => w.request('stamps', { n: 100, tag: `p${i}` })));
  const { backend, tenant } = await openTenant();
  try {
    const { start: s, end: e } = prefixRange(['log']);
    const rows = await tenant.read((tx) => tx.getRange(s, e));
    const entries = rows.map((r) => JSON.parse(r.value.toString()) as { tag: string; seq: number });
    // seq is the serialization order (each transaction read and bumped it); key order must match it.
    expect(entries.map((x) => x.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(entries.filter((x) => x.tag === 'p0')).toHaveLength(100);
    expect(entries.filter((x) => x.tag === 'p1')).toHaveLength(100);
  } finally {
    await backend.close();
  }
});

test('a watch in one process fires for a commit in another, both ways', async () => {
  const [w] = await start(1);
  const { backend, tenant } = await openTenant();
  try {
    // here → there
    await w.request('arm', { key: 'ping' });
    const fired = w.request<{ changed: boolean }>('fired', { key: 'ping' });
    const t0 = Date.now();
    await tenant.transact((tx) => tx.set(pack(['ping']), Buffer.from('1')));
    expect((await fired).changed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);

    // there → here
    const watch = await tenant.watch(pack(['pong']));
    await w.request('set', { key: 'pong', value: 'x' });
    expect(await watch.changed).toBe(true);

    // and a commit elsewhere that leaves the value as it was does not fire it
    const same = await tenant.watch(pack(['pong']));
    await w.request('set', { key: 'pong', value: 'x' });
    const result = await Promise.race([
      same.changed,
      new Promise((r) => setTimeout(() => r('pending'), 300)),
    ]);
    expect(result).toBe('pending');
    same.cancel();
  } finally {
    await backend.close();
  }
});

test('a commit in another process fires watches here while a snapshot read is open here, and that read still sees the file as it began', async () => {
  const [w] = await start(1);
  const { backend, tenant } = await openTenant();
  const within = <T>(p: Promise<T>, ms = 5000) =>
    Promise.race([p, new Promise<'timed out'>((r) => setTimeout(() => r('timed out'), ms))]);
  let release = () => {};
  try {
    await tenant.transact((tx) => tx.set(pack(['seen']), Buffer.from('old')));
    // No snapshot read open: the watched keys are re-read on the snapshot connection.
    const first = await tenant.watch(pack(['a']));
    await w.request('set', { key: 'a', value: '1' });
    expect(await within(first.changed)).toBe(true);

    // A snapshot read held open across the other process's commits: the watched keys must be re-read
    // elsewhere (in its snapshot, 'b' would look unchanged and the watch would never fire).
    let began!: () => void;
    const begun = new Promise<void>((r) => (began = r));
    const held = new Promise<void>((r) => (release = r));
    const reading = tenant.read(async (tx) => {
      const before = (await tx.get(pack(['seen'])))?.toString();
      began();
      await held;
      return [before, (await tx.get(pack(['seen'])))?.toString()];
    });
    await begun;
    const second = await tenant.watch(pack(['b']));
    await w.request('set', { key: 'seen', value: 'new' });
    await w.request('set', { key: 'b', value: '1' });
    expect(await within(second.changed)).toBe(true);
    release();
    expect(await reading).toEqual(['old', 'old']);
    expect((await tenant.read((tx) => tx.get(pack(['seen']))))?.toString()).toBe('new');

    // And with the snapshot connection free again.
    const third = await tenant.watch(pack(['a']));
    await w.request('set', { key: 'a', value: '2' });
    expect(await within(third.changed)).toBe(true);
  } finally {
    release(); // a failed expectation above leaves the read open, and close() waits for reads
    await backend.close();
  }
});

test('a process committing back to back does not lock another process out', async () => {
  const [hog, other] = await start(2);
  let acked = 0;
  await new Promise<void>((resolve) => {
    hog.onMessage((m) => {
      if (typeof m?.acked === 'number' && ++acked === 200) resolve();
    });
    void hog.request('stream');
  });
  const t0 = Date.now();
  await other.request('increment', { n: 30 });
  expect(Date.now() - t0).toBeLessThan(5000);
  const before = acked;
  await new Promise((r) => setTimeout(r, 200));
  expect(acked).toBeGreaterThan(before); // and the hog keeps going
});

test.each([1, 2])(
  'kill -9 in the middle of a stream of transactions loses no acknowledged commit and exposes no partial one (#%i)',
  async (round) => {
    const [w] = await start(1);
    const acked: number[] = [];
    // Kill at a different point each round, mid-stream (transactions run back to back).
    const killAt = 150 + round * 97;
    await new Promise<void>((resolve) => {
      w.onMessage((m) => {
        if (typeof m?.acked !== 'number') return;
        acked.push(m.acked);
        if (acked.length === killAt) resolve();
      });
      void w.request('stream');
    });
    await w.kill('SIGKILL');

    const raw = new Database(file);
    try {
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      raw.close();
    }
    const { backend, tenant } = await openTenant();
    try {
      const { a, b, count } = await tenant.read(async (tx) => ({
        a: await tx.getRange(prefixRange(['a']).start, prefixRange(['a']).end),
        b: await tx.getRange(prefixRange(['b']).start, prefixRange(['b']).end),
        count: await tx.get(pack(['count'])),
      }));
      const seq = (rows: { key: Buffer }[]) => rows.map((r) => Number(unpack(r.key)[1]));
      const seqA = seq(a);
      const seqB = seq(b);
      // every acknowledged commit is there
      for (const i of acked) expect(seqA).toContain(i);
      // no partial transaction: a, b and the count agree, and the commits are a prefix 0..n-1
      expect(seqB).toEqual(seqA);
      expect(count!.readBigInt64LE(0)).toBe(BigInt(seqA.length));
      expect(seqA).toEqual(Array.from({ length: seqA.length }, (_, i) => i));
      expect(seqA.length).toBeGreaterThanOrEqual(acked.length);
      // and the file is writable again
      await tenant.transact((tx) => tx.add(pack(['count']), 1));
    } finally {
      await backend.close();
    }
  },
);
