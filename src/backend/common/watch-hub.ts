import type { Watch } from '../types';

interface Watcher {
  key: Buffer;
  baseline: Buffer | undefined;
  resolve: (changed: boolean) => void;
}

const same = (a: Buffer | undefined, b: Buffer | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.equals(b);

/**
 * The watches of one backend instance in this process, by full key. A watch fires once, when the
 * key's committed value differs from the value it had when the watch started.
 */
export class WatchHub {
  private readonly byKey = new Map<string, Set<Watcher>>();

  get size(): number {
    return this.byKey.size;
  }

  /** Creates a watch whose registration is deferred until `arm` (i.e. until its transaction commits). */
  pending(fullKey: Buffer): { watch: Watch; arm: (baseline: Buffer | undefined) => void; abort: () => void } {
    let resolveChanged!: (changed: boolean) => void;
    const changed = new Promise<boolean>((resolve) => (resolveChanged = resolve));
    let watcher: Watcher | undefined;
    let cancelled = false;
    const watch: Watch = {
      changed,
      cancel: () => {
        cancelled = true;
        if (watcher) this.remove(watcher);
        resolveChanged(false);
      },
    };
    return {
      watch,
      arm: (baseline) => {
        if (cancelled) return;
        watcher = { key: fullKey, baseline, resolve: resolveChanged };
        const hex = fullKey.toString('hex');
        let set = this.byKey.get(hex);
        if (!set) this.byKey.set(hex, (set = new Set()));
        set.add(watcher);
      },
      abort: () => resolveChanged(false),
    };
  }

  /** After a local commit: fire watches on the keys it touched whose value now differs. */
  notify(
    touchedKeys: Iterable<string>,
    touchedRanges: ReadonlyArray<readonly [Buffer, Buffer]>,
    read: (key: Buffer) => Buffer | undefined,
  ): void {
    if (this.byKey.size === 0) return;
    const candidates = new Set<string>();
    for (const hex of touchedKeys) if (this.byKey.has(hex)) candidates.add(hex);
    if (touchedRanges.length > 0)
      for (const [hex, set] of this.byKey) {
        const key = set.values().next().value?.key;
        if (key && touchedRanges.some(([s, e]) => Buffer.compare(key, s) >= 0 && Buffer.compare(key, e) < 0))
          candidates.add(hex);
      }
    for (const hex of candidates) {
      const set = this.byKey.get(hex);
      if (set) this.fireChanged(set, read(set.values().next().value!.key));
    }
  }

  /** After another process committed: compare every watched key with its stored value. */
  recheck(readMany: (keys: Buffer[]) => Map<string, Buffer>): void {
    if (this.byKey.size === 0) return;
    const keys = [...this.byKey.values()].map((set) => set.values().next().value!.key);
    const current = readMany(keys);
    for (const [hex, set] of [...this.byKey]) this.fireChanged(set, current.get(hex));
  }

  /** Resolves every watch as cancelled (backend closing). */
  cancelAll(): void {
    for (const set of this.byKey.values()) for (const w of set) w.resolve(false);
    this.byKey.clear();
  }

  private fireChanged(set: Set<Watcher>, value: Buffer | undefined): void {
    for (const w of [...set])
      if (!same(w.baseline, value)) {
        this.remove(w);
        w.resolve(true);
      }
  }

  private remove(w: Watcher): void {
    const hex = w.key.toString('hex');
    const set = this.byKey.get(hex);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.byKey.delete(hex);
  }
}
