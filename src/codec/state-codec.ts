import { compactKeys, pack, prefixRange, unpack } from '../backend/keys';
import {
  LIMITS,
  type KeyTuple,
  type ReadTransaction,
  type Transaction,
  type TupleItem,
} from '../backend/types';
import { BackendError } from '../errors';
import { cborSerializer, type Serializer } from './serializer';
import { decodeState } from './state-decode';
import { diffState, type StateOp } from './state-diff';
import type { StateSnapshot } from './state-snapshot';

/**
 * A server's state in a transaction, under a key prefix (a tuple such as `[...tuid, 's']`):
 *   (...prefix, 'd', ...)  the state's keys (layout in state-snapshot.ts)
 *   (...prefix, 'v')       the version: the versionstamp of the last commit that wrote the state
 * Every write stamps the version with `setVersionstampedValue`, so versions are commit-ordered and
 * unique; a process that cached a state compares the stored version with its own to know whether
 * the cache still holds (after its own commit it learns the new one from `tx.getVersionstamp()`).
 * Reading the version also puts it in the transaction's read set, so a concurrent state write
 * conflicts with a transaction that trusted its cache.
 */

export interface WriteStats {
  /** Keys set, the version key included. */
  keysWritten: number;
  /** Stored keys removed, as far as the snapshot knows (a from-scratch write clears unknown contents: 0). */
  keysCleared: number;
  /** Range clears issued (each removes a whole part of the state). */
  rangesCleared: number;
  /** Key plus value bytes of every key set, the version key included. */
  bytesWritten: number;
}

export interface WriteResult extends WriteStats {
  /** What is stored once the transaction commits: diff the next state against this. */
  snapshot: StateSnapshot;
}

export interface ReadResult {
  state: unknown;
  /** For diffing the next write against. */
  snapshot: StateSnapshot;
  /** The stored version (a 10-byte versionstamp); `undefined` only for data written without one. */
  version: Buffer | undefined;
}

const VERSIONSTAMP_BYTES = 10;
const dataTuple = (prefix: KeyTuple): KeyTuple => [...prefix, 'd'];
const versionKey = (prefix: KeyTuple): Buffer => pack([...prefix, 'v']);

/** Applies diff operations under `prefix` (does not touch the version). */
export function applyStateOps(tx: Transaction, prefix: KeyTuple, ops: readonly StateOp[]): WriteStats {
  const base = pack(dataTuple(prefix));
  const stats: WriteStats = { keysWritten: 0, keysCleared: 0, rangesCleared: 0, bytesWritten: 0 };
  for (const op of ops) {
    const key = op.path.length > 0 ? Buffer.concat([base, pack(op.path as TupleItem[])]) : base;
    switch (op.type) {
      case 'set':
        if (key.length > LIMITS.keyBytes) {
          throw new BackendError(
            'KEY_TOO_LARGE',
            `a state key is ${key.length} bytes (limit ${LIMITS.keyBytes}); use a shorter server tuid`,
          );
        }
        tx.set(key, op.value);
        stats.keysWritten++;
        stats.bytesWritten += key.length + op.value.length;
        break;
      case 'clear':
        tx.clear(key);
        stats.keysCleared++;
        break;
      case 'clearRange':
        // the tuple range below `key`: every key that extends it by one or more elements
        tx.clearRange(Buffer.concat([key, Buffer.of(0x00)]), Buffer.concat([key, Buffer.of(0xff)]));
        stats.rangesCleared++;
        stats.keysCleared += op.keys ?? 0;
        break;
    }
  }
  return stats;
}

/**
 * Writes `next` as the state under `prefix`, changing only what differs from `old` (the snapshot of
 * what is stored, from the last write or read), and stamps a new version. With `old` undefined the
 * stored state is cleared and written in full. The result's snapshot is valid once `tx` commits.
 */
export function writeState(
  tx: Transaction,
  prefix: KeyTuple,
  old: StateSnapshot | undefined,
  next: unknown,
  serializer: Serializer = cborSerializer,
): WriteResult {
  const { snapshot, ops } = diffState(old, next, serializer);
  const stats = applyStateOps(tx, prefix, ops);
  const vk = versionKey(prefix);
  tx.setVersionstampedValue(vk);
  stats.keysWritten++;
  stats.bytesWritten += vk.length + VERSIONSTAMP_BYTES;
  return { ...stats, snapshot };
}

/** Reads the state under `prefix`, or `undefined` if there is none. */
export async function readState(
  tx: ReadTransaction,
  prefix: KeyTuple,
  serializer: Serializer = cborSerializer,
): Promise<ReadResult | undefined> {
  const base = pack(dataTuple(prefix));
  const { start, end } = prefixRange(dataTuple(prefix));
  const [version, pairs] = await Promise.all([tx.get(versionKey(prefix)), tx.getRange(start, end)]);
  const decoded = decodeState(
    pairs.map((kv) => ({ path: unpack(kv.key.subarray(base.length)), value: kv.value })),
    serializer,
  );
  return decoded && { ...decoded, version };
}

/** The stored version of the state under `prefix` (a versionstamp), or `undefined` if none. */
export function readVersion(tx: ReadTransaction, prefix: KeyTuple): Promise<Buffer | undefined> {
  return tx.get(versionKey(prefix));
}

/** Removes the state and its version. */
export function clearState(tx: Transaction, prefix: KeyTuple): void {
  const { start, end } = prefixRange(prefix);
  tx.clearRange(start, end);
}

/**
 * The state of one server for the runtime: remembers, per state value it wrote or read, the snapshot
 * of what is stored, so `write(tx, previous, next)` can diff without the caller carrying snapshots.
 * Objects are remembered weakly by identity; a primitive state by value (the last one only). A
 * `previous` it does not know (or `undefined`) makes a full rewrite — correct, only not minimal.
 * The runtime must pass as `previous` the state it knows to be stored (it checks the version).
 *
 * Cost: a write diffs `next` against the snapshot, and a part that is the very same value as last
 * time is skipped without being inspected or encoded, but only a part the codec found deep-frozen
 * (or a primitive): those cannot have changed in place. The runtime deep-freezes every state, so a
 * handler that changes one property of a large state pays for that property (plus listing the
 * state's property names); a state that is not frozen is still written exactly, but each of its
 * mutable parts is walked and re-encoded to be compared, on every write.
 *
 * Property order is not kept: an object read back has its properties in the order of their stored
 * keys, which is the order of the names' UTF-8 bytes — except that integer-like names ("2", "10")
 * always come first in numeric order, as JavaScript orders them. Arrays and id-lists keep their order.
 */
export class StateStore {
  private readonly snapshots = new WeakMap<object, StateSnapshot>();
  private lastPrimitive: { state: unknown; snapshot: StateSnapshot } | undefined;
  /** The version key, packed once: every consumer step reads it (twice: the cache check, the commit check). */
  private versionKeyBytes: Buffer | undefined;

  constructor(
    readonly prefix: KeyTuple,
    readonly serializer: Serializer = cborSerializer,
  ) {}

  readVersion(tx: ReadTransaction): Promise<Buffer | undefined> {
    return tx.get((this.versionKeyBytes ??= compactKeys([versionKey(this.prefix)])[0]));
  }

  async read(tx: ReadTransaction): Promise<{ state: unknown; version: Buffer } | undefined> {
    const r = await readState(tx, this.prefix, this.serializer);
    if (r === undefined) return undefined;
    this.remember(r.state, r.snapshot);
    return { state: r.state, version: r.version ?? Buffer.alloc(0) };
  }

  write(tx: Transaction, previous: unknown, next: unknown): WriteResult {
    const result = writeState(tx, this.prefix, this.snapshotOf(previous), next, this.serializer);
    this.remember(next, result.snapshot);
    return result;
  }

  /** The snapshot remembered for `state`, if any. */
  snapshotOf(state: unknown): StateSnapshot | undefined {
    if (typeof state === 'object' && state !== null) return this.snapshots.get(state);
    const last = this.lastPrimitive;
    return last !== undefined && Object.is(last.state, state) ? last.snapshot : undefined;
  }

  private remember(state: unknown, snapshot: StateSnapshot): void {
    if (typeof state === 'object' && state !== null) this.snapshots.set(state, snapshot);
    else this.lastPrimitive = { state, snapshot };
  }
}
