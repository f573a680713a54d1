import { randomUUID } from 'node:crypto';
import type { ReadTransaction, Transaction, Watch } from '../backend/types';
import { toChunks } from './chunks';
import type { ServerKeys } from './server-keys';
import { decodeWire, encodeWire, type FromId, type ReplyRecord } from './wire';

const PENDING = Buffer.from('pending');
const READY = Buffer.from('ready');

/**
 * The durable call protocol: a caller writes a pending marker under its from-key and watches it; the
 * consumer that handles the call writes the chunked reply and flips the marker in the same
 * transaction; the caller reads the reply and clears its keys (also when it gives up).
 */
export const CallChannel = {
  newFrom(): FromId {
    return [Math.floor(Date.now() / 1000), randomUUID()];
  },

  open(tx: Transaction, keys: ServerKeys, from: FromId): Watch {
    const marker = keys.pendingMarker(from);
    tx.set(marker, PENDING);
    return tx.watch(marker);
  },

  /** Writes the reply if the caller still waits (it clears its marker when it times out). */
  async answer(tx: Transaction, keys: ServerKeys, from: FromId, record: ReplyRecord): Promise<void> {
    const marker = keys.pendingMarker(from);
    if ((await tx.get(marker)) === undefined) return;
    toChunks(encodeWire(record)).forEach((chunk, i) => tx.set(keys.replyChunk(from, i), chunk));
    tx.set(marker, READY);
  },

  /** The reply, if it has arrived. */
  async read(tx: ReadTransaction, keys: ServerKeys, from: FromId): Promise<ReplyRecord | undefined> {
    const marker = await tx.get(keys.pendingMarker(from));
    if (!marker || !marker.equals(READY)) return undefined;
    const { start, end } = keys.fromRange(from);
    const chunks = (await tx.getRange(start, end)).filter((kv) => !kv.key.equals(keys.pendingMarker(from)));
    return decodeWire<ReplyRecord>(Buffer.concat(chunks.map((kv) => kv.value)));
  },

  close(tx: Transaction, keys: ServerKeys, from: FromId): void {
    const { start, end } = keys.fromRange(from);
    tx.clearRange(start, end);
  },
};
