import { compactKeys, pack, prefixRange, unboundVersionstamp } from '../backend/keys';
import type { KeyTuple } from '../backend/types';
import type { Tuid } from '../returns';
import type { FromId } from './wire';

/**
 * Where one server keeps its things inside the tenant, all under its tuid:
 *   s…          the state (the codec's keys)
 *   q,i,<vs>    queue items in commit order;  q,push / q,pop  counters (atomic adds)
 *   k           the lock record
 *   w,<from>,…  waiting callers (from = [deadline ms, uuid]): a pending marker and the chunked reply
 *   a           failed attempts of the message at the queue head
 *   c           the consumer lease: which consumer process handles the queue
 *   d,<vs>      dead letters
 */
export class ServerKeys {
  readonly tuid: KeyTuple;
  readonly state: KeyTuple;
  readonly pushCounter: Buffer;
  readonly popCounter: Buffer;
  readonly lock: Buffer;
  readonly attempts: Buffer;
  readonly consumerLease: Buffer;
  readonly queueItems: { start: Buffer; end: Buffer };
  private stamped: KeyTuple | undefined;

  constructor(tuid: Tuid) {
    this.tuid = [...tuid];
    this.state = [...tuid, 's'];
    // The keys every consumer step touches, packed into one allocation: an idle server holds
    // thousands of these, and one ArrayBuffer per key costs more than the keys themselves.
    const items = prefixRange([...tuid, 'q', 'i']);
    [
      this.pushCounter,
      this.popCounter,
      this.lock,
      this.attempts,
      this.consumerLease,
      items.start,
      items.end,
    ] = compactKeys([
      pack([...tuid, 'q', 'push']),
      pack([...tuid, 'q', 'pop']),
      pack([...tuid, 'k']),
      pack([...tuid, 'a']),
      pack([...tuid, 'c']),
      items.start,
      items.end,
    ]);
    this.queueItems = items;
  }

  // Rarely used (reading dead letters, kill): computed when asked.
  get deadLetters(): { start: Buffer; end: Buffer } {
    return prefixRange([...this.tuid, 'd']);
  }

  get waiting(): { start: Buffer; end: Buffer } {
    return prefixRange([...this.tuid, 'w']);
  }

  /** The first waiting-caller key whose deadline (ms since the epoch) is `deadline` or later. */
  waitingBefore(deadline: number): Buffer {
    return pack([...this.tuid, 'w', deadline]);
  }

  get all(): { start: Buffer; end: Buffer } {
    return prefixRange([...this.tuid]);
  }

  queueItemTuple(stamp: KeyTuple[number]): KeyTuple {
    return [...this.tuid, 'q', 'i', stamp];
  }

  /** The key of the next item pushed, to be versionstamped: one frozen tuple, packed once (versionstamp.ts). */
  get queueItemStamped(): KeyTuple {
    return (this.stamped ??= Object.freeze(this.queueItemTuple(unboundVersionstamp())) as KeyTuple);
  }

  deadLetterTuple(stamp: KeyTuple[number]): KeyTuple {
    return [...this.tuid, 'd', stamp];
  }

  /** The marker a caller writes and watches; the consumer overwrites it when the reply is in place. */
  pendingMarker(from: FromId): Buffer {
    const keys = this.callerKeys(from);
    return (keys.marker ??= Buffer.concat([keys.prefix, MARKER]));
  }

  replyChunk(from: FromId, i: number): Buffer {
    return Buffer.concat([this.callerKeys(from).prefix, REPLY_CHUNKS[i] ?? pack(['r', i])]);
  }

  fromRange(from: FromId): { start: Buffer; end: Buffer } {
    const keys = this.callerKeys(from);
    return (keys.range ??= {
      start: Buffer.concat([keys.prefix, RANGE_START]),
      end: Buffer.concat([keys.prefix, RANGE_END]),
    });
  }

  /**
   * One waiting caller's keys, packed once per FromId: a call uses them in its push, its reply read and
   * the clean-up of the next push, the consumer twice per reply. A tuple's packing is its items'
   * packings end to end, so they all extend the packed `(...tuid, 'w', deadline, id)`.
   */
  private callerKeys(from: FromId): CallerKeys {
    let keys = callerKeys.get(from);
    if (keys?.of !== this) {
      // pack([...tuid, 'w', from[0], from[1]]) without packing the tuid's strings again per call: the
      // packed tuid is the lock key, pack([...tuid, 'k']), less pack(['k']).
      const tuid = this.lock.subarray(0, this.lock.length - LOCK_TAIL.length);
      keys = { of: this, prefix: Buffer.concat([tuid, WAIT, pack([from[0], from[1]])]) };
      callerKeys.set(from, keys);
    }
    return keys;
  }
}

interface CallerKeys {
  of: ServerKeys;
  prefix: Buffer;
  marker?: Buffer;
  range?: { start: Buffer; end: Buffer };
}

/** By FromId object: gone with it (a call's, or a decoded queue item's). */
const callerKeys = new WeakMap<FromId, CallerKeys>();
const MARKER = pack(['p']);
const LOCK_TAIL = pack(['k']);
const WAIT = pack(['w']);
/** The keys of a reply's first chunks (most replies are one chunk), packed once. */
const REPLY_CHUNKS = Array.from({ length: 8 }, (_, i) => pack(['r', i]));
/** What prefixRange appends to a packed tuple (fdb-tuple's range). */
const RANGE_START = Buffer.from([0x00]);
const RANGE_END = Buffer.from([0xff]);
