import { pack, prefixRange, unpack } from '../backend/keys';
import type { ReadTransaction, Transaction } from '../backend/types';
import { DurableQueue } from '../runtime/durable-queue';
import type { ServerKeys } from '../runtime/server-keys';
import { decodeWire, encodeWire, type QueueItem } from '../runtime/wire';

/** A pending timer as `ref.timers()` lists it. */
export interface PendingTimer {
  key: string;
  /** When it falls due, in ms since the epoch (of the server's clock). */
  due: number;
  msg: unknown;
}

/** What a timer record holds: when it falls due and the cast it then enqueues. */
interface TimerRecord {
  due: number;
  msg: unknown;
}

/** The idle timeout ('timeout' info), one per server, kept apart from the keyed timers. */
interface IdleRecord {
  due: number;
}

/** Most timers one transaction moves into the queue per server (the rest follow in the next one). */
export const FIRE_BATCH = 256;

/** Message bytes after which a fire transaction takes no further timer (the limit is 10 MB). */
export const FIRE_BYTES = 2_000_000;

/**
 * A server's durable timers, under its tuid:
 *   t,k,<key>        the timer: { due, msg }
 *   t,d,<due>,<key>  the due-ordered index (empty value): the next due is the first key
 *   t,i              the idle timeout: { due }
 * Due times are whole milliseconds, so the index sorts numerically. Setting, cancelling and firing
 * are each one transaction over these keys, so two processes cannot both fire one timer.
 */
export const TimerStore = {
  /** Stores (or replaces) timer `key`; the caller then wakes the consumers once (`notify`). */
  async set(tx: Transaction, keys: ServerKeys, key: string, due: number, msg: unknown): Promise<void> {
    const recordKey = pack([...keys.tuid, 't', 'k', key]);
    const old = await tx.get(recordKey);
    if (old) tx.clear(indexKey(keys, decodeWire<TimerRecord>(old).due, key));
    tx.set(recordKey, encodeWire({ due, msg } satisfies TimerRecord));
    tx.set(indexKey(keys, due, key), Buffer.alloc(0));
  },

  /** Wakes the server's consumers, which read the next due again (once per transaction is enough). */
  notify(tx: Transaction, keys: ServerKeys): void {
    DurableQueue.notify(tx, keys);
  },

  /** Whether timer `key` is pending (one key read). */
  async has(tx: ReadTransaction, keys: ServerKeys, key: string): Promise<boolean> {
    return (await tx.get(pack([...keys.tuid, 't', 'k', key]))) !== undefined;
  },

  async cancel(tx: Transaction, keys: ServerKeys, key: string): Promise<boolean> {
    const recordKey = pack([...keys.tuid, 't', 'k', key]);
    const old = await tx.get(recordKey);
    if (!old) return false;
    tx.clear(indexKey(keys, decodeWire<TimerRecord>(old).due, key));
    tx.clear(recordKey);
    return true;
  },

  /** Every pending timer, earliest due first (ties by key, as the index sorts them). */
  async list(tx: ReadTransaction, keys: ServerKeys): Promise<PendingTimer[]> {
    const { start, end } = prefixRange([...keys.tuid, 't', 'k']);
    const out = (await tx.getRange(start, end)).map((row) => {
      const rec = decodeWire<TimerRecord>(row.value);
      return { key: unpack(row.key).at(-1) as string, due: rec.due, msg: rec.msg };
    });
    return out.sort((a, b) => a.due - b.due || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  },

  /** Arms the idle timeout: a blind write, and a wake-up for the consumers. */
  armIdle(tx: Transaction, keys: ServerKeys, due: number): void {
    tx.set(pack([...keys.tuid, 't', 'i']), encodeWire({ due } satisfies IdleRecord));
    DurableQueue.notify(tx, keys);
  },

  /** Disarms the idle timeout if one is armed (a read first: a read-only handling stays read-only). */
  async disarmIdle(tx: Transaction, keys: ServerKeys): Promise<void> {
    const k = pack([...keys.tuid, 't', 'i']);
    if ((await tx.get(k)) !== undefined) tx.clear(k);
  },

  /** The earliest due of a timer or the idle timeout, or undefined when there is none. */
  async nextDue(tx: ReadTransaction, keys: ServerKeys): Promise<number | undefined> {
    return (await this.nextDueAndIdle(tx, keys)).next;
  },

  /** The next due, and whether an idle timeout is armed. */
  async nextDueAndIdle(tx: ReadTransaction, keys: ServerKeys): Promise<{ next?: number; idle: boolean }> {
    const { start, end } = prefixRange([...keys.tuid, 't', 'd']);
    const [first] = await tx.getRange(start, end, { limit: 1 });
    const idle = await tx.get(pack([...keys.tuid, 't', 'i']));
    const a = first ? (unpack(first.key).at(-2) as number) : undefined;
    const b = idle ? decodeWire<IdleRecord>(idle).due : undefined;
    return { next: a === undefined ? b : b === undefined ? a : Math.min(a, b), idle: idle !== undefined };
  },

  /**
   * Moves the timers due at `now` into the queue, in due order, in this one transaction (timer
   * deleted and message pushed together), up to FIRE_BATCH; returns how many and the next due. The
   * idle timeout fires only when the queue is empty: a queued message is one that arrived, and its
   * handling arms the timeout again or not.
   */
  async fire(
    tx: Transaction,
    keys: ServerKeys,
    now: number,
    budget: { bytes: number } = { bytes: 0 },
  ): Promise<{ fired: number; next?: number }> {
    const { start } = prefixRange([...keys.tuid, 't', 'd']);
    const end = pack([...keys.tuid, 't', 'd', Math.floor(now) + 1]);
    const due = await tx.getRange(start, end, { limit: FIRE_BATCH });
    const items: QueueItem[] = [];
    for (const row of due) {
      if (budget.bytes >= FIRE_BYTES) break;
      const key = unpack(row.key).at(-1) as string;
      const recordKey = pack([...keys.tuid, 't', 'k', key]);
      const rec = await tx.get(recordKey);
      tx.clear(row.key);
      if (!rec) continue;
      budget.bytes += rec.length;
      tx.clear(recordKey);
      items.push({ kind: 'cast', msg: decodeWire<TimerRecord>(rec).msg });
    }
    const idleKey = pack([...keys.tuid, 't', 'i']);
    const idle = await tx.get(idleKey);
    if (idle && decodeWire<IdleRecord>(idle).due <= now) {
      tx.clear(idleKey);
      if ((await DurableQueue.peekKeys(tx, keys, 1)).length === 0)
        items.push({ kind: 'info', msg: 'timeout' });
    }
    if (items.length > 0) DurableQueue.push(tx, keys, items);
    return { fired: items.length, next: await this.nextDue(tx, keys) };
  },
};

function indexKey(keys: ServerKeys, due: number, key: string): Buffer {
  return pack([...keys.tuid, 't', 'd', due, key]);
}
