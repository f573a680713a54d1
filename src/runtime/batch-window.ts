import type { BackendKind, ReadTransaction } from '../backend/types';
import { DurableQueue } from './durable-queue';
import type { ServerKeys } from './server-keys';
import type { QueueItem } from './wire';

/** Most queue items one consumer transaction handles, unless the `maxBatch` option says otherwise. */
export const MAX_BATCH = 32;
/**
 * The default on PostgreSQL: there a consumer transaction costs round trips and a disk flush, not a
 * held write lock, so a longer batch divides that fixed cost over more messages while its handlers
 * still stop at BATCH_MS (drain of 5,000 casts: see the README's PostgreSQL figures).
 */
export const POSTGRES_MAX_BATCH = 128;

/** The `maxBatch` a server gets when its options name none, on a backend of this kind. */
export const defaultMaxBatch = (kind: BackendKind | undefined): number =>
  kind === 'postgres' ? POSTGRES_MAX_BATCH : MAX_BATCH;
/** Handler time after which a batch takes no further item (keeps the write lock and 5 s limit far). */
export const BATCH_MS = 10;

export type HeadItem = { key: Buffer; item: QueueItem };

/**
 * Which queue items the next consumer transaction takes. Normally up to `limit` from the head; after
 * a batch failed because of one item (the "suspect"), only the items before it, and then that item
 * alone — so its failures are counted (and it is dead-lettered) exactly as if batches did not exist.
 */
export class BatchWindow {
  private suspect?: Buffer;

  constructor(
    private readonly keys: ServerKeys,
    readonly limit: number = MAX_BATCH,
  ) {}

  /** No item is suspect: the next batch is simply the `limit` items at the head. */
  get plain(): boolean {
    return this.suspect === undefined;
  }

  async take(tx: ReadTransaction): Promise<HeadItem[]> {
    if (this.suspect) {
      const before = await DurableQueue.peekMany(tx, this.keys, this.limit, this.suspect);
      if (before.length > 0) return before;
      const head = await DurableQueue.peekMany(tx, this.keys, 1);
      if (head.length > 0 && head[0].key.equals(this.suspect)) return head;
      this.suspect = undefined; // it left the queue (handled, dead-lettered or taken by another consumer)
    }
    return DurableQueue.peekMany(tx, this.keys, this.limit);
  }

  /** The item at `key` made a batch of several fail: isolate it. */
  suspectItem(key: Buffer): void {
    this.suspect = key;
  }
}
