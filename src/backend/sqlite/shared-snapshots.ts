/**
 * Snapshot reads of one process that arrive together share one read transaction: when a commit wakes
 * many servers at once, their consumers' reads cost one BEGIN…COMMIT, and SQLite reloads the pages the
 * commit changed once rather than once each (a read transaction that starts after another connection
 * wrote discards its page cache). A read joins only a transaction that has not begun yet, so the
 * snapshot it sees was taken after it was asked for: every commit that ended before the read sees it.
 */
export class SharedSnapshots {
  private waiting: Array<{ run: () => Promise<void>; fail: (err: unknown) => void }> = [];
  private running = false;

  constructor(
    /** Begins a read transaction and fixes its snapshot (may wait: another process recovers the file). */
    private readonly begin: () => void | Promise<void>,
    /** Ends it. */
    private readonly end: () => void,
  ) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // Settles whatever fn does (a read that fails fails alone; the others keep their snapshot).
      const run = async () => {
        try {
          resolve(await fn());
        } catch (err) {
          reject(err);
        }
      };
      this.waiting.push({ run, fail: reject });
      if (this.running) return;
      this.running = true;
      // A microtask later: reads asked for in the same turn (one commit's wake-ups) go together.
      queueMicrotask(() => void this.next());
    });
  }

  private async next(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.begin();
      } catch (err) {
        for (const w of batch) w.fail(err);
        continue;
      }
      try {
        await Promise.all(batch.map((w) => w.run()));
      } finally {
        this.end();
      }
    }
    this.running = false;
  }
}
