import { decodeInt64LE } from '../backend/common/int64';
import type { KeyValue, Transaction, ReadTransaction, Watch } from '../backend/types';
import type { ServerKeys } from './server-keys';
import { decodeWire, encodeWire, type QueueItem } from './wire';
import { queueItemExtras, type QueueItemExtras } from '../telemetry/queue-extras';

/**
 * `item` as stored, with the ops extras, built field by field in the order a spread would give (the
 * same bytes): the encoder walks an object made by spreading two others at 1.7 µs, this one at 0.6.
 */
function stored(item: QueueItem, extras: QueueItemExtras): QueueItem {
  const out: QueueItem =
    item.kind === 'call'
      ? { kind: item.kind, msg: item.msg, from: item.from, at: extras.at }
      : { kind: item.kind, msg: item.msg, at: extras.at };
  if (extras.trace) out.trace = extras.trace;
  return out;
}

/**
 * The server's durable FIFO queue, as dgen_queue: items keyed by versionstamp (commit order), push and
 * pop counters kept with atomic adds (so producers never conflict on them), and a watch on the push
 * counter that wakes consumers.
 */
export const DurableQueue = {
  push(tx: Transaction, keys: ServerKeys, items: readonly QueueItem[]): void {
    const extras = queueItemExtras(); // ops hook: enqueue time and trace context (src/telemetry)
    DurableQueue.pushEncoded(
      tx,
      keys,
      items.map((item) => encodeWire(stored(item, extras))),
    );
  },

  /** One item as `push` stores it, encoded (NOT_SERIALIZABLE before any write): see `pushEncoded`. */
  encodeItem(item: QueueItem): Buffer {
    return encodeWire(stored(item, queueItemExtras()));
  },

  /** Pushes items encoded by `encodeItem` (an outbox cast checks its message by encoding it, once). */
  pushEncoded(tx: Transaction, keys: ServerKeys, items: readonly Buffer[]): void {
    for (const item of items) tx.setVersionstampedKey(keys.queueItemStamped, item);
    tx.add(keys.pushCounter, items.length);
  },

  /** Up to `limit` items from the head, stopping before `end` (a queue item key) when given. */
  async peekMany(
    tx: ReadTransaction,
    keys: ServerKeys,
    limit: number,
    end: Buffer = keys.queueItems.end,
  ): Promise<Array<{ key: Buffer; item: QueueItem }>> {
    return DurableQueue.decoded(await DurableQueue.peekRows(tx, keys, limit, end));
  },

  /** Up to `limit` items from the head (stopping before `end`), not decoded (see `decoded`). */
  peekRows(
    tx: ReadTransaction,
    keys: ServerKeys,
    limit: number,
    end: Buffer = keys.queueItems.end,
  ): Promise<KeyValue[]> {
    return tx.getRange(keys.queueItems.start, end, { limit });
  },

  /** The items of rows read by `peekRows`. */
  decoded(rows: readonly KeyValue[]): Array<{ key: Buffer; item: QueueItem }> {
    return rows.map((r) => ({ key: r.key, item: decodeWire<QueueItem>(r.value) }));
  },

  /** The keys of up to `limit` items at the head (without decoding them). */
  async peekKeys(tx: ReadTransaction, keys: ServerKeys, limit: number): Promise<Buffer[]> {
    return (await DurableQueue.peekRows(tx, keys, limit)).map((r) => r.key);
  },

  pop(tx: Transaction, keys: ServerKeys, key: Buffer): void {
    tx.clear(key);
    tx.add(keys.popCounter, 1);
  },

  async length(tx: ReadTransaction, keys: ServerKeys): Promise<number> {
    const [pushed, popped] = await Promise.all([tx.get(keys.pushCounter), tx.get(keys.popCounter)]);
    return Number(decodeInt64LE(pushed) - decodeInt64LE(popped));
  },

  watchPush(tx: Transaction, keys: ServerKeys): Watch {
    return tx.watch(keys.pushCounter);
  },

  /** Wakes every consumer without adding an item (after a lock is released): both counters move, length stays. */
  notify(tx: Transaction, keys: ServerKeys): void {
    tx.add(keys.pushCounter, 1);
    tx.add(keys.popCounter, 1);
  },
};
