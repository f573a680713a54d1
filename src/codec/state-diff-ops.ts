import { LIMITS, type TupleItem } from '../backend/types';

/** What a state diff writes, and the limits on it (shared by every part of the diff, see state-diff.ts). */

/** Largest stored value; a serialized part is split into chunks of this size. */
export const CHUNK_BYTES = LIMITS.valueBytes;
/**
 * Key bytes a nested part may add below the state's prefix. A container whose property names or
 * ids would go past this is stored as one value, so keys stay well under the 10 000-byte key limit.
 */
export const PATH_BUDGET_BYTES = 2_000;

export type StateOp =
  | { readonly type: 'set'; readonly path: readonly TupleItem[]; readonly value: Buffer }
  /** Clears the one key at `path`. */
  | { readonly type: 'clear'; readonly path: readonly TupleItem[] }
  /** Clears every key below `path`; `keys` is how many that removes, when the snapshot knows. */
  | { readonly type: 'clearRange'; readonly path: readonly TupleItem[]; readonly keys: number | undefined };

/** The value of an object's or a list's marker key: the key says what kind is stored there. */
export const EMPTY = Buffer.alloc(0);

/** Conservative key bytes of a string tuple element (UTF-8 ≤ 3 bytes per UTF-16 unit, plus framing). */
export const segmentBytes = (s: string): number => s.length * 3 + 2;
