import { compactKeys, pack, prefixRange, unpack } from '../backend/keys';
import type { ServerKeys } from '../runtime/server-keys';

/**
 * The byte prefixes of a server's timer keys (see TimerStore), packed once per server: a tuple's
 * encoding is the concatenation of its items' encodings, so a key is its prefix followed by the
 * packed rest, and the scheduler's fire path, which runs for every due server on every tick, packs
 * and unpacks only the short tails (a whole tuple costs several µs each way).
 */
export class TimerKeys {
  private static readonly cache = new WeakMap<ServerKeys, TimerKeys>();

  static of(keys: ServerKeys): TimerKeys {
    let t = TimerKeys.cache.get(keys);
    if (!t) TimerKeys.cache.set(keys, (t = new TimerKeys(keys)));
    return t;
  }

  /** t,k: records by key. */
  private readonly recordPrefix: Buffer;
  /** t,d: the due-ordered index; `index` is the range of all its keys. */
  private readonly indexPrefix: Buffer;
  readonly index: { start: Buffer; end: Buffer };
  readonly records: { start: Buffer; end: Buffer };
  /** t,i: the idle timeout. */
  readonly idle: Buffer;

  private constructor(keys: ServerKeys) {
    const index = prefixRange([...keys.tuid, 't', 'd']);
    const records = prefixRange([...keys.tuid, 't', 'k']);
    // one allocation for all seven (compactKeys): every consuming server holds them
    [this.recordPrefix, this.indexPrefix, index.start, index.end, records.start, records.end, this.idle] =
      compactKeys([
        pack([...keys.tuid, 't', 'k']),
        pack([...keys.tuid, 't', 'd']),
        index.start,
        index.end,
        records.start,
        records.end,
        pack([...keys.tuid, 't', 'i']),
      ]);
    this.index = index;
    this.records = records;
  }

  record(key: string): Buffer {
    return Buffer.concat([this.recordPrefix, pack([key])]);
  }

  indexKey(due: number, key: string): Buffer {
    return Buffer.concat([this.indexPrefix, pack([due, key])]);
  }

  /** The first index key of a due at `due` or later. */
  indexFrom(due: number): Buffer {
    // A positive integer below 2^48 (a ms timestamp) packs as its type byte and its bytes, big-endian:
    // written here rather than by pack(), which allocates several buffers (once per offer's read).
    if (Number.isSafeInteger(due) && due > 0 && due < 2 ** 48) {
      let n = 1;
      while (due >= 2 ** (8 * n)) n++;
      const at = this.indexPrefix.length;
      const out = Buffer.allocUnsafe(at + 1 + n); // every byte is written below
      this.indexPrefix.copy(out, 0);
      out[at] = INT_ZERO + n;
      for (let i = n, v = due; i >= 1; i--, v = Math.floor(v / 256)) out[at + i] = v % 256;
      return out;
    }
    return Buffer.concat([this.indexPrefix, pack([due])]);
  }

  /** An index key's due and timer key. */
  ofIndex(indexKey: Buffer): { due: number; key: string } {
    const [due, key] = unpack(indexKey.subarray(this.indexPrefix.length));
    return { due: due as number, key: key as string };
  }

  /** An index key's due: `ofIndex(indexKey).due` without decoding the timer key (once per handling). */
  dueOfIndex(indexKey: Buffer): number {
    // A positive integer due of up to 6 bytes (ms timestamps are) is its bytes, big-endian, after its
    // type byte; others go through unpack.
    const at = this.indexPrefix.length;
    const n = indexKey[at] - INT_ZERO;
    if (n >= 1 && n <= 6 && at + n < indexKey.length) {
      let due = 0;
      for (let i = 1; i <= n; i++) due = due * 256 + indexKey[at + i];
      return due;
    }
    return this.ofIndex(indexKey).due;
  }

  /** The record key of the timer an index key names. */
  recordOfIndex(indexKey: Buffer): Buffer {
    // An index key is indexPrefix + pack([due]) + pack([key]), a record key recordPrefix + pack([key]):
    // copy the packed key's bytes rather than unpack and pack them again (three times per offered
    // timer). An integer due's packing is its type byte and as many bytes as that byte says.
    const at = this.indexPrefix.length;
    const code = indexKey[at];
    if (code >= INT_CODE_MIN && code <= INT_CODE_MAX) {
      const keyAt = at + 1 + Math.abs(code - INT_ZERO);
      if (indexKey[keyAt] === STRING_CODE && indexKey[indexKey.length - 1] === 0)
        return Buffer.concat([this.recordPrefix, indexKey.subarray(keyAt)]);
    }
    return this.record(this.ofIndex(indexKey).key);
  }

  /** A record key's timer key. */
  ofRecord(recordKey: Buffer): string {
    return unpack(recordKey.subarray(this.recordPrefix.length))[0] as string;
  }
}

/** FoundationDB tuple type codes: integers of 1 to 8 bytes (0x14 is zero), and strings. */
const INT_ZERO = 0x14;
const INT_CODE_MIN = INT_ZERO - 8;
const INT_CODE_MAX = INT_ZERO + 8;
const STRING_CODE = 0x02;
