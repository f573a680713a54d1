import type { Watch } from '../types';

interface Watcher {
  entry: Entry;
  baseline: Buffer | undefined;
  resolve: (changed: boolean) => void;
  /** Its watch, to note the value that fired it (Watch.seen). */
  watch: { seen?: { value: Buffer | undefined } };
  sync?: WatchSync;
  /** May wait for the engine's next poll (WatchOptions.lazy). */
  lazy: boolean;
}

/**
 * For engines that tell listeners the values a commit wrote (PostgreSQL's NOTIFY payloads): whether
 * the listener has heard the commit that armed a watch. From then on every value it hears for the key
 * is newer than the watch's baseline, and can be compared with it without reading the key (`known`).
 */
export interface WatchSync {
  synced: boolean;
}

/** One watched key and the watches on it. */
interface Entry {
  key: Buffer;
  hex: string;
  watchers: Set<Watcher>;
}

const same = (a: Buffer | undefined, b: Buffer | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.equals(b);

/** The index of the first entry whose key is >= `key`. */
function lowerBound(sorted: readonly Entry[], key: Buffer): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(sorted[mid].key, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The watches of one backend instance in this process, by full key. A watch fires once, when the
 * key's committed value differs from the value it had when the watch started.
 *
 * Watched keys are kept both by hex key (for the keys a commit wrote) and in key order (so a cleared
 * range finds the watched keys inside it by binary search): a commit costs O(its writes + its cleared
 * ranges × log watched keys + the watches it may fire), however many watches are registered.
 */
export class WatchHub {
  private readonly byKey = new Map<string, Entry>();
  /** The same entries, sorted by key. */
  private sorted: Entry[] = [];
  /**
   * Entries left without watches. They stay (a consumer re-arms the same key after every drain, and
   * taking an entry out of and back into the sorted array costs O(watched keys) each time) until they
   * are the majority, then one pass drops them all.
   */
  private idle = 0;
  /** Armed watches that are not lazy. */
  private prompt = 0;

  /** How many keys are being watched. */
  get size(): number {
    return this.byKey.size - this.idle;
  }

  /** Whether some armed watch wants to hear of every commit at once (is not lazy: WatchOptions). */
  get wantsPrompt(): boolean {
    return this.prompt > 0;
  }

  /** Creates a watch whose registration is deferred until `arm` (i.e. until its transaction commits). */
  pending(
    fullKey: Buffer,
    lazy = false,
  ): {
    watch: Watch;
    arm: (baseline: Buffer | undefined, sync?: WatchSync) => void;
    abort: () => void;
  } {
    let resolveChanged!: (changed: boolean) => void;
    const changed = new Promise<boolean>((resolve) => (resolveChanged = resolve));
    let watcher: Watcher | undefined;
    let cancelled = false;
    const watch: Watch & { seen?: { value: Buffer | undefined } } = {
      changed,
      cancel: () => {
        cancelled = true;
        if (watcher) this.remove(watcher);
        resolveChanged(false);
      },
    };
    return {
      watch,
      arm: (baseline, sync) => {
        if (cancelled) return;
        watcher = { entry: this.entryFor(fullKey), baseline, resolve: resolveChanged, watch, sync, lazy };
        watcher.entry.watchers.add(watcher);
        if (!lazy) this.prompt++;
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
    if (this.size === 0) return;
    const candidates = new Set<Entry>();
    for (const hex of touchedKeys) {
      const entry = this.byKey.get(hex);
      if (entry) candidates.add(entry);
    }
    // Ranges are [start, end): the first watched key >= start, then on while keys are < end.
    for (const [start, end] of touchedRanges)
      for (let i = lowerBound(this.sorted, start); i < this.sorted.length; i++) {
        const entry = this.sorted[i];
        if (Buffer.compare(entry.key, end) >= 0) break;
        candidates.add(entry);
      }
    for (const entry of candidates) if (entry.watchers.size > 0) this.fireChanged(entry, read(entry.key));
  }

  /** After another process committed: compare every watched key with its stored value. */
  recheck(readMany: (keys: Buffer[]) => Map<string, Buffer>): void {
    if (this.size === 0) return;
    const entries = this.sorted.filter((e) => e.watchers.size > 0);
    const current = readMany(entries.map((e) => e.key));
    for (const entry of entries) if (entry.watchers.size > 0) this.fireChanged(entry, current.get(entry.hex));
  }

  /**
   * For engines that read asynchronously (PostgreSQL): the watched keys now (those `select` accepts),
   * and `apply`, which fires those of today's watches whose key's value — read after this call, given
   * by hex key, absent meaning missing — differs from their baseline. Watches armed after this call are
   * left alone: their baselines may be newer than the values read.
   */
  capture(select?: (key: Buffer) => boolean): {
    keys: Buffer[];
    apply: (values: ReadonlyMap<string, Buffer>) => void;
  } {
    const captured: Array<[Entry, Watcher[]]> = [];
    for (const entry of this.byKey.values())
      if (entry.watchers.size > 0 && (!select || select(entry.key)))
        captured.push([entry, [...entry.watchers]]);
    return {
      keys: captured.map(([entry]) => entry.key),
      apply: (values) => {
        for (const [entry, watchers] of captured) {
          const value = values.get(entry.hex);
          for (const w of watchers)
            if (entry.watchers.has(w) && !same(w.baseline, value)) this.fire(w, value);
        }
      },
    };
  }

  /** Whether a watch is armed on the full key `hex`. */
  watching(hex: string): boolean {
    const entry = this.byKey.get(hex);
    return entry !== undefined && entry.watchers.size > 0;
  }

  /**
   * A commit heard from another connection left the key (hex) with `value` (absent: undefined): fires
   * its synced watches (see WatchSync) whose baseline differs. Returns whether the key has watches that
   * are not synced yet, and so must be judged by reading the key instead.
   */
  known(hex: string, value: Buffer | undefined): boolean {
    const entry = this.byKey.get(hex);
    if (!entry || entry.watchers.size === 0) return false;
    let unsure = false;
    for (const w of [...entry.watchers])
      if (!w.sync?.synced) unsure = true;
      else if (!same(w.baseline, value)) this.fire(w, value);
    return unsure;
  }

  /** Resolves every watch as cancelled (backend closing). */
  cancelAll(): void {
    for (const entry of this.sorted) {
      for (const w of entry.watchers) w.resolve(false);
      entry.watchers.clear();
    }
    this.byKey.clear();
    this.sorted = [];
    this.idle = 0;
    this.prompt = 0;
  }

  private entryFor(key: Buffer): Entry {
    const hex = key.toString('hex');
    let entry = this.byKey.get(hex);
    if (entry && entry.watchers.size === 0) this.idle--;
    if (!entry) {
      entry = { key, hex, watchers: new Set() };
      this.byKey.set(hex, entry);
      this.sorted.splice(lowerBound(this.sorted, key), 0, entry);
    }
    return entry;
  }

  private fireChanged(entry: Entry, value: Buffer | undefined): void {
    for (const w of [...entry.watchers]) if (!same(w.baseline, value)) this.fire(w, value);
  }

  /** A watch's key now holds `value`, which differs from its baseline. */
  private fire(w: Watcher, value: Buffer | undefined): void {
    this.remove(w);
    w.watch.seen = { value };
    w.resolve(true);
  }

  private remove(w: Watcher): void {
    const entry = w.entry;
    if (!entry.watchers.delete(w)) return;
    if (!w.lazy) this.prompt--;
    if (entry.watchers.size > 0) return;
    if (this.byKey.get(entry.hex) !== entry) return; // already dropped (cancelAll)
    this.idle++;
    if (this.idle > 64 && this.idle * 2 > this.sorted.length) this.dropIdle();
  }

  private dropIdle(): void {
    this.sorted = this.sorted.filter((e) => e.watchers.size > 0);
    for (const [hex, e] of this.byKey) if (e.watchers.size === 0) this.byKey.delete(hex);
    this.idle = 0;
  }
}
