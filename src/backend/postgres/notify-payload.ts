import { keyHash } from './key-hash';
import type { Statements } from './schema';
import type { Stmt } from './write-buffer';

/** Past this many touched keys a commit's NOTIFY says '*' (recheck every watch) instead of listing them. */
const MAX_LISTED_KEYS = 400;
/** Most characters of a payload with values (PostgreSQL's limit is 8000 bytes). */
const PAYLOAD_CHARS = 7800;
/** Longest value a payload carries (longer ones are read by the listeners that watch the key). */
export const VALUE_BYTES = 64;
/** Longest key a payload carries with its value. */
const KEY_BYTES = 256;

/** The value is computed by the server (an add, a versionstamped value): its entry is kept in `name`. */
type Last = Buffer | null | { name: string; hash: string };

/**
 * What a commit tells the listeners of every process (PostgresWatcher) about the keys it wrote, as the
 * payload of its NOTIFY: comma-separated entries, each
 *   `*`               any key may have changed (a range was cleared, or too many keys were written);
 *   `<hash>`          the key with this keyHash changed (its value not given: listeners read it);
 *   `<hexkey>=<hex>`  the key's value as this commit leaves it; `<hexkey>-` the key is now absent;
 *   `@<token>`        this commit armed watches in the process whose token it is (see WatchSync).
 * With the values given, a listener fires its watches without reading the keys: a call's hand-off
 * saves a round trip on each side. All keys with their values, or none (hashes only): a listener reads
 * the keys of a commit whose values it was not given all of, so that its watches woken by one commit
 * fire together (callers woken together share their reads and their next pushes). Values only for
 * small keys and values, within PAYLOAD_CHARS; those the server computes (adds) are written in by the
 * NOTIFY statement itself, in the commit batch.
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
   * A write whose value the server computes: returns the parameters of the statement (`add`,
   * `setStampedValue`) that keep its NOTIFY entry: the setting's name, the key in hex, its hash.
   */
  computed(full: Buffer): [string, string, string] {
    const last = { name: `dgen.v${this.computedCount++}`, hash: keyHash(full) };
    const hex = this.note(full, last);
    return [last.name, hex, last.hash];
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
    const tail = token === undefined ? '' : `,@${token}`;
    const valued = this.valued(keys, tail.length);
    if (!valued) {
      // Listeners read the keys of such a commit (all of them, so their watches fire together).
      const hashes = [...keys.values()].map(({ key }) => keyHash(key)).join(',');
      return { text: st.notify, params: [channel, hashes + tail] };
    }
    const given = valued.entries.join(',') + (valued.entries.length > 0 ? tail : tail.slice(1));
    const c = valued.computed;
    if (c.length === 0) return { text: st.notify, params: [channel, given] };
    return {
      text: st.notifyComputed(c.length),
      params: [channel, given, ...c.flatMap((x) => [x.name, x.hash])],
    };
  }

  /** Every key with its value, if they all fit (within PAYLOAD_CHARS, counting `extra` more). */
  private valued(keys: Map<string, { key: Buffer; last: Last }>, extra: number) {
    const entries: string[] = [];
    const computed: Array<{ name: string; hash: string }> = [];
    let left = PAYLOAD_CHARS - extra;
    for (const [hex, { key, last }] of keys) {
      if (key.length > KEY_BYTES) return undefined;
      if (last !== null && !Buffer.isBuffer(last)) {
        left -= hex.length + 2 + 2 * VALUE_BYTES; // the most the server writes in
        computed.push(last);
      } else {
        if (last !== null && last.length > VALUE_BYTES) return undefined;
        const entry = last === null ? `${hex}-` : `${hex}=${last.toString('hex')}`;
        left -= entry.length + 1;
        entries.push(entry);
      }
      if (left < 0) return undefined;
    }
    return { entries, computed };
  }

  private note(full: Buffer, last: Last): string {
    const hex = full.toString('hex');
    if (this.keys === '*') return hex;
    const keys = this.keys ?? (this.keys = new Map());
    keys.set(hex, { key: full, last });
    if (keys.size > MAX_LISTED_KEYS) this.keys = '*';
    return hex;
  }
}
