/** What only the SQLite backend promises, beyond the shared contract. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pack, prefixRange, unboundVersionstamp } from '../../src/backend/keys';
import { SqliteBackend } from '../../src/backend/sqlite/sqlite-backend';
import { CommitNotice } from '../../src/backend/sqlite/commit-notice';
import { SqliteWatcher } from '../../src/backend/sqlite/sqlite-watcher';
import { FLUSH_BEHIND_MS } from '../../src/backend/sqlite/flush-behind';
import { sleep } from '../helpers/backend/factories';

let dir: string;
let file: string;
const open: SqliteBackend[] = [];
const backend = (options?: ConstructorParameters<typeof SqliteBackend>[1]) => {
  const b = new SqliteBackend(file, options);
  open.push(b);
  return b;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dgen-sqlite-'));
  file = join(dir, 'db.sqlite');
});
const waitUntil = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(2);
  }
};

afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
});

test('while another connection holds the write lock, the event loop keeps running and the transaction waits', async () => {
  const tenant = await backend().openTenant(['t']);
  const other = new Database(file);
  try {
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    let done = false;
    const pending = tenant.transact((tx) => tx.set(pack(['a']), Buffer.from('1'))).then(() => (done = true));
    await sleep(150);
    clearInterval(ticker);
    expect(done).toBe(false);
    // A blocked event loop would tick at most once (and, blocked on this lock, never get here); a busy
    // shared machine may tick far less often than every 5 ms, so the bar is low.
    expect(ticks).toBeGreaterThanOrEqual(3);
    other.exec('COMMIT');
    await pending;
    expect(done).toBe(true);
  } finally {
    other.close();
  }
});

test('a lock held longer than lockTimeoutMs fails the transaction with TRANSACTION_TIMED_OUT', async () => {
  const tenant = await backend({ lockTimeoutMs: 100 }).openTenant(['t']);
  const other = new Database(file);
  try {
    other.exec('BEGIN IMMEDIATE');
    await expect(tenant.transact((tx) => tx.set(pack(['a']), Buffer.from('1')))).rejects.toMatchObject({
      code: 'TRANSACTION_TIMED_OUT',
    });
    other.exec('ROLLBACK');
    await tenant.transact((tx) => tx.set(pack(['a']), Buffer.from('1')));
  } finally {
    other.close();
  }
});

test('a snapshot read does not wait for a writer in progress', async () => {
  const tenant = await backend().openTenant(['t']);
  await tenant.transact((tx) => tx.set(pack(['a']), Buffer.from('old')));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const writing = tenant.transact(async (tx) => {
    tx.set(pack(['a']), Buffer.from('new'));
    await gate;
  });
  expect((await tenant.read((tx) => tx.get(pack(['a']))))!.toString()).toBe('old');
  release();
  await writing;
  expect((await tenant.read((tx) => tx.get(pack(['a']))))!.toString()).toBe('new');
});

test('data and the commit-version order survive closing and reopening', async () => {
  const first = backend();
  let t = await first.openTenant(['t']);
  const before = await t.transact((tx) => {
    tx.setVersionstampedKey(['log', unboundVersionstamp()], Buffer.from('1'));
    return { p: tx.getVersionstamp() };
  });
  const stampBefore = await before.p;
  await first.close();

  t = await backend().openTenant(['t']);
  const after = await t.transact((tx) => {
    tx.setVersionstampedKey(['log', unboundVersionstamp()], Buffer.from('2'));
    return { p: tx.getVersionstamp() };
  });
  expect(Buffer.compare(stampBefore, await after.p)).toBeLessThan(0);
  const rows = await t.read((tx) => tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end));
  expect(rows.map((r) => r.value.toString())).toEqual(['1', '2']);
});

test('two backends on one file: versionstamps in commit order when they interleave, watches across', async () => {
  const [a, b] = [await backend().openTenant(['t']), await backend().openTenant(['t'])];
  for (let i = 0; i < 20; i++) {
    const t = [a, b, b, a, a, a, b][i % 7];
    await t.transact((tx) => tx.setVersionstampedKey(['log', unboundVersionstamp()], Buffer.from(String(i))));
  }
  const rows = await a.read((tx) => tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end));
  expect(rows.map((r) => Number(r.value.toString()))).toEqual(Array.from({ length: 20 }, (_, i) => i));

  const watch = await a.watch(pack(['w']));
  await b.transact((tx) => tx.add(pack(['w']), 1));
  expect(await watch.changed).toBe(true);
});

test('a backend keeps its block of commit versions across commits elsewhere that reserve none', async () => {
  const [a, b] = [await backend().openTenant(['t']), await backend().openTenant(['t'])];
  const counter = () => {
    const db = new Database(file, { readonly: true });
    try {
      const key = Buffer.from('\xff\xffdgen/commit-version', 'latin1');
      return db.prepare('SELECT value FROM kv WHERE key = ?').pluck().get(key);
    } finally {
      db.close();
    }
  };
  const stamp = (t: typeof a, i: number) =>
    t.transact((tx) => tx.setVersionstampedKey(['log', unboundVersionstamp()], Buffer.from(String(i))));
  await stamp(a, 0);
  const reserved = counter();
  // b commits between a's stamps, reserving nothing: a goes on in its block, the counter row untouched.
  for (let i = 1; i <= 3; i++) {
    await b.transact((tx) => tx.set(pack(['plain']), Buffer.from(String(i))));
    await stamp(a, i);
  }
  expect(counter()).toBe(reserved);
  // b reserves above a's block; a, once b has, reserves above b's: commit order holds throughout.
  await stamp(b, 4);
  await b.transact((tx) => tx.set(pack(['plain']), Buffer.from('5')));
  await stamp(a, 5);
  await stamp(a, 6);
  await stamp(b, 7);
  expect(counter()).not.toBe(reserved);
  const rows = await a.read((tx) => tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end));
  expect(rows.map((r) => Number(r.value.toString()))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
});

test("synchronous: 'normal' works and 'full' (an fsync per commit) is the default", async () => {
  const normal = backend({ synchronous: 'normal' });
  expect(normal.synchronous).toBe('normal');
  const t = await normal.openTenant(['t']);
  await t.transact((tx) => tx.set(pack(['a']), Buffer.from('1')));
  expect((await t.read((tx) => tx.get(pack(['a']))))!.toString()).toBe('1');
  const other = new SqliteBackend(join(dir, 'other.sqlite'));
  open.push(other);
  expect(other.synchronous).toBe('full');
});

test('the file holds one table, kv, in WAL mode; counters are plain rows', async () => {
  const t = await backend().openTenant(['t']);
  await t.transact((tx) => {
    tx.set(pack(['a']), Buffer.from('1'));
    tx.add(pack(['n']), 3);
    tx.setVersionstampedKey(['v', unboundVersionstamp()], Buffer.from('x'));
  });
  const raw = new Database(file, { readonly: true });
  try {
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual(['kv']);
    expect(raw.prepare('SELECT count(*) FROM kv').pluck().get()).toBe(4); // 3 keys + the version counter
  } finally {
    raw.close();
  }
});

test('close releases the files, watchers and timers: watches resolve false, the directory can be removed', async () => {
  const b = backend();
  const t = await b.openTenant(['t']);
  const w = await t.watch(pack(['w'])); // starts the cross-process watcher
  await b.close();
  expect(await w.changed).toBe(false);
  rmSync(dir, { recursive: true, force: true });
  expect(() => readdirSync(dir)).toThrow();
});

/**
 * A SqliteWatcher of `file` whose poll would only run after an hour (the notice file's change event
 * is all it has), counting its changes; `prompt` says whether a prompt watch exists. Runs `body`,
 * then stops it.
 */
async function withNoticeWatcher(
  prompt: () => boolean,
  body: (w: { watcher: SqliteWatcher; changes: () => number }) => Promise<void>,
): Promise<void> {
  const notice = new CommitNotice(file);
  const version = new Database(file);
  const dataVersion = version.prepare<[], number>('PRAGMA data_version').pluck();
  let changes = 0;
  const watcher = new SqliteWatcher(
    notice.file,
    () => dataVersion.get()!,
    () => true,
    () => changes++,
    prompt,
    3_600_000,
  );
  try {
    await body({ watcher, changes: () => changes });
  } finally {
    watcher.stop();
    notice.close();
    version.close();
  }
}

test('a commit elsewhere wakes a watcher through the notice file, without the poll', async () => {
  const ta = await backend().openTenant(['t']);
  await withNoticeWatcher(
    () => true,
    async ({ watcher, changes }) => {
      watcher.kick(); // the first check always runs
      await waitUntil(() => changes() === 1);
      for (let i = 1; i <= 3; i++) {
        await ta.transact((tx) => tx.set(pack(['k']), Buffer.from(String(i)))); // posts the notice
        await waitUntil(() => changes() === 1 + i);
      }
      // A transaction that wrote nothing changes nothing and posts nothing.
      await ta.transact((tx) => tx.get(pack(['k'])));
      await sleep(100);
      expect(changes()).toBe(4);
    },
  );
});

test('while every watch is lazy the watcher stops listening to commit notices and only polls; a prompt watch brings them back', async () => {
  const ta = await backend().openTenant(['t']);
  let prompt = false;
  await withNoticeWatcher(
    () => prompt,
    async ({ watcher, changes }) => {
      watcher.kick(); // the first check always runs
      await waitUntil(() => changes() === 1);
      for (let i = 1; i <= 20; i++) await ta.transact((tx) => tx.set(pack(['k']), Buffer.from(String(i))));
      await sleep(100);
      expect(changes()).toBe(1); // twenty commits elsewhere, and not one wake-up
      prompt = true;
      watcher.kick(); // a prompt watch was armed: listen again, and look once at what came meanwhile
      await waitUntil(() => changes() === 2);
      await ta.transact((tx) => tx.set(pack(['k']), Buffer.from('again')));
      await waitUntil(() => changes() === 3);
    },
  );
});

test("a lazy watch fires for another process's commit, by the poll; prompt watches beside it still fire", async () => {
  const ta = await backend().openTenant(['t']);
  const tb = await backend().openTenant(['t']); // another connection: as another process
  const lazy = await tb.watch(pack(['lease']), { lazy: true });
  await sleep(150); // a poll with only the lazy watch has come: b has stopped listening
  const t0 = Date.now();
  await ta.transact((tx) => tx.set(pack(['lease']), Buffer.from('released')));
  expect(await lazy.changed).toBe(true);
  expect(Date.now() - t0).toBeLessThan(1000); // within a poll (50 ms) on a quiet machine
  const prompt = await tb.watch(pack(['reply']));
  await ta.transact((tx) => tx.set(pack(['reply']), Buffer.from('done')));
  expect(await prompt.changed).toBe(true);
});

/** WAL frames written since the last checkpoint: a commit writes at least one, so they bound commits. */
const walFrames = (): number => {
  const db = new Database(file);
  try {
    return (db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0].log;
  } finally {
    db.close();
  }
};
const truncateWal = (): void => {
  const db = new Database(file);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
};

test('group commit: concurrent transactions of one process share commits; sequential ones do not', async () => {
  const t = await backend().openTenant(['t']);
  await t.transact((tx) => tx.set(pack(['warm']), Buffer.from('1')));
  truncateWal();
  for (let i = 0; i < 32; i++) await t.transact((tx) => tx.set(pack(['seq', i]), Buffer.from('x')));
  expect(walFrames()).toBeGreaterThanOrEqual(32);
  truncateWal();
  await Promise.all(
    Array.from({ length: 32 }, (_, i) => t.transact((tx) => tx.set(pack(['conc', i]), Buffer.from('x')))),
  );
  expect(walFrames()).toBeLessThanOrEqual(4);
  const rows = await t.read((tx) => tx.getRange(prefixRange(['conc']).start, prefixRange(['conc']).end));
  expect(rows).toHaveLength(32);
});

test('group commit: a member that throws or times out is undone alone; the others commit in order with distinct versionstamps', async () => {
  const t = await backend().openTenant(['t']);
  const results = await Promise.allSettled(
    Array.from({ length: 12 }, (_, i) =>
      t.transact(
        async (tx) => {
          tx.setVersionstampedKey(['log', unboundVersionstamp()], Buffer.from(String(i)));
          tx.set(pack(['mark', i]), Buffer.from('x'));
          if (i % 4 === 1) throw new Error(`member ${i} fails`);
          if (i % 4 === 2) await sleep(60); // past its 20 ms limit
          return i;
        },
        { timeoutMs: 20 },
      ),
    ),
  );
  const ok = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  expect(ok).toEqual([0, 3, 4, 7, 8, 11]);
  expect(
    results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason.code ?? 'thrown'),
  ).toEqual([
    'thrown',
    'TRANSACTION_TIMED_OUT',
    'thrown',
    'TRANSACTION_TIMED_OUT',
    'thrown',
    'TRANSACTION_TIMED_OUT',
  ]);
  const { log, marks } = await t.read(async (tx) => ({
    log: await tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end),
    marks: await tx.getRange(prefixRange(['mark']).start, prefixRange(['mark']).end),
  }));
  expect(log.map((r) => Number(r.value.toString()))).toEqual(ok); // commit order = arrival order
  expect(marks).toHaveLength(ok.length);
  // And the next transactions still get fresh, higher versionstamps.
  await t.transact((tx) => tx.setVersionstampedKey(['log', unboundVersionstamp()], Buffer.from('99')));
  const after = await t.read((tx) => tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end));
  expect(after.map((r) => r.value.toString()).at(-1)).toBe('99');
});

test.each(['throws', 'times out'])(
  'group commit: a first member that %s (it runs with no savepoint) is undone with its engine transaction; those behind it commit in order',
  async (how) => {
    const t = await backend().openTenant(['t']);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        t.transact(
          async (tx) => {
            tx.setVersionstampedKey(['first', unboundVersionstamp()], Buffer.from(String(i)));
            tx.set(pack(['firstmark', i]), Buffer.from('x'));
            if (i === 0 && how === 'throws') throw new Error('the first member fails');
            if (i === 0) await sleep(60); // past its 20 ms limit
            if (i === 3) throw new Error('a later member fails');
            return i;
          },
          { timeoutMs: 20 },
        ),
      ),
    );
    expect(results.map((r) => r.status === 'fulfilled')).toEqual([false, true, true, false, true, true]);
    const { log, marks } = await t.read(async (tx) => ({
      log: await tx.getRange(prefixRange(['first']).start, prefixRange(['first']).end),
      marks: await tx.getRange(prefixRange(['firstmark']).start, prefixRange(['firstmark']).end),
    }));
    expect(log.map((r) => Number(r.value.toString()))).toEqual([1, 2, 4, 5]);
    expect(marks).toHaveLength(4);
  },
);

test('group commit: a watch armed by one member fires for a later member of the same group', async () => {
  const t = await backend().openTenant(['t']);
  const [watch] = await Promise.all([
    t.transact((tx) => tx.watch(pack(['k']))),
    t.transact((tx) => tx.set(pack(['k']), Buffer.from('changed'))),
  ]);
  const fired = await Promise.race([watch.changed, sleep(1000).then(() => 'timeout')]);
  expect(fired).toBe(true);
});

test('deferFlush: deferred and flushed transactions commit in arrival order; a flushed one never joins a deferred group', async () => {
  const b = backend();
  const t = await b.openTenant(['t']);
  const log = (tx: Parameters<Parameters<typeof t.transact>[0]>[0], name: string) =>
    tx.setVersionstampedKey(['log', unboundVersionstamp()], Buffer.from(name));
  await t.transact((tx) => tx.set(pack(['warm']), Buffer.from('1')));
  truncateWal();
  const seen = await Promise.all([
    t.transact((tx) => log(tx, 'a'), { deferFlush: true }),
    t.transact((tx) => log(tx, 'b'), { deferFlush: true }),
    t.transact(
      async (tx) => (
        log(tx, 'c'),
        (await tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end)).length
      ),
    ),
    t.transact((tx) => log(tx, 'd'), { deferFlush: true }),
  ]);
  expect(seen[2]).toBe(3); // c saw a and b
  const rows = await t.read((tx) => tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end));
  expect(rows.map((r) => r.value.toString())).toEqual(['a', 'b', 'c', 'd']);
  // a and b shared a commit; c (flushed) did not join it, and d joined c's: two commits, one frame each.
  expect(walFrames()).toBe(2);
  // The writer is back at FULL after a flushed transaction, and at NORMAL only for deferred ones (the
  // setting itself, read from the connection: SQLite would ignore a re-run prepared pragma silently).
  const writer = (sqlite: SqliteBackend) =>
    (sqlite as unknown as { writer: Database.Database }).writer.pragma('synchronous', { simple: true });
  expect(writer(b)).toBe(2);
  await t.transact((tx) => log(tx, 'e'), { deferFlush: true });
  expect(writer(b)).toBe(1);
  await t.transact((tx) => log(tx, 'f'));
  expect(writer(b)).toBe(2);
  // Committed is committed: another connection sees all of it.
  const other = new Database(file, { readonly: true });
  expect((other.prepare('SELECT count(*) AS n FROM kv').get() as { n: number }).n).toBeGreaterThanOrEqual(5);
  other.close();
});

test('a file path is required', () => {
  for (const bad of ['', ':memory:', 'file::memory:'])
    expect(() => new SqliteBackend(bad)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
});

describe('flush behind (at full, commits that deferred their flush)', () => {
  // Counts the flushes FlushBehind asks of the operating system (and still makes them).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeFs = require('node:fs') as typeof import('node:fs');
  let fdatasync: jest.SpyInstance;
  beforeEach(() => (fdatasync = jest.spyOn(nodeFs, 'fdatasync')));
  afterEach(() => fdatasync.mockRestore());

  test('a deferred commit is flushed behind within FLUSH_BEHIND_MS, on the thread pool, once for several', async () => {
    const t = await backend().openTenant(['t']);
    await t.transact((tx) => tx.set(pack(['a']), Buffer.from('1')), { deferFlush: true });
    await t.transact((tx) => tx.set(pack(['b']), Buffer.from('1')), { deferFlush: true });
    expect(fdatasync).not.toHaveBeenCalled(); // not on the event loop's time
    await waitUntil(() => fdatasync.mock.calls.length > 0, FLUSH_BEHIND_MS + 2000);
    await sleep(FLUSH_BEHIND_MS + 100);
    expect(fdatasync).toHaveBeenCalledTimes(1); // both commits, one flush
  });

  test('a flushed commit after deferred ones makes the flush behind needless: none is made', async () => {
    const t = await backend().openTenant(['t']);
    await t.transact((tx) => tx.set(pack(['a']), Buffer.from('1')), { deferFlush: true });
    await t.transact((tx) => tx.set(pack(['b']), Buffer.from('1')));
    await sleep(FLUSH_BEHIND_MS + 200);
    expect(fdatasync).not.toHaveBeenCalled();
  });

  test('closing the backend flushes what is still deferred; at normal nothing is ever flushed behind', async () => {
    const full = backend();
    const t = await full.openTenant(['t']);
    await t.transact((tx) => tx.set(pack(['a']), Buffer.from('1')), { deferFlush: true });
    await full.close();
    expect(fdatasync).toHaveBeenCalledTimes(1);
    const normal = backend({ synchronous: 'normal' });
    const n = await normal.openTenant(['t']);
    await n.transact((tx) => tx.set(pack(['b']), Buffer.from('1')), { deferFlush: true });
    await n.transact((tx) => tx.set(pack(['c']), Buffer.from('1')));
    await sleep(FLUSH_BEHIND_MS + 200);
    await normal.close();
    expect(fdatasync).toHaveBeenCalledTimes(1);
  });
});
