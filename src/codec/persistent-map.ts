/**
 * An immutable map whose versions share their bulk: a version is a large base map plus a small
 * overlay of changes, and making the next version copies only the overlay. The codec keeps the
 * properties of a stored object in one, so a one-property update of a 10 000-property state costs a
 * few map operations instead of a 10 000-entry copy, while the previous snapshot stays intact (it is
 * still needed if the transaction fails). The overlay is folded into a new base once it outgrows
 * √size, which keeps both copying and lookups cheap on average.
 */
export class PersistentMap<K, V> implements ReadonlyMap<K, V> {
  private constructor(
    /** Read directly by hot loops (see `get`): the bulk of the entries. */
    readonly base: ReadonlyMap<K, V>,
    /** Changes over `base`; `null` marks a removed key. */
    readonly overlay: ReadonlyMap<K, V | null> | undefined,
    readonly size: number,
  ) {}

  static of<K, V>(entries: Map<K, V>): PersistentMap<K, V> {
    return new PersistentMap(entries, undefined, entries.size);
  }

  get(key: K): V | undefined {
    if (this.overlay !== undefined) {
      const o = this.overlay.get(key);
      if (o !== undefined) return o === null ? undefined : o;
    }
    return this.base.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** The next version: `changes` maps a key to its new value, or to `null` to remove it. */
  with(changes: ReadonlyMap<K, V | null>): PersistentMap<K, V> {
    if (changes.size === 0) return this;
    let size = this.size;
    const overlay = new Map<K, V | null>(this.overlay ?? []);
    for (const [k, v] of changes) {
      const had = this.get(k) !== undefined;
      if (had && v === null) size--;
      else if (!had && v !== null) size++;
      overlay.set(k, v);
    }
    if (overlay.size * overlay.size > Math.max(this.base.size, 256)) {
      const merged = new Map<K, V>();
      for (const [k, v] of this.base) {
        const o = overlay.get(k);
        if (o === undefined) merged.set(k, v);
        else if (o !== null) merged.set(k, o);
      }
      for (const [k, o] of overlay) if (o !== null && !this.base.has(k)) merged.set(k, o);
      return new PersistentMap(merged, undefined, merged.size);
    }
    return new PersistentMap(this.base, overlay, size);
  }

  *entries(): MapIterator<[K, V]> {
    const overlay = this.overlay;
    for (const [k, v] of this.base) {
      if (overlay === undefined) {
        yield [k, v];
        continue;
      }
      const o = overlay.get(k);
      if (o === undefined) yield [k, v];
      else if (o !== null) yield [k, o];
    }
    if (overlay !== undefined)
      for (const [k, o] of overlay) if (o !== null && !this.base.has(k)) yield [k, o];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}
