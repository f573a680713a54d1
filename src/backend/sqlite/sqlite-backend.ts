import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { BackendError, BadArgumentError } from '../../errors';
import { LockingBackend, type LockSession } from '../common/locking-backend';
import type { SyncStore } from '../common/sync-store';
import { CommitNotice } from './commit-notice';
import { CommitVersions } from './commit-versions';
import { FlushBehind } from './flush-behind';
import { LockFairness, YIELD_MS } from './lock-fairness';
import { registerSqlFunctions, SqliteStore } from './sqlite-store';
import { SqliteWatcher } from './sqlite-watcher';
import { SharedSnapshots } from './shared-snapshots';

export interface SqliteBackendOptions {
  /**
   * How durable a commit is once `transact` resolves (SQLite's `PRAGMA synchronous`, in WAL mode).
   * - `'full'` (the default): every commit is fsync'ed to disk before `transact` resolves, so an
   *   acknowledged message survives power loss and OS crashes, as on FoundationDB; one disk flush per
   *   commit (concurrent transactions of one process share commits, see LockingBackend). A transaction
   *   that acknowledges nothing defers its flush (TransactOptions.deferFlush: a call's push, a timer's
   *   fire, the handling of casts, infos and timers) to the next flushed commit, or to a flush on the
   *   thread pool within FLUSH_BEHIND_MS (200 ms) if none comes first; a power cut may take such
   *   commits back (their messages are then handled again), never an acknowledged one.
   * - `'normal'`: the commit has been handed to the operating system, so it survives a crash or
   *   `kill -9` of any process, but a power loss or OS crash may lose the last few commits (never a
   *   part of one: the file stays consistent). Faster where flushes are slow; SQLite's usual WAL setting.
   */
  synchronous?: 'normal' | 'full';
  /** How long a transaction waits for another process's write lock before failing (30 000 ms). */
  lockTimeoutMs?: number;
}

/** The row that holds the highest reserved commit version; user keys all start with a tenant prefix (0x05). */
const VERSION_KEY = Buffer.from('\xff\xffdgen/commit-version', 'latin1');

/**
 * Why a SQLite file cannot be opened, as BACKEND_UNAVAILABLE naming the file: a directory, a file that
 * is not a database, a parent path that is a regular file, no permission.
 */
function openError(file: string, err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const reason =
    code === 'SQLITE_NOTADB'
      ? 'the file exists but is not a SQLite database'
      : code === 'EEXIST' || code === 'ENOTDIR'
        ? 'a part of its directory path is a regular file'
        : code === 'EACCES' || code === 'EPERM' || code === 'SQLITE_READONLY'
          ? 'permission denied'
          : String(e?.message ?? err);
  return new BackendError(
    'BACKEND_UNAVAILABLE',
    `cannot open SQLite file ${file}: ${reason}${code ? ` (${code})` : ''}`,
    {
      cause: err,
    },
  );
}

function openingFile<T>(file: string, open: () => T): T {
  try {
    return open();
  } catch (err) {
    throw openError(file, err);
  }
}

/** Busy at the start of a write transaction means another process holds the lock: we wait, without blocking. */
const isBusy = (err: unknown): boolean =>
  typeof (err as { code?: unknown })?.code === 'string' &&
  /^SQLITE_(BUSY|LOCKED)/.test((err as { code: string }).code);

/**
 * How long a busy lock is retried on every turn of the event loop (ms): another process's commit,
 * fsync included, usually ends well within it, and a 1 ms timer would add a millisecond to the wait.
 */
const SPIN_MS = 1;

/** Between retries of a busy lock: the next turn of the event loop while `spin`, else in 1-2 ms. */
const pause = (spin: boolean): Promise<void> =>
  spin
    ? new Promise((resolve) => setImmediate(resolve))
    : new Promise((resolve) => setTimeout(resolve, 1 + Math.random()));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads watched keys on `db` (outside any transaction there): every key in one read transaction, one
 * snapshot and one pair of WAL-index locks (a read per key on its own would be a transaction per key,
 * thousands with thousands of idle servers). One key (a caller awaiting its reply, a lone consumer) is
 * one statement, a snapshot by itself.
 */
function rechecks(db: Database.Database, store: SqliteStore): (keys: Buffer[]) => Map<string, Buffer> {
  const inOne = db.transaction((keys: Buffer[]) => store.readMany(keys));
  return (keys) => (keys.length === 1 ? store.readMany(keys) : inOne(keys));
}

/**
 * The embedded durable backend: one SQLite file (WAL) that several processes on one machine share.
 *
 * - Writes: one connection per backend; a transaction is `BEGIN IMMEDIATE … COMMIT`, which SQLite
 *   serializes across processes. At `synchronous: 'full'`, concurrent transactions of this process
 *   share one commit and its fsync, each in a savepoint (group commit, see LockingBackend). The busy
 *   timeout is 0 and a busy `BEGIN` is retried from the event loop, so Node never blocks while another
 *   process holds the lock; LockFairness keeps a process that writes back to back from locking the
 *   others out.
 * - Versionstamps: commit versions come from a counter row in the same file (see CommitVersions), so
 *   they increase strictly in commit order across all processes.
 * - Snapshot reads: a second connection in a deferred read transaction (WAL readers never wait).
 * - Watches: commits of this process wake its watches directly; commits of other processes are noticed
 *   by a SqliteWatcher (woken by the CommitNotice each committer writes after its commit) and read back
 *   on the snapshot connection when it is free, else on a third connection.
 *
 * Data lives in one table, `kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID`.
 */
export class SqliteBackend extends LockingBackend {
  readonly kind = 'sqlite' as const;
  readonly path: string;
  readonly synchronous: 'normal' | 'full';
  private readonly writer: Database.Database;
  private readonly reader: Database.Database;
  private readonly writeStore: SqliteStore;
  private readonly readStore: SqliteStore;
  private readonly snapshots = new SharedSnapshots(
    () => this.beginRead(),
    () => this.endRead(),
  );
  private readonly lockTimeoutMs: number;
  private readonly fairness: LockFairness;
  private readonly sql: {
    begin: Database.Statement;
    commit: Database.Statement;
    rollback: Database.Statement;
    beginRead: Database.Statement;
    endRead: Database.Statement;
    probe: Database.Statement<[Buffer], unknown>;
    savepoint: Database.Statement;
    release: Database.Statement;
    rollbackTo: Database.Statement;
  };
  /** The writer's current `PRAGMA synchronous` (at 'full', commits that defer their flush switch it). */
  private writerSync: 'normal' | 'full';
  private readonly session: LockSession;
  private readonly notice: CommitNotice;
  private readonly flushBehind: FlushBehind;
  private watchDb: Database.Database | undefined;
  private watcher: SqliteWatcher | undefined;

  constructor(file: string, options: SqliteBackendOptions = {}) {
    super();
    if (typeof file !== 'string' || file === '' || file === ':memory:' || file.startsWith('file:'))
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        `SqliteBackend needs a file path (got ${JSON.stringify(file)}); for an in-memory store use MemoryBackend`,
      );
    const synchronous = options.synchronous ?? 'full';
    if (synchronous !== 'normal' && synchronous !== 'full')
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        `synchronous must be 'normal' or 'full' (got ${JSON.stringify(synchronous)})`,
      );
    if (file.includes('\0'))
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        `a SQLite file path cannot contain a NUL byte (got ${JSON.stringify(file)}); SQLite would cut the path there and open another file`,
      );
    this.path = path.resolve(file);
    this.synchronous = synchronous;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.fairness = new LockFairness(this.path);
    this.writer = openingFile(this.path, () => {
      fs.mkdirSync(path.dirname(this.path), { recursive: true });
      if (fs.statSync(this.path, { throwIfNoEntry: false })?.isDirectory())
        throw new BackendError('BACKEND_UNAVAILABLE', `${this.path} is a directory, not a SQLite file`);
      return this.connect();
    });
    try {
      // Creating the schema is the only write outside a transaction; once it exists this is read-only.
      if (!this.writer.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'").get())
        this.writer.exec('CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID');
      this.writer.pragma('busy_timeout = 0');
      this.reader = this.connect();
      this.reader.pragma('busy_timeout = 0');
    } catch (err) {
      this.writer.close();
      throw openError(this.path, err);
    }
    this.writeStore = new SqliteStore(this.writer);
    this.readStore = new SqliteStore(this.reader);
    this.sql = {
      begin: this.writer.prepare('BEGIN IMMEDIATE'),
      commit: this.writer.prepare('COMMIT'),
      rollback: this.writer.prepare('ROLLBACK'),
      beginRead: this.reader.prepare('BEGIN'),
      endRead: this.reader.prepare('COMMIT'),
      probe: this.reader.prepare<[Buffer], unknown>('SELECT 1 FROM kv WHERE key = ?'),
      savepoint: this.writer.prepare('SAVEPOINT member'),
      release: this.writer.prepare('RELEASE member'),
      rollbackTo: this.writer.prepare('ROLLBACK TO member'),
    };
    this.writerSync = synchronous;
    const versions = new CommitVersions(this.writer, VERSION_KEY);
    this.notice = new CommitNotice(this.path);
    this.flushBehind = new FlushBehind(this.path);
    // One transaction at a time per backend (the write lock), so one session object serves them all.
    this.session = {
      store: this.writeStore,
      allocateVersion: () => versions.allocate(),
      commit: (wrote) => {
        this.sql.commit.run();
        versions.committed();
        if (this.synchronous === 'full') {
          if (this.writerSync === 'full') this.flushBehind.flushed();
          else if (wrote) this.flushBehind.deferred();
        }
        if (wrote) this.notice.post();
      },
      rollback: () => {
        versions.rolledBack();
        if (this.writer.inTransaction) this.sql.rollback.run();
      },
    };
    // Group commit where a commit costs an fsync ('full'): each transaction of a group is a savepoint,
    // undone alone if it fails. At 'normal' a commit is cheaper than the event-loop turn a group waits.
    if (synchronous === 'full')
      Object.assign(this.session, {
        savepoint: () => {
          versions.savepoint();
          this.sql.savepoint.run();
        },
        releaseSavepoint: () => this.sql.release.run(),
        rollbackToSavepoint: () => {
          versions.rolledBackToSavepoint();
          this.sql.rollbackTo.run();
          this.sql.release.run();
        },
      } satisfies Partial<LockSession>);
  }

  protected begin(deferFlush: boolean): LockSession | Promise<LockSession> {
    if (this.synchronous === 'full') this.syncFor(deferFlush);
    if (this.fairness.shouldYield()) return this.beginWhenFree(YIELD_MS);
    try {
      this.sql.begin.run();
      return this.session;
    } catch (err) {
      if (!isBusy(err)) throw err;
      return this.beginWhenFree(0);
    }
  }

  /**
   * At 'full', a transaction that defers its flush (a call's push, see TransactOptions) commits at
   * NORMAL: its WAL frames are written but not fsync'ed, and the next FULL commit by any process
   * fsyncs the WAL file, which holds them before its own — so they are on disk before anything that
   * depends on them is acknowledged. (WAL frames carry a running checksum: after a power cut, recovery
   * keeps a prefix of the commits, never a later one without an earlier one.) The setting can only
   * change outside a transaction, hence here; and not through a prepared statement: SQLite applies
   * this pragma when it compiles it, so re-running a prepared one does nothing.
   */
  private syncFor(deferFlush: boolean): void {
    const wanted = deferFlush ? 'normal' : 'full';
    if (this.writerSync === wanted) return;
    this.writer.exec(`PRAGMA synchronous = ${wanted.toUpperCase()}`);
    this.writerSync = wanted;
  }

  /**
   * Another process holds the write lock (or we let one have a turn): try again from the event loop
   * until the lock is ours, announcing that we wait (see LockFairness).
   */
  private async beginWhenFree(firstDelayMs: number): Promise<LockSession> {
    const started = Date.now();
    const deadline = started + this.lockTimeoutMs;
    let lastError: unknown;
    await (firstDelayMs > 0 ? sleep(firstDelayMs) : pause(true));
    const spinFrom = performance.now();
    for (;;) {
      if (this.closed) throw new BackendError('BACKEND_CLOSED', 'this sqlite backend has been closed');
      try {
        this.sql.begin.run();
        this.fairness.served();
        return this.session;
      } catch (err) {
        if (!isBusy(err)) throw err;
        lastError = err;
      }
      if (Date.now() > deadline)
        throw new BackendError(
          'TRANSACTION_TIMED_OUT',
          `another process has held the write lock of ${this.path} for more than ${this.lockTimeoutMs} ms`,
          { cause: lastError },
        );
      if (Date.now() - started >= 2) this.fairness.announce();
      await pause(performance.now() - spinFrom < SPIN_MS);
    }
  }

  protected snapshot<T>(fn: (store: SyncStore) => Promise<T>): Promise<T> {
    return this.snapshots.run(() => fn(this.readStore));
  }

  /** Begins a read transaction on the reader and fixes its snapshot (see SharedSnapshots). */
  private async beginRead(): Promise<void> {
    if (this.closed) throw new BackendError('BACKEND_CLOSED', 'this sqlite backend has been closed');
    this.sql.beginRead.run();
    // The first read fixes the snapshot; in WAL mode it is busy only while another process recovers
    // the file after a crash, so retry that from the event loop too.
    for (let attempt = 0; ; attempt++) {
      try {
        this.sql.probe.get(VERSION_KEY);
        return;
      } catch (err) {
        if (!isBusy(err) || attempt > 1000) {
          this.endRead();
          throw err;
        }
      }
      await pause(attempt < 3);
    }
  }

  private endRead(): void {
    if (this.reader.inTransaction) this.sql.endRead.run();
  }

  protected override watchesArmed(): void {
    if (!this.watcher) {
      // data_version of the writing connection changes only for other connections' commits.
      const dataVersion = this.writer.prepare<[], number>('PRAGMA data_version').pluck();
      const onReader = rechecks(this.reader, this.readStore);
      let onOwn: ((keys: Buffer[]) => Map<string, Buffer>) | undefined;
      // On the reader when no snapshot read is open on it: the read that usually follows a wake-up
      // (the consumer's look at its queue, the caller's reply) then finds the reader's view of the file
      // up to date, where a connection of its own would be one more to catch up with the other
      // process's commit (re-reading the WAL index and the pages it changed) on every wake-up. While a
      // snapshot read is open there, its own connection (opened once, the first time).
      const readAll = (keys: Buffer[]): Map<string, Buffer> => {
        if (!this.reader.inTransaction) return onReader(keys);
        if (!onOwn) {
          this.watchDb = this.connect();
          this.watchDb.pragma('busy_timeout = 0');
          onOwn = rechecks(this.watchDb, new SqliteStore(this.watchDb));
        }
        return onOwn(keys);
      };
      this.watcher = new SqliteWatcher(
        this.notice.file,
        () => dataVersion.get()!,
        () => this.hub.size > 0 && !this.closed,
        () => this.hub.recheck(readAll),
        () => this.hub.wantsPrompt,
      );
    }
    this.watcher.kick();
  }

  protected async closeEngine(): Promise<void> {
    this.watcher?.stop();
    this.watchDb?.close();
    this.notice.close();
    await this.flushBehind.close();
    await this.snapshots.run(async () => undefined).catch(() => undefined); // reads under way end first
    this.reader.close();
    this.writer.close();
  }

  /** A connection with the shared settings. Opening may wait (up to 5 s) if the file is being created. */
  private connect(): Database.Database {
    const db = new Database(this.path, { timeout: 5000 });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.synchronous.toUpperCase()}`);
      db.pragma('journal_size_limit = 67108864');
      registerSqlFunctions(db);
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }
}
