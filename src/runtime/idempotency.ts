import { pack, prefixRange, unpack } from '../backend/keys';
import type { ReadTransaction, Transaction } from '../backend/types';
import { BadArgumentError } from '../errors';
import { isWellFormed } from '../text';
import { toChunks } from '../codec/chunks';
import type { ServerKeys } from './server-keys';
import { decodeWire, encodeWire, type ReplyRecord } from './wire';

/** Longest idempotency key, in UTF-16 code units (it is part of a stored key: keys are ≤ 10,000 bytes). */
export const MAX_IDEMPOTENCY_KEY = 1024;
/** Default of the start option `idempotencyRetentionMs`: 24 hours. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Most expired keys one publishing transaction collects (each publish adds one, so collection keeps up). */
const COLLECT_PER_CLAIM = 4;
/**
 * Longest a process's claims skip looking at the expiry index when its head held nothing expired (keys
 * other processes claimed with a shorter window may fall due before the head this process saw).
 */
const COLLECT_EVERY_MS = 1000;
/** Per server in this process: when the next claim looks at the expiry index again (ms since the epoch). */
const nextCollect = new WeakMap<ServerKeys, number>();
const EMPTY = Buffer.alloc(0);

/** What is stored per key: who used it first, until when it counts, and whether a call's reply is in. */
interface KeyRecord {
  kind: 'cast' | 'call';
  expiresAt: number;
  /** A call's reply is stored under the key (chunked, as any reply). */
  done?: true;
}

/** The outcome of claiming a key in a publishing transaction. */
export type Claim = { fresh: true } | { fresh: false; kind: 'cast' | 'call' };

/**
 * The idempotency keys of one server, under its tuid, so `kill` removes them with the rest:
 *   idem,k,<key>            the KeyRecord
 *   idem,k,<key>,<i>        a call's first reply, chunked like the reply a waiting caller gets
 *   idem,x,<expiresAt>,<key> the expiry index: collection reads its head, never scans the keys
 * A key is claimed in the transaction that enqueues its message, so two publishers of one key
 * conflict and the second sees the first's claim; the consumer stores a call's reply in the
 * transaction that handles it (CallChannel.answer), whoever still waits for it.
 */
export const IdempotencyKeys = {
  /**
   * Claims `key` for a message about to be enqueued: `fresh` when no live record holds it (a record
   * past its expiry counts as none and is replaced), else who holds it. Collects a few expired keys.
   */
  async claim(
    tx: Transaction,
    keys: ServerKeys,
    key: string,
    kind: 'cast' | 'call',
    retentionMs: number,
  ): Promise<Claim> {
    const now = Date.now();
    const at = recordKey(keys, key);
    const due = (nextCollect.get(keys) ?? 0) <= now;
    const [raw] = await Promise.all([tx.get(at), due ? IdempotencyKeys.collect(tx, keys, now) : undefined]);
    const rec = raw && decodeWire<KeyRecord>(raw);
    if (rec && rec.expiresAt > now) return { fresh: false, kind: rec.kind };
    if (rec) forget(tx, keys, key, rec.expiresAt);
    const expiresAt = now + retentionMs;
    tx.set(at, encodeWire({ kind, expiresAt } satisfies KeyRecord));
    tx.set(expiryKey(keys, expiresAt, key), EMPTY);
    // The key just claimed falls due no later than this: look at the index again by then.
    if (expiresAt < (nextCollect.get(keys) ?? Infinity)) nextCollect.set(keys, expiresAt);
    return { fresh: true };
  },

  /**
   * Stores the reply of the call that claimed `key` (in the transaction that handles it): what a
   * repeated call resolves with. Nothing when the key was collected meanwhile. Returns the bytes written.
   */
  async storeReply(tx: Transaction, keys: ServerKeys, key: string, reply: ReplyRecord): Promise<number> {
    const raw = await tx.get(recordKey(keys, key));
    if (!raw) return 0;
    const rec = decodeWire<KeyRecord>(raw);
    if (rec.done) return 0; // answered already (a dead-lettered call answered once)
    const bytes = encodeWire(reply);
    toChunks(bytes).forEach((chunk, i) => tx.set(chunkKey(keys, key, i), chunk));
    tx.set(recordKey(keys, key), encodeWire({ ...rec, done: true } satisfies KeyRecord));
    return bytes.length;
  },

  /** The stored reply for `key`, if its call has been answered (and the key has not expired). */
  async readReply(
    tx: ReadTransaction,
    keys: ServerKeys,
    key: string,
  ): Promise<{ reply?: ReplyRecord; live: boolean }> {
    const raw = await tx.get(recordKey(keys, key));
    const rec = raw && decodeWire<KeyRecord>(raw);
    if (!rec || rec.expiresAt <= Date.now()) return { live: false };
    if (!rec.done) return { live: true };
    const { start, end } = prefixRange([...keys.tuid, 'idem', 'k', key]);
    const chunks = await tx.getRange(start, end);
    return { live: true, reply: decodeWire<ReplyRecord>(Buffer.concat(chunks.map((kv) => kv.value))) };
  },

  /** The key a repeated caller watches: it changes when the first call's reply is stored. */
  recordKey: (keys: ServerKeys, key: string): Buffer => recordKey(keys, key),

  /**
   * Removes up to `limit` keys that expired before `now`, oldest first: one range read of the index's
   * head. The first key it finds unexpired says when the next one falls due: until then (at most
   * COLLECT_EVERY_MS) this process's claims skip the read. Returns how many it removed.
   */
  async collect(tx: Transaction, keys: ServerKeys, now: number, limit = COLLECT_PER_CLAIM): Promise<number> {
    const { start, end } = prefixRange([...keys.tuid, 'idem', 'x']);
    const rows = await tx.getRange(start, end, { limit: limit + 1 });
    let removed = 0;
    let next = now + COLLECT_EVERY_MS;
    for (const row of rows) {
      const t = unpack(row.key);
      const expiresAt = t[t.length - 2] as number;
      if (expiresAt >= now || removed === limit) {
        next = Math.min(next, expiresAt >= now ? expiresAt : now);
        break;
      }
      forget(tx, keys, t[t.length - 1] as string, expiresAt);
      removed++;
    }
    nextCollect.set(keys, next);
    return removed;
  },
};

/** The packed prefixes of a server's keys, once per server and process (tuple encoding concatenates). */
const prefixes = new WeakMap<ServerKeys, { k: Buffer; x: Buffer }>();
function prefixOf(keys: ServerKeys): { k: Buffer; x: Buffer } {
  let p = prefixes.get(keys);
  if (!p)
    prefixes.set(keys, (p = { k: pack([...keys.tuid, 'idem', 'k']), x: pack([...keys.tuid, 'idem', 'x']) }));
  return p;
}
const recordKey = (keys: ServerKeys, key: string): Buffer => Buffer.concat([prefixOf(keys).k, pack([key])]);
const chunkKey = (keys: ServerKeys, key: string, i: number): Buffer =>
  Buffer.concat([prefixOf(keys).k, pack([key, i])]);
const expiryKey = (keys: ServerKeys, expiresAt: number, key: string): Buffer =>
  Buffer.concat([prefixOf(keys).x, pack([expiresAt, key])]);

/** Clears a key's record, its stored reply and its expiry entry. */
function forget(tx: Transaction, keys: ServerKeys, key: string, expiresAt: number): void {
  tx.clear(recordKey(keys, key));
  const { start, end } = prefixRange([...keys.tuid, 'idem', 'k', key]);
  tx.clearRange(start, end);
  tx.clear(expiryKey(keys, expiresAt, key));
}

/** The idempotency key of a publish's options (undefined when none is given), validated. */
export function idempotencyKeyOf(options: { idempotencyKey?: unknown } | undefined): string | undefined {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object')
    throw new BadArgumentError('BAD_ARGUMENT', `options must be an object (got ${typeof options})`);
  const key = options.idempotencyKey;
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY || !isWellFormed(key))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `idempotencyKey must be a non-empty string of at most ${MAX_IDEMPOTENCY_KEY} characters without lone surrogates (got ${typeof key === 'string' ? `${key.length} characters` : typeof key})`,
    );
  return key;
}
