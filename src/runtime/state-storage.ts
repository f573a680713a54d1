import { pack, prefixRange } from '../backend/keys';
import type { ReadTransaction, Transaction } from '../backend/types';
import type { ServerKeys } from './server-keys';
import { toChunks } from './chunks';
import { decodeWire, encodeWire } from './wire';

/** A server's stored state with the version (a versionstamp) of the commit that wrote it. */
export interface StoredState {
  state: unknown;
  version: Buffer;
}

/** How the runtime reads and writes a server's state (the state codec does the encoding). */
export interface StateStorage {
  readVersion(tx: ReadTransaction): Promise<Buffer | undefined>;
  read(tx: ReadTransaction): Promise<StoredState | undefined>;
  /** Writes `next`, given the state as last read or written (`previous`), and stamps a new version. */
  write(tx: Transaction, previous: unknown, next: unknown): void;
  clear(tx: Transaction): void;
}

/** Whole-value storage: one serialized value, chunked. */
export function wholeValueStorage(keys: ServerKeys): StateStorage {
  const versionKey = pack([...keys.state, 'v']);
  const chunks = prefixRange([...keys.state, 'c']);
  return {
    readVersion: (tx) => tx.get(versionKey),
    async read(tx) {
      const version = await tx.get(versionKey);
      if (!version) return undefined;
      const parts = await tx.getRange(chunks.start, chunks.end);
      return { state: decodeWire(Buffer.concat(parts.map((p) => p.value))), version };
    },
    write(tx, _previous, next) {
      tx.clearRange(chunks.start, chunks.end);
      toChunks(encodeWire(next)).forEach((c, i) => tx.set(pack([...keys.state, 'c', i]), c));
      tx.setVersionstampedValue(versionKey);
    },
    clear(tx) {
      const all = prefixRange(keys.state);
      tx.clearRange(all.start, all.end);
    },
  };
}
