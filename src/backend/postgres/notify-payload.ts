import { keyHash } from './key-hash';
import type { Statements } from './schema';
import type { Stmt } from './write-buffer';

/** Past this many touched keys a commit's NOTIFY says '*' (recheck every watch) instead of listing them. */
const MAX_LISTED_KEYS = 400;
/**
 * Characters of a payload given to keys with their values (PostgreSQL's limit is 8000 bytes): with at
 * most MAX_LISTED_KEYS hashes (≤ 8 characters each) and a token, a payload stays well below it.
 */
const VALUED_CHARS = 4000;
/** Longest value a payload carries (longer ones are read by the listeners that watch the key). */
export const VALUE_BYTES = 64;
/** Longest key a payload carries with its value. */
const KEY_BYTES = 256;

/** The value is computed by the server (an add, a versionstamped value), kept as `dgen.v<index>`. */
type Last = Buffer | null | { index: string };

/**
 * What a commit tells the listeners of every process (PostgresWatcher) about the keys it wrote, as the
 * payload of its NOTIFY: comma-separated entries, each
 *   `*`               any key may have changed (a range was cleared, or too many keys were written);
 *   `<hash>`          the key with this keyHash changed (its value not given: listeners read it);
 *   `<hexkey>=<hex>`  the key's value as this commit leaves it; `<hexkey>-` the key is now absent;
 *   `@<token>`        this commit armed watches in the process whose token it is (see WatchSync).
 * With the values given, a listener fires its watches without reading the keys: a call's hand-off
 * saves a round trip on each side. Small values only (VALUE_BYTES), within VALUED_CHARS in all;
 * values the server computes (adds) are written in by the NOTIFY statement itself, in the commit batch.
 */
export class TouchedKeys {
  private keys: Map<string, { key: Buffer; last: Last }> | '*' | undefined;
  private computedCount = 0;

  /** Whether the commit wrote any key (and so sends a NOTIFY). */
  get any(): boolean {
    return this.keys !== undefined;
  }

  set(full: Buffer, value: Buffer): void {
    this.note(full, value);
  }

  clear(full: Buffer): void {
    this.note(full, null);
  }

  /**
   * A write whose value the server computes: returns where the statement keeps it (`dgen.v<index>`, see
   * the statements `add` and `setStampedValue`).
   */
  computed(full: Buffer): string {
    const index = String(this.computedCount++);
    this.note(full, { index });
    return index;
  }

  /** Any key may have changed. */
  all(): void {
    this.keys = '*';
  }

  /** The NOTIFY statement of the commit, with `token` (its watches, see PostgresWatcher) if given. */
  notify(st: Statements, channel: string, token?: string): Stmt {
    const keys = this.keys;
    if (keys === '*' || keys === undefined)
      return { text: st.notify, params: [channel, token === undefined ? '*' : `*,@${token}`] };
    const entries: string[] = [];
    const computedHex: string[] = [];
    const computedHash: string[] = [];
    const computedAt: string[] = [];
    let budget = VALUED_CHARS;
    for (const [hex, { key, last }] of keys) {
      if (key.length <= KEY_BYTES) {
        if (last !== null && !Buffer.isBuffer(last)) {
          const cost = hex.length + 2 + 2 * VALUE_BYTES;
          if (cost <= budget) {
            budget -= cost;
            computedHex.push(hex);
            computedHash.push(keyHash(key));
            computedAt.push(last.index);
            continue;
          }
        } else if (last === null || last.length <= VALUE_BYTES) {
          const entry = last === null ? `${hex}-` : `${hex}=${last.toString('hex')}`;
          if (entry.length + 1 <= budget) {
            budget -= entry.length + 1;
            entries.push(entry);
            continue;
          }
        }
      }
      entries.push(keyHash(key));
    }
    if (token !== undefined) entries.push(`@${token}`);
    const given = entries.join(',');
    if (computedHex.length === 0) return { text: st.notify, params: [channel, given] };
    return {
      text: st.notifyComputed,
      params: [channel, given, computedHex.join(','), computedHash.join(','), computedAt.join(',')],
    };
  }

  private note(full: Buffer, last: Last): void {
    if (this.keys === '*') return;
    const keys = this.keys ?? (this.keys = new Map());
    keys.set(full.toString('hex'), { key: full, last });
    if (keys.size > MAX_LISTED_KEYS) this.keys = '*';
  }
}
