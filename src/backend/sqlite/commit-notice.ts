import * as fs from 'node:fs';

const ONE = Buffer.from([1]);

/**
 * Tells the other processes on a SQLite file that this one committed. After every commit that wrote,
 * one byte is written at offset 0 of the side file `<db>-notify` (no fsync, the file stays one byte);
 * every process with watches has the operating system watch that file (inotify, kqueue, FSEvents
 * through `fs.watch`), so it wakes within microseconds. The byte is written only once SQLite's COMMIT
 * has returned, so the commit is visible to whoever wakes: no re-checks, no waiting for a poll.
 *
 * Cost: one `pwrite` system call per writing commit (microseconds), whether or not anyone listens.
 */
export class CommitNotice {
  readonly file: string;
  private fd: number | undefined;

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
    try {
      fs.writeSync(this.fd, ONE, 0, 1, 0);
    } catch {
      // best effort: watchers poll as well
    }
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
