import type { SyncStore } from '../common/sync-store';
import type { KeyValue } from '../types';

/** An ordered in-memory map of byte keys (a sorted array searched by bisection). */
export class SortedStore implements SyncStore {
  private keys: Buffer[] = [];
  private values: Buffer[] = [];

  get(key: Buffer): Buffer | undefined {
    const i = this.find(key);
    return i < this.keys.length && this.keys[i].equals(key) ? this.values[i] : undefined;
  }

  range(start: Buffer, end: Buffer, limit: number, reverse: boolean): KeyValue[] {
    const lo = this.find(start);
    const hi = this.find(end);
    const out: KeyValue[] = [];
    const n = limit > 0 ? Math.min(limit, hi - lo) : hi - lo;
    for (let k = 0; k < n; k++) {
      const i = reverse ? hi - 1 - k : lo + k;
      out.push({ key: this.keys[i], value: this.values[i] });
    }
    return out;
  }

  set(key: Buffer, value: Buffer): void {
    const i = this.find(key);
    // Copies, as a database would: later changes to the caller's buffers must not reach the store.
    if (i < this.keys.length && this.keys[i].equals(key)) this.values[i] = Buffer.from(value);
    else {
      this.keys.splice(i, 0, Buffer.from(key));
      this.values.splice(i, 0, Buffer.from(value));
    }
  }

  delete(key: Buffer): void {
    const i = this.find(key);
    if (i < this.keys.length && this.keys[i].equals(key)) {
      this.keys.splice(i, 1);
      this.values.splice(i, 1);
    }
  }

  deleteRange(start: Buffer, end: Buffer): void {
    const lo = this.find(start);
    const hi = this.find(end);
    if (hi > lo) {
      this.keys.splice(lo, hi - lo);
      this.values.splice(lo, hi - lo);
    }
  }

  /** Index of the first key >= `key`. */
  private find(key: Buffer): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.keys[mid], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
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
