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
 * It runs only while `wanted()` says watches exist (it stops once two polls in a row found none, so a
 * process that watches one key after another, such as a caller awaiting replies, keeps one kernel
 * watch instead of adding and removing it each time), holds no reference that keeps Node alive, and
 * `stop()` releases everything. Idle, it costs one kernel file watch and one `data_version` per poll.
 * While every watch is lazy (`wantedPrompt()` false: a standby waiting out another process's lease),
 * file events check nothing and the next poll drops the file watch, so that the other process's
 * commits, thousands a second, do not each wake this one; the next prompt watch brings it back (at
 * most one file watch opened per poll, however a process mixes lazy and prompt watches).
 */
export class SqliteWatcher {
  private fsWatcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** A check is due when `immediate` runs. */
  private trailing = false;
  private lastDataVersion = -1;
  /** Polls in a row that found no watches. */
  private idlePolls = 0;
  /** fs.watch failed on this file: the poll carries on alone. */
  private noFileEvents = false;

  constructor(
    private readonly noticeFile: string,
    private readonly dataVersion: () => number,
    private readonly wanted: () => boolean,
    private readonly onChange: () => void,
    private readonly wantedPrompt: () => boolean = () => true,
    private readonly pollMs = WATCH_POLL_MS,
  ) {}

  /**
   * New watches exist: start listening if not already, and then check at once. A running watcher needs
   * no extra check: the new watches' baselines were read after every commit it has seen, and any later
   * commit by another process changes `data_version` again — unless it was only polling (lazy
   * watches), when a commit may have come since its last poll: then it listens again and checks.
   */
  kick(): void {
    if (this.poll) {
      if (this.fsWatcher || this.noFileEvents || !this.wantedPrompt()) return;
      this.listen();
      this.schedule();
      return;
    }
    this.start();
    this.lastDataVersion = -1; // the first check always compares
    this.schedule();
  }

  stop(): void {
    this.idlePolls = 0;
    this.unlisten();
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.trailing = false;
  }

  private start(): void {
    if (this.poll) return;
    this.poll = setInterval(() => this.check(true), this.pollMs);
    this.poll.unref();
    if (this.wantedPrompt()) this.listen();
  }

  private listen(): void {
    try {
      this.fsWatcher = fs.watch(this.noticeFile, { persistent: false }, () => this.noticed());
      this.fsWatcher.on('error', () => {
        this.unlisten();
        this.noFileEvents = true; // the poll carries on alone
      });
    } catch {
      this.fsWatcher = undefined;
      this.noFileEvents = true;
    }
  }

  private unlisten(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
  }

  /**
   * A file event: check at once (a hop through the event loop first would add its turn to every
   * cross-process wake-up), then hold further events of this turn — a burst of commits — for one
   * trailing check at its end.
   */
  private noticed(): void {
    if (!this.wantedPrompt()) return; // only lazy watches: the poll looks, and stops this listening
    if (this.immediate) {
      this.trailing = true;
      return;
    }
    this.holdUntilNextTurn();
    this.check();
  }

  /** One check at the end of this turn of the event loop. */
  private schedule(): void {
    this.trailing = true;
    if (!this.immediate) this.holdUntilNextTurn();
  }

  private holdUntilNextTurn(): void {
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      if (this.trailing) this.check();
      this.trailing = false;
    });
  }

  private check(fromPoll = false): void {
    if (!this.wanted()) {
      if (fromPoll && ++this.idlePolls >= 2) this.stop();
      return;
    }
    this.idlePolls = 0;
    if (fromPoll && this.fsWatcher && !this.wantedPrompt()) this.unlisten();
    let version: number;
    try {
      version = this.dataVersion();
    } catch {
      return; // busy (another process is recovering the file): the poll tries again
    }
    if (version === this.lastDataVersion) return;
    this.lastDataVersion = version;
    try {
      this.onChange();
    } catch {
      this.lastDataVersion = -1; // try again on the next poll
    }
  }
}
