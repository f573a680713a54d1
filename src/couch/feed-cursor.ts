import { DgenError } from '../errors';
import type { ChangeRow, Seq } from './change-row';
import type { CheckpointStore } from './checkpoint-store';
import { markOf, type RowMark } from './db-replaced';
import { describeError } from './feed-error';
import type { FollowerCore } from './follower-core';
import { StopSignal } from './follower-core';

/**
 * Where the follower is in the feed — the seq to resume from, the last row handled, the last seq the
 * server accepted — and the checkpoints that make it durable.
 */
export class FeedCursor {
  /** The since of the last request the server accepted (ICouch's "last known good" seq). */
  lastGoodSeq: Seq | undefined;
  /** The last row handled, and before any, the checkpoint's: stored with each checkpoint. */
  private lastRow: ChangeRow | undefined;
  private dirty = false;

  constructor(
    public since: Seq | undefined,
    private resumedMark: RowMark | undefined,
    private readonly store: CheckpointStore | undefined,
  ) {}

  /** The id and revision of the last row read from this database (to tell whether it was replaced). */
  get mark(): RowMark | undefined {
    return this.lastRow ? markOf(this.lastRow) : this.resumedMark;
  }

  advance(seq: Seq): void {
    if (seq === this.since) return; // e.g. an empty longpoll answer: nothing new to checkpoint
    this.since = seq;
    this.dirty = true;
  }

  handled(row: ChangeRow): void {
    this.advance(row.seq);
    this.lastRow = row;
  }

  /** Starts over at `since` (a replaced database): nothing of the old one is kept. */
  restart(since: Seq | undefined): void {
    this.since = since;
    this.lastGoodSeq = this.lastRow = this.resumedMark = undefined;
    this.dirty = false;
  }

  /** Stores the last handled seq and the state, when they changed since the last checkpoint. */
  async flush<S>(core: FollowerCore<S>): Promise<void> {
    if (!this.store || !this.dirty || this.since === undefined) return;
    this.dirty = false;
    const seq = this.since;
    try {
      await this.store.save(seq, core.state, this.mark);
    } catch (err) {
      core.life.emit({ type: 'checkpoint-failed', error: err });
      throw new StopSignal(
        err instanceof DgenError
          ? err
          : new DgenError('BACKEND_UNAVAILABLE', `checkpoint failed: ${describeError(err)}`, { cause: err }),
      );
    }
    core.life.emit({ type: 'checkpointed', seq });
  }
}
