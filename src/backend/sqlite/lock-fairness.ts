import * as fs from 'node:fs';

/** How often a process that keeps the write lock busy looks for waiting processes (ms). */
const CHECK_MS = 10;
/** How long it then stays away from the lock, so a waiter's next retry finds it free (ms). */
export const YIELD_MS = 5;
/** A waiter's announcement counts for this long (ms). */
const RECENT_MS = 50;
/** A waiter announces itself at most this often (ms). */
const ANNOUNCE_MS = 2;

/**
 * Fair turns at SQLite's write lock between processes. SQLite has no queue for it: a waiter only
 * learns that the lock is free by trying again, so a process committing back to back, re-taking the
 * lock microseconds after releasing it, could keep every other process out indefinitely.
 *
 * So a waiter announces itself by touching a small side file (`<db>-waiting`), and a process that
 * holds the lock over and over looks at that file's time at most every CHECK_MS; if another process
 * announced itself lately, it stays away from the lock for YIELD_MS before its next transaction, and
 * waiters retry every 1-2 ms, so one of them gets in. A waiter that got the lock withdraws its
 * announcement (the holder would otherwise keep yielding for RECENT_MS to nobody: a standby consumer's
 * one short wait cost the active consumer of its server a quarter of 50 ms); other waiters announce
 * again within ANNOUNCE_MS. Without waiters, the cost is one `stat` per CHECK_MS of continuous writing.
 */
export class LockFairness {
  private readonly file: string;
  private lastCheck = 0;
  private lastYield = 0;
  private lastAnnounce = 0;
  private ownTouch = 0;

  constructor(dbFile: string) {
    this.file = `${dbFile}-waiting`;
  }

  /** Before taking the lock: should this process let a waiting one go first? */
  shouldYield(): boolean {
    const now = Date.now();
    if (now - this.lastCheck < CHECK_MS) return false;
    this.lastCheck = now;
    if (now - this.lastYield < CHECK_MS) return false;
    let touched: number;
    try {
      const stat = fs.statSync(this.file, { throwIfNoEntry: false });
      if (!stat) return false; // nobody has ever waited
      touched = stat.mtimeMs;
    } catch {
      return false;
    }
    // Our own announcements (we waited before we got the lock) do not count.
    if (touched <= this.ownTouch + 1 || now - touched > RECENT_MS) return false;
    this.lastYield = now;
    return true;
  }

  /** The lock is ours after waiting: our announcement, if it is still the latest, stops counting. */
  served(): void {
    if (this.ownTouch === 0) return;
    try {
      const stat = fs.statSync(this.file, { throwIfNoEntry: false });
      if (stat && stat.mtimeMs <= this.ownTouch + 1) fs.utimesSync(this.file, 0, 0);
    } catch {
      // best effort, as announcing
    }
    this.ownTouch = 0;
  }

  /** While waiting for the lock: tell the holder (throttled to every ANNOUNCE_MS). */
  announce(): void {
    const now = Date.now();
    if (now - this.lastAnnounce < ANNOUNCE_MS) return;
    this.lastAnnounce = now;
    try {
      const t = new Date(now);
      try {
        fs.utimesSync(this.file, t, t);
      } catch {
        fs.writeFileSync(this.file, '');
        fs.utimesSync(this.file, t, t);
      }
      this.ownTouch = now;
    } catch {
      // a read-only directory: fairness is best effort
    }
  }
}
