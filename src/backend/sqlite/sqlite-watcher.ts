import * as fs from 'node:fs';

/** How often the fallback poll looks at `PRAGMA data_version` while watches exist (ms). */
export const WATCH_POLL_MS = 50;

/**
 * Notices commits made by other processes to one SQLite file, so that watches set in this process fire
 * for them. Committers write a byte to the side file `<db>-notify` after each commit (CommitNotice), and
 * `fs.watch` on that file wakes this watcher within microseconds; a poll every WATCH_POLL_MS backs it up
 * where file events are unreliable (network file systems, some containers). Either one only triggers a
 * cheap `PRAGMA data_version` on this process's writing connection, which changes exactly when another
 * connection — another process — committed (this process's own commits wake its watches directly and
 * cost no recheck); then `onChange` runs.
 *
 * It runs only while `wanted()` says watches exist, holds no reference that keeps Node alive, and
 * `stop()` releases everything. Idle, it costs one kernel file watch and one `data_version` per poll.
 */
export class SqliteWatcher {
  private fsWatcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private lastDataVersion = -1;
  private force = false;

  constructor(
    private readonly noticeFile: string,
    private readonly dataVersion: () => number,
    private readonly wanted: () => boolean,
    private readonly onChange: () => void,
    private readonly pollMs = WATCH_POLL_MS,
  ) {}

  /** Starts listening (if not already) and checks soon even if nothing seems to have changed. */
  kick(): void {
    this.start();
    this.force = true;
    this.schedule();
  }

  stop(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  private start(): void {
    if (this.poll) return;
    this.poll = setInterval(() => this.check(), this.pollMs);
    this.poll.unref();
    try {
      this.fsWatcher = fs.watch(this.noticeFile, { persistent: false }, () => this.schedule());
      this.fsWatcher.on('error', () => {
        this.fsWatcher?.close();
        this.fsWatcher = undefined; // the poll carries on alone
      });
    } catch {
      this.fsWatcher = undefined;
    }
  }

  /** Coalesces the notices of a burst of commits into one check. */
  private schedule(): void {
    if (this.immediate) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.check();
    });
  }

  private check(): void {
    if (!this.wanted()) {
      this.stop();
      return;
    }
    let version: number;
    try {
      version = this.dataVersion();
    } catch {
      return; // busy (another process is recovering the file): the poll tries again
    }
    if (version === this.lastDataVersion && !this.force) return;
    this.lastDataVersion = version;
    this.force = false;
    try {
      this.onChange();
    } catch {
      this.force = true; // try again on the next poll
    }
  }
}
