import * as fs from 'node:fs';

/**
 * How soon a commit that deferred its flush reaches the disk when no flushed commit comes first (ms):
 * what a power cut can take back of commits that acknowledged nothing, as PostgreSQL's asynchronous
 * commit bounds it with `wal_writer_delay` (200 ms).
 */
export const FLUSH_BEHIND_MS = 200;

/**
 * Flushes the WAL file of a SQLite file behind commits that deferred their flush (at `synchronous:
 * 'full'`, TransactOptions.deferFlush): such a commit is on disk once a later commit flushes — the WAL
 * holds the frames in commit order — or, if none comes within FLUSH_BEHIND_MS, once this flushes the
 * file itself, with `fdatasync` on libuv's thread pool, so the event loop never waits for the disk.
 * A flushed commit in this process cancels the pending flush; one in another process does not (it is
 * not seen here), which costs at most one needless `fdatasync`.
 */
export class FlushBehind {
  private readonly walFile: string;
  private fd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The flush under way on the thread pool, if any. */
  private running: Promise<void> | undefined;

  constructor(
    dbFile: string,
    private readonly delayMs = FLUSH_BEHIND_MS,
  ) {
    this.walFile = `${dbFile}-wal`;
  }

  /** A commit left its WAL frames unflushed: flush them within delayMs. */
  deferred(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), this.delayMs);
    this.timer.unref(); // an exiting process loses nothing: the frames are with the operating system
  }

  /** A flushed commit put every earlier frame on disk. */
  flushed(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Flushes now (on the thread pool); resolves once the frames written so far are on disk. */
  flush(): Promise<void> {
    this.flushed();
    const fd = this.open();
    if (fd === undefined) return Promise.resolve();
    const run = new Promise<void>((resolve) => fs.fdatasync(fd, () => resolve())); // best effort
    this.running = run;
    void run.then(() => {
      if (this.running === run) this.running = undefined;
    });
    return run;
  }

  /** Flushes what is still pending, then releases the file. */
  async close(): Promise<void> {
    if (this.timer) await this.flush();
    await this.running;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): number | undefined {
    if (this.fd !== undefined) return this.fd;
    try {
      this.fd = fs.openSync(this.walFile, 'r');
    } catch {
      this.fd = undefined; // no WAL file: nothing was written that needs a flush
    }
    return this.fd;
  }
}
