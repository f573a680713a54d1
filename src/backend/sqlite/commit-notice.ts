import * as fs from 'node:fs';

const ONE = Buffer.from([1]);
/**
 * Commits closer together than this share a notice (ms): each notice costs a `pwrite` (~3 µs, ~20-60
 * µs when it wakes a sleeping process) and a wake-up of every watching process. Shorter than a
 * cross-process call (~1 ms), so that one caller's calls one after another are never held back: a held
 * notice waits for the end of the event-loop turn, behind whatever that turn still runs (at 1 ms,
 * 17-19% of a sequential call's notices were held, in both processes).
 */
const MIN_GAP_MS = 0.25;

/**
 * Tells the other processes on a SQLite file that this one committed. After every commit that wrote,
 * one byte is written at offset 0 of the side file `<db>-notify` (no fsync, the file stays one byte);
 * every process with watches has the operating system watch that file (inotify, kqueue, FSEvents
 * through `fs.watch`), so it wakes within microseconds. The byte is written only once SQLite's COMMIT
 * has returned, so the commit is visible to whoever wakes: no re-checks, no waiting for a poll.
 *
 * Cost: one `pwrite` system call per writing commit, whether or not anyone listens — but at most one
 * per MIN_GAP_MS: a commit that follows the last notice more closely leaves one trailing notice to the
 * end of the event-loop turn (a burst of commits is announced as it starts, every MIN_GAP_MS, and when
 * it ends).
 */
export class CommitNotice {
  readonly file: string;
  private fd: number | undefined;
  private last = -Infinity;
  private trailing: NodeJS.Immediate | undefined;

  constructor(dbFile: string) {
    this.file = `${dbFile}-notify`;
    try {
      this.fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    } catch {
      this.fd = undefined; // a read-only directory: other processes fall back to polling
    }
  }

  /** After a commit that wrote: wake the other processes' watchers. */
  post(): void {
    if (this.fd === undefined) return;
    if (performance.now() - this.last >= MIN_GAP_MS) return this.write();
    this.trailing ??= setImmediate(() => {
      this.trailing = undefined;
      this.write();
    });
  }

  private write(): void {
    if (this.fd === undefined) return;
    this.last = performance.now();
    try {
      fs.writeSync(this.fd, ONE, 0, 1, 0);
    } catch {
      // best effort: watchers poll as well
    }
  }

  close(): void {
    if (this.trailing) clearImmediate(this.trailing);
    this.trailing = undefined;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
