import type { ReadTransaction, Transaction } from '../backend/types';
import { DurableQueue } from '../runtime/durable-queue';
import type { ServerKeys } from '../runtime/server-keys';
import { decodeWire, encodeWire, type QueueItem } from '../runtime/wire';
import { TimerKeys } from './timer-keys';

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
    const t = TimerKeys.of(keys);
    const recordKey = t.record(key);
    const old = await tx.get(recordKey);
    if (old) tx.clear(t.indexKey(decodeWire<TimerRecord>(old).due, key));
    tx.set(recordKey, encodeWire({ due, msg } satisfies TimerRecord));
    tx.set(t.indexKey(due, key), Buffer.alloc(0));
  },

  /** Wakes the server's consumers, which read the next due again (once per transaction is enough). */
  notify(tx: Transaction, keys: ServerKeys): void {
    DurableQueue.notify(tx, keys);
  },

  /** Whether timer `key` is pending (one key read). */
  async has(tx: ReadTransaction, keys: ServerKeys, key: string): Promise<boolean> {
    return (await tx.get(TimerKeys.of(keys).record(key))) !== undefined;
  },

  async cancel(tx: Transaction, keys: ServerKeys, key: string): Promise<boolean> {
    const t = TimerKeys.of(keys);
    const recordKey = t.record(key);
    const old = await tx.get(recordKey);
    if (!old) return false;
    tx.clear(t.indexKey(decodeWire<TimerRecord>(old).due, key));
    tx.clear(recordKey);
    return true;
  },

  /** Every pending timer, earliest due first (ties by key, as the index sorts them). */
  async list(tx: ReadTransaction, keys: ServerKeys): Promise<PendingTimer[]> {
    const t = TimerKeys.of(keys);
    const out = (await tx.getRange(t.records.start, t.records.end)).map((row) => {
      const rec = decodeWire<TimerRecord>(row.value);
      return { key: t.ofRecord(row.key), due: rec.due, msg: rec.msg };
    });
    return out.sort((a, b) => a.due - b.due || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  },

  /** Arms the idle timeout: a blind write, and a wake-up for the consumers. */
  armIdle(tx: Transaction, keys: ServerKeys, due: number): void {
    tx.set(TimerKeys.of(keys).idle, encodeWire({ due } satisfies IdleRecord));
    DurableQueue.notify(tx, keys);
  },

  /** Disarms the idle timeout if one is armed (a read first: a read-only handling stays read-only). */
  async disarmIdle(tx: Transaction, keys: ServerKeys): Promise<void> {
    const k = TimerKeys.of(keys).idle;
    if ((await tx.get(k)) !== undefined) tx.clear(k);
  },

  /** The earliest due of a timer or the idle timeout, or undefined when there is none. */
  async nextDue(tx: ReadTransaction, keys: ServerKeys): Promise<number | undefined> {
    return (await this.nextDueAndIdle(tx, keys)).next;
  },

  /** The next due, and whether an idle timeout is armed. */
  async nextDueAndIdle(tx: ReadTransaction, keys: ServerKeys): Promise<{ next?: number; idle: boolean }> {
    const t = TimerKeys.of(keys);
    // Both at once: one round trip on a remote backend.
    const [a, idle] = await Promise.all([firstDue(tx, t), tx.get(t.idle)]);
    return {
      next: earlier(a, idleDueOf(idle)),
      idle: idle !== undefined,
    };
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
    const t = TimerKeys.of(keys);
    const due = await tx.getRange(t.index.start, t.indexFrom(Math.floor(now) + 1), { limit: FIRE_BATCH });
    const items: QueueItem[] = [];
    let taken = 0;
    for (const row of due) {
      if (budget.bytes >= FIRE_BYTES) break;
      taken++;
      const recordKey = t.recordOfIndex(row.key);
      const rec = await tx.get(recordKey);
      if (!rec) continue; // an index row left without its record: cleared below all the same
      budget.bytes += rec.length;
      tx.clear(recordKey);
      items.push({ kind: 'cast', msg: decodeWire<TimerRecord>(rec).msg });
    }
    // The index rows taken are the first `taken` of the index: one range clear rather than one each.
    if (taken > 0) clearIndexThrough(tx, t, due[taken - 1].key);
    const idle = await tx.get(t.idle);
    let idleDue = idleDueOf(idle);
    if (idleDue !== undefined && idleDue <= now) {
      tx.clear(t.idle);
      idleDue = undefined;
      if ((await DurableQueue.peekKeys(tx, keys, 1)).length === 0)
        items.push({ kind: 'info', msg: 'timeout' });
    }
    if (items.length > 0) DurableQueue.push(tx, keys, items);
    // What was left of the batch is the next due; else the index's first row, if any.
    const left = taken < due.length ? t.dueOfIndex(due[taken].key) : await firstDue(tx, t);
    return { fired: items.length, next: earlier(left, idleDue) };
  },

  /**
   * The keyed timers due at `now`, earliest first (up to `limit`), as the cast items they enqueue,
   * keyed by their index keys and with their records' bytes: for a consumer that handles them
   * straight from here because its queue is empty (see TimerOffer). None when the idle timeout is
   * due as well: its rules (it fires only into an empty queue) are `fire`'s.
   */
  async peekDue(tx: ReadTransaction, keys: ServerKeys, now: number, limit: number): Promise<DueTimer[]> {
    const t = TimerKeys.of(keys);
    const [due, idle] = await Promise.all([
      tx.getRange(t.index.start, t.indexFrom(Math.floor(now) + 1), { limit }),
      tx.get(t.idle),
    ]);
    if ((idleDueOf(idle) ?? Infinity) <= now) return [];
    const records = await Promise.all(due.map((row) => tx.get(t.recordOfIndex(row.key))));
    const out: DueTimer[] = [];
    for (let i = 0; i < due.length; i++) {
      const record = records[i];
      if (!record) break; // an index row left without its record: `fire` clears it
      out.push(dueTimer(due[i].key, record));
    }
    return out;
  },

  /**
   * In the transaction that handles timers read by `peekDue` (reads only): whether they are still the
   * first of the index, unchanged (not fired, cancelled or replaced meanwhile), and the next due past
   * them (keyed timers and idle timeout) with whether an idle timeout is armed, as `nextDueAndIdle`;
   * and the `ahead` keyed timers past them, as `peekDue` would read them once due (TimersAhead).
   */
  async checkTaken(
    tx: ReadTransaction,
    keys: ServerKeys,
    taken: readonly DueTimer[],
    ahead = 0,
  ): Promise<{ unchanged: boolean; next?: number; idle: boolean; ahead: AheadTimer[] }> {
    const t = TimerKeys.of(keys);
    const [rows, idle, records] = await Promise.all([
      tx.getRange(t.index.start, t.index.end, { limit: taken.length + Math.max(1, ahead) }),
      tx.get(t.idle),
      Promise.all(taken.map((d) => tx.get(t.recordOfIndex(d.key)))),
    ]);
    const unchanged =
      rows.length >= taken.length &&
      taken.every((d, i) => rows[i].key.equals(d.key) && records[i]?.equals(d.record) === true);
    const after = rows[taken.length];
    const aheadRows = rows.slice(taken.length, taken.length + ahead);
    const aheadRecords = await Promise.all(aheadRows.map((row) => tx.get(t.recordOfIndex(row.key))));
    const out: AheadTimer[] = [];
    for (let i = 0; i < aheadRows.length && aheadRecords[i]; i++)
      out.push({ key: aheadRows[i].key, record: aheadRecords[i]!, due: t.dueOfIndex(aheadRows[i].key) });
    return {
      unchanged,
      next: earlier(after ? t.dueOfIndex(after.key) : undefined, idleDueOf(idle)),
      idle: !!idle,
      ahead: out,
    };
  },

  /** A timer read ahead (checkTaken), now due: as `peekDue` would have read it. */
  dueOf(a: AheadTimer): DueTimer {
    return dueTimer(a.key, a.record);
  },

  /** Deletes timers read by `peekDue`, once `checkTaken` found them unchanged (as `fire` would, without the queue). */
  deleteTaken(tx: Transaction, keys: ServerKeys, taken: readonly DueTimer[]): void {
    const t = TimerKeys.of(keys);
    for (const d of taken) tx.clear(t.recordOfIndex(d.key));
    clearIndexThrough(tx, t, taken[taken.length - 1].key);
  },
};

/** A keyed timer read before it is due (TimerStore.checkTaken's `ahead`): a DueTimer once it is. */
export interface AheadTimer {
  key: Buffer;
  record: Buffer;
  due: number;
}

/** A due timer read for a consumer to handle at once (TimerStore.peekDue). */
export interface DueTimer {
  /** Its index key (it stands in for a queue item key). */
  key: Buffer;
  /** Its record's bytes, as read (the handling transaction checks they are unchanged). */
  record: Buffer;
  item: QueueItem;
}

/** A due timer as a consumer handles it: keyed by its index key, with its record and the cast it makes. */
const dueTimer = (key: Buffer, record: Buffer): DueTimer => ({
  key,
  record,
  item: { kind: 'cast', msg: decodeWire<TimerRecord>(record).msg },
});

const ZERO = Buffer.from([0]);

/** Clears the index from its start through `lastKey` (the timers just taken are its first rows). */
function clearIndexThrough(tx: Transaction, t: TimerKeys, lastKey: Buffer): void {
  tx.clearRange(t.index.start, Buffer.concat([lastKey, ZERO]));
}

/** The due of a stored idle timeout, if one is armed. */
const idleDueOf = (idle: Buffer | undefined): number | undefined =>
  idle ? decodeWire<IdleRecord>(idle).due : undefined;

/** The due of the first timer in the index, if any. */
async function firstDue(tx: ReadTransaction, t: TimerKeys): Promise<number | undefined> {
  const [first] = await tx.getRange(t.index.start, t.index.end, { limit: 1 });
  return first ? t.dueOfIndex(first.key) : undefined;
}

const earlier = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);
