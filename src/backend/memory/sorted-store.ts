import type { SyncStore } from '../common/sync-store';
import type { KeyValue } from '../types';

/** A run of consecutive entries, sorted by key; `keys[i]` holds `values[i]`. Never empty. */
interface Block {
  keys: Buffer[];
  values: Buffer[];
}

/**
 * An ordered in-memory map of byte keys. The entries are cut into blocks of at most `maxBlock`,
 * in key order; a key is found by bisecting the blocks on their first keys, then the block. A
 * write splices one block (and the short list of blocks when one splits or empties), so it costs
 * O(log n + maxBlock) rather than the O(n) of a single sorted array.
 */
export class SortedStore implements SyncStore {
  private blocks: Block[] = [];

  /** `maxBlock` is only changed by tests, so that a few keys already span many blocks. */
  constructor(private readonly maxBlock = 512) {}

  get(key: Buffer): Buffer | undefined {
    const [b, i] = this.seek(key);
    const block = this.blocks[b];
    return block !== undefined && block.keys[i].equals(key) ? block.values[i] : undefined;
  }

  range(start: Buffer, end: Buffer, limit: number, reverse: boolean): KeyValue[] {
    const [loB, loI] = this.seek(start);
    const [hiB, hiI] = this.seek(end);
    const out: KeyValue[] = [];
    const full = () => limit > 0 && out.length >= limit;
    if (reverse) {
      // Step back from the position of `end` until reaching the position of `start`.
      for (let b = hiB, i = hiI; (b > loB || (b === loB && i > loI)) && !full();) {
        if (i === 0) i = this.blocks[--b].keys.length;
        i--;
        out.push({ key: this.blocks[b].keys[i], value: this.blocks[b].values[i] });
      }
    } else {
      for (let b = loB, i = loI; (b < hiB || (b === hiB && i < hiI)) && !full();) {
        const block = this.blocks[b];
        out.push({ key: block.keys[i], value: block.values[i] });
        if (++i === block.keys.length) {
          b++;
          i = 0;
        }
      }
    }
    return out;
  }

  set(key: Buffer, value: Buffer): void {
    // Copies, as a database would: later changes to the caller's buffers must not reach the store.
    if (this.blocks.length === 0) {
      this.blocks.push({ keys: [Buffer.from(key)], values: [Buffer.from(value)] });
      return;
    }
    const b = this.blockFor(key);
    const block = this.blocks[b];
    const i = lowerBound(block.keys, key);
    if (i < block.keys.length && block.keys[i].equals(key)) {
      block.values[i] = Buffer.from(value);
      return;
    }
    block.keys.splice(i, 0, Buffer.from(key));
    block.values.splice(i, 0, Buffer.from(value));
    if (block.keys.length > this.maxBlock) {
      const half = block.keys.length >>> 1;
      this.blocks.splice(b + 1, 0, { keys: block.keys.splice(half), values: block.values.splice(half) });
    }
  }

  delete(key: Buffer): void {
    const [b, i] = this.seek(key);
    const block = this.blocks[b];
    if (block !== undefined && block.keys[i].equals(key)) {
      block.keys.splice(i, 1);
      block.values.splice(i, 1);
      this.tidy(b, b);
    }
  }

  deleteRange(start: Buffer, end: Buffer): void {
    const [loB, loI] = this.seek(start);
    const [hiB, hiI] = this.seek(end);
    if (hiB < loB || (hiB === loB && hiI <= loI)) return;
    if (loB === hiB) {
      this.blocks[loB].keys.splice(loI, hiI - loI);
      this.blocks[loB].values.splice(loI, hiI - loI);
    } else {
      // The tail of the first block, the blocks in between, then the head of the last block.
      this.blocks[loB].keys.length = loI;
      this.blocks[loB].values.length = loI;
      if (hiB < this.blocks.length) {
        this.blocks[hiB].keys.splice(0, hiI);
        this.blocks[hiB].values.splice(0, hiI);
      }
      this.blocks.splice(loB + 1, hiB - loB - 1);
    }
    this.tidy(loB, Math.min(loB + 1, this.blocks.length - 1));
  }

  /**
   * After removals from blocks `from`..`to` (adjacent): drops those left empty and merges a block
   * shrunk below a quarter of `maxBlock` into a neighbour when the two fit in one block, so many
   * deletes cannot leave a long list of tiny blocks.
   */
  private tidy(from: number, to: number): void {
    for (let b = to; b >= from; b--) if (this.blocks[b].keys.length === 0) this.blocks.splice(b, 1);
    for (let b = Math.min(to, this.blocks.length - 1); b >= from && b >= 0; b--) {
      if (this.blocks[b].keys.length >= this.maxBlock / 4) continue;
      if (b + 1 < this.blocks.length) this.mergeIfFits(b);
      else if (b > 0) this.mergeIfFits(b - 1);
    }
  }

  /** Appends block `b + 1` to block `b` if the result is within `maxBlock`. */
  private mergeIfFits(b: number): void {
    const [left, right] = [this.blocks[b], this.blocks[b + 1]];
    if (left.keys.length + right.keys.length > this.maxBlock) return;
    left.keys.push(...right.keys);
    left.values.push(...right.values);
    this.blocks.splice(b + 1, 1);
  }

  /** The block where `key` is or would be inserted: the last whose first key is <= `key`, else 0. */
  private blockFor(key: Buffer): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.blocks[mid].keys[0], key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return Math.max(0, lo - 1);
  }

  /**
   * The position [block, index] of the first key >= `key`, or [blocks.length, 0] past the last.
   * The index is always inside its block, so positions compare as pairs.
   */
  private seek(key: Buffer): [number, number] {
    if (this.blocks.length === 0) return [0, 0];
    const b = this.blockFor(key);
    const i = lowerBound(this.blocks[b].keys, key);
    return i < this.blocks[b].keys.length ? [b, i] : [b + 1, 0];
  }
}

/** Index of the first of the sorted `keys` that is >= `key`. */
function lowerBound(keys: readonly Buffer[], key: Buffer): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(keys[mid], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Wraps a store and records how to undo each write, so a failed transaction can roll back. */
export class UndoLog implements SyncStore {
  private undo: Array<() => void> = [];
  constructor(private readonly inner: SortedStore) {}

  get = (key: Buffer) => this.inner.get(key);
  range = (start: Buffer, end: Buffer, limit: number, reverse: boolean) =>
    this.inner.range(start, end, limit, reverse);

  set(key: Buffer, value: Buffer): void {
    this.remember(key);
    this.inner.set(key, value);
  }

  delete(key: Buffer): void {
    this.remember(key);
    this.inner.delete(key);
  }

  deleteRange(start: Buffer, end: Buffer): void {
    const removed = this.inner.range(start, end, 0, false);
    this.undo.push(() => removed.forEach(({ key, value }) => this.inner.set(key, value)));
    this.inner.deleteRange(start, end);
  }

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]();
    this.undo = [];
  }

  forget(): void {
    this.undo = [];
  }

  private remember(key: Buffer): void {
    const previous = this.inner.get(key);
    this.undo.push(() => (previous === undefined ? this.inner.delete(key) : this.inner.set(key, previous)));
  }
}
