import * as fs from 'node:fs';
import * as path from 'node:path';
import type Database from 'better-sqlite3';

/** How often the fallback poll looks at `PRAGMA data_version` while watches exist (ms). */
export const WATCH_POLL_MS = 50;
/** Quick re-checks after a file event that showed no commit yet (see `check`). */
const FOLLOW_UPS = 3;

/**
 * Notices commits made by other connections (other processes, mostly) to one SQLite file, so that
 * watches set in this process fire for them. A commit in WAL mode writes to the `-wal` file, which
 * `fs.watch` on the directory reports at once; a poll every WATCH_POLL_MS backs it up where file
 * events are unreliable (network file systems, some containers). Either one only triggers a cheap
 * `PRAGMA data_version`, which changes exactly when another connection committed; then `onChange` runs.
 *
 * It runs only while `wanted()` says watches exist, holds no reference that keeps Node alive, and
 * `stop()` releases everything.
 */
export class SqliteWatcher {
  private fsWatcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private followUp: NodeJS.Timeout | undefined;
  private lastDataVersion = -1;
  private force = false;
  private readonly dataVersion: Database.Statement<[], number>;
  private readonly dir: string;
  private readonly names: Set<string>;

  constructor(
    file: string,
    db: Database.Database,
    private readonly wanted: () => boolean,
    private readonly onChange: () => void,
  ) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.dir = path.dirname(file);
    const base = path.basename(file);
    this.names = new Set([base, `${base}-wal`]);
  }

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
    if (this.followUp) clearTimeout(this.followUp);
    this.followUp = undefined;
  }

  private start(): void {
    if (this.poll) return;
    this.poll = setInterval(() => this.check(), WATCH_POLL_MS);
    this.poll.unref();
    try {
      this.fsWatcher = fs.watch(this.dir, { persistent: false }, (_event, name) => {
        if (name === null || this.names.has(String(name))) this.schedule();
      });
      this.fsWatcher.on('error', () => {
        this.fsWatcher?.close();
        this.fsWatcher = undefined; // the poll carries on alone
      });
    } catch {
      this.fsWatcher = undefined;
    }
  }

  /** Coalesces the burst of file events one commit makes into one check. */
  private schedule(): void {
    if (this.immediate) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.check(FOLLOW_UPS);
    });
  }

  /**
   * A commit writes its WAL frames (file events) before it publishes them in the shared-memory index
   * (no file event), so a check right after the last event may still see the old data_version: then
   * look again after 1, 2 and 4 ms rather than wait for the poll.
   */
  private check(followUps = 0): void {
    if (!this.wanted()) {
      this.stop();
      return;
    }
    let version: number;
    try {
      version = this.dataVersion.get()!;
    } catch {
      return; // busy (another process is recovering the file): the poll tries again
    }
    if (version === this.lastDataVersion && !this.force) {
      if (followUps > 0 && !this.followUp)
        this.followUp = setTimeout(
          () => {
            this.followUp = undefined;
            this.check(followUps - 1);
          },
          2 ** (FOLLOW_UPS - followUps),
        ).unref();
      return;
    }
    this.lastDataVersion = version;
    this.force = false;
    try {
      this.onChange();
    } catch {
      this.force = true; // try again on the next poll
    }
  }
}
