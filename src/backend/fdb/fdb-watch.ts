import type { Database, Watch as NativeWatch } from 'foundationdb';
import type { Watch } from '../types';

const same = (a: Buffer | undefined, b: Buffer | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.equals(b);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * A contract watch on top of FoundationDB's: it fires only once the key's value really differs from
 * the value its transaction saw (FoundationDB may also wake a watch for a write of the same value, or
 * for an error), re-arming a native watch in a fresh transaction otherwise.
 */
export class FdbWatch implements Watch {
  readonly changed: Promise<boolean>;
  private resolve!: (changed: boolean) => void;
  private native: NativeWatch | undefined;
  private done = false;

  constructor(
    private readonly db: Database,
    private readonly key: Buffer,
    private readonly baseline: Promise<Buffer | undefined>,
    native: NativeWatch,
    private readonly live: Set<FdbWatch>,
  ) {
    this.changed = new Promise((resolve) => (this.resolve = resolve));
    this.native = native;
    baseline.catch(() => {}); // read by `follow` once the transaction commits, or dropped
  }

  /** Its transaction committed: the native watch is active now. */
  start(): void {
    if (this.done) return;
    this.live.add(this);
    void this.follow();
  }

  /** Its transaction failed: the native watch never starts. */
  abort(): void {
    this.finish(false);
  }

  cancel(): void {
    this.finish(false);
  }

  private async follow(): Promise<void> {
    let baseline: Buffer | undefined;
    try {
      baseline = await this.baseline;
    } catch {
      this.finish(false);
      return;
    }
    while (!this.done) {
      const fired = await this.native!.promise.then(
        (v) => v === true,
        () => false,
      );
      if (this.done) return;
      if (!fired) await sleep(100); // an error or a cancelled native watch: do not spin
      try {
        const next = await this.db.doTn(async (tn) => {
          const value = await tn.snapshot().get(this.key);
          return same(value, baseline) ? tn.watch(this.key) : undefined;
        });
        if (!next) {
          this.finish(true);
          return;
        }
        if (this.done) next.cancel();
        this.native = next;
      } catch {
        if (this.done) return;
        await sleep(100); // cluster trouble: look again shortly
      }
    }
  }

  private finish(changed: boolean): void {
    if (this.done) return;
    this.done = true;
    this.live.delete(this);
    this.native?.cancel();
    this.resolve(changed);
  }
}
