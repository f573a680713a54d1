import { randomUUID } from 'node:crypto';
import { LIMITS, type ReadTransaction, type Transaction, type Watch } from '../backend/types';
import { toChunks } from '../codec/chunks';
import { IdempotencyKeys } from './idempotency';
import type { ServerKeys } from './server-keys';
import { DgenError, errorFromCode } from '../errors';
import { decodeWire, encodeWire, type FromId, type ReplyRecord } from './wire';

const PENDING = Buffer.from('pending');
/** The marker of a reply written in chunks beside it. */
const READY = Buffer.from('ready');
/** The first byte of a marker that holds the reply itself (after it): one that fits in one value. */
const INLINE = 0;
/**
 * How long after its deadline a caller's keys are garbage: a live caller has given up by then (and
 * cleared them itself); a caller that died waiting never will. Generous against clock skew.
 */
export const ABANDONED_AFTER_MS = 2000;
/** The deadline of a call that waits for ever (`timeout: Infinity`): never collected. */
const NEVER = 2 ** 52;

const INLINE_BYTE = Buffer.from([INLINE]);

const cutoff = (): number => Date.now() - ABANDONED_AFTER_MS;
const abandoned = (from: FromId): boolean => from[0] < cutoff();

/**
 * The durable call protocol: a caller writes a pending marker under its from-key and watches it; the
 * consumer that handles the call replaces the marker with the reply (most replies fit in one value),
 * or writes the chunked reply beside it and flips the marker to READY, in the same transaction; the
 * caller reads the reply — from the watch itself when the backend tells the value that fired it — and
 * clears its keys (also when it gives up).
 */
export const CallChannel = {
  /** A caller id that carries the time (ms) its caller gives up, so its keys can be collected after. */
  newFrom(timeoutMs: number): FromId {
    const deadline = Number.isFinite(timeoutMs) ? Math.ceil(Date.now() + timeoutMs) : NEVER;
    return [Math.min(deadline, NEVER), randomUUID()];
  },

  open(tx: Transaction, keys: ServerKeys, from: FromId): Watch {
    const marker = keys.pendingMarker(from);
    tx.set(marker, PENDING);
    return tx.watch(marker);
  },

  /**
   * Writes the reply if the caller still waits (it clears its marker when it times out). A caller long
   * past its deadline died waiting: its keys are cleared instead of answered. A call with an
   * idempotency key has its reply stored under the key as well, whoever waits. Returns the bytes written.
   * `known`: the marker, read by the caller along with its other reads (see `marker`).
   */
  async answer(
    tx: Transaction,
    keys: ServerKeys,
    from: FromId,
    record: ReplyRecord,
    known?: Promise<Buffer | undefined>,
  ): Promise<number> {
    const kept = from[2] === undefined ? 0 : await IdempotencyKeys.storeReply(tx, keys, from[2], record);
    const marker = keys.pendingMarker(from);
    if ((await (known ?? CallChannel.marker(tx, keys, from))) === undefined) return kept;
    if (abandoned(from)) {
      CallChannel.close(tx, keys, from);
      return kept;
    }
    const bytes = encodeWire(record);
    if (bytes.length < LIMITS.valueBytes) tx.set(marker, Buffer.concat([INLINE_BYTE, bytes]));
    else {
      toChunks(bytes).forEach((chunk, i) => tx.set(keys.replyChunk(from, i), chunk));
      tx.set(marker, READY);
    }
    return kept + bytes.length;
  },

  /** The reply a marker's value holds itself, if it does (see `answer`). */
  inlineReply(marker: Buffer | undefined): ReplyRecord | undefined {
    return marker !== undefined && marker.length > 0 && marker[0] === INLINE
      ? decodeWire<ReplyRecord>(marker.subarray(1))
      : undefined;
  },

  /**
   * The marker as `answer` needs it, for a consumer that reads it only if the caller may have given up
   * (a fused step, see Consumer): a caller clears its keys at its deadline, so while that is more than
   * ABANDONED_AFTER_MS away (generous against clock skew) the reply is written as if read, with no
   * round trip. Should clocks or a stalled commit be off by more than that, a reply written for a caller
   * that gave up meanwhile is collected by the sweep, like an abandoned caller's.
   */
  markerIfDue(tx: ReadTransaction, keys: ServerKeys, from: FromId): Promise<Buffer | undefined> {
    if (from[0] - Date.now() > ABANDONED_AFTER_MS) return Promise.resolve(PENDING);
    return CallChannel.marker(tx, keys, from);
  },

  /** The caller's pending marker (absent once it gave up). */
  marker(tx: ReadTransaction, keys: ServerKeys, from: FromId): Promise<Buffer | undefined> {
    return tx.get(keys.pendingMarker(from));
  },

  /** The reply, if it has arrived: the marker and the chunks in one range read (one round trip). */
  async read(tx: ReadTransaction, keys: ServerKeys, from: FromId): Promise<ReplyRecord | undefined> {
    return (await CallChannel.readKeyed(tx, keys, from))?.record;
  },

  /** `read`, with the keys the caller's keys hold (to clear them one by one later, see `clear`). */
  async readKeyed(
    tx: ReadTransaction,
    keys: ServerKeys,
    from: FromId,
  ): Promise<{ record: ReplyRecord; keys: Buffer[] } | undefined> {
    const { start, end } = keys.fromRange(from);
    const marker = keys.pendingMarker(from);
    const rows = await tx.getRange(start, end);
    const found = rows.find((kv) => kv.key.equals(marker));
    const inline = CallChannel.inlineReply(found?.value);
    if (inline) return { record: inline, keys: rows.map((kv) => kv.key) };
    if (!found?.value.equals(READY)) return undefined;
    const chunks = rows.filter((kv) => !kv.key.equals(marker));
    // Most replies are one chunk: decoded as read, not copied into a buffer of their own first.
    const bytes = chunks.length === 1 ? chunks[0].value : Buffer.concat(chunks.map((kv) => kv.value));
    const record = decodeWire<ReplyRecord>(bytes);
    return { record, keys: rows.map((kv) => kv.key) };
  },

  /**
   * Clears keys `readKeyed` found: key by key rather than as a range, since a cleared range tells
   * remote backends' watchers that any key may have changed (PostgreSQL's NOTIFY then says '*').
   */
  clear(tx: Transaction, keys: readonly Buffer[]): void {
    for (const k of keys) tx.clear(k);
  },

  close(tx: Transaction, keys: ServerKeys, from: FromId): void {
    const { start, end } = keys.fromRange(from);
    tx.clearRange(start, end);
  },

  /**
   * Clears the keys of every caller whose deadline passed more than ABANDONED_AFTER_MS ago: callers that
   * died waiting, or whose reply arrived after they died. From-keys sort by deadline, so one range does it.
   */
  sweep(tx: Transaction, keys: ServerKeys): void {
    tx.clearRange(keys.waiting.start, keys.waitingBefore(cutoff()));
  },
};

/** A failure as a reply record: its code when it is one of ours, else HANDLER_FAILED. */
export const toRecord = (err: unknown): ReplyRecord => ({
  ok: false,
  code: err instanceof DgenError ? err.code : 'HANDLER_FAILED',
  message: err instanceof Error ? err.message : String(err),
});

/** What a caller gets from a reply record: the value, or the failure thrown. */
export const fromRecord = (rec: ReplyRecord): unknown => {
  if (rec.ok) return rec.value;
  throw errorFromCode(rec.code, rec.message);
};
