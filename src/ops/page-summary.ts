import { decodeInt64LE } from '../backend/common/int64';
import { pack } from '../backend/keys';
import type { KeyValue, ReadTransaction } from '../backend/types';
import { decodeWire, type LockRecord, type QueueItem } from '../runtime/wire';
import type { ServerSummary } from './inspect';
import type { IndexedServer } from './server-index';

/**
 * Summaries of a page of servers from a few range reads instead of three per server (a listing reads
 * 100 000 servers). A server's keys all start with its packed tuid P (the tuple encoding is
 * concatenative, so `pack([...tuid, 'k'])` is P + `pack(['k'])`), and the index lists servers in the
 * order of their keys, so one forward scan over the page's span serves them all: each row is told
 * apart by its suffix after P, queue items past the head are skipped with a fresh read, and nothing
 * is unpacked or decoded that the summary does not show. It counts exactly what `summarize` counts.
 */
export interface PageEntry {
  server: IndexedServer;
  /** pack(tuid): the prefix of every key of the server. */
  prefix: Buffer;
}

const LOCK = pack(['k']);
const LETTERS = pack(['d']);
const ITEMS = pack(['q', 'i']);
const PUSH = pack(['q', 'push']);
const POP = pack(['q', 'pop']);
const STATE = pack(['s']);
const ITEMS_END = plus(ITEMS, 0xff);
/** Rows per range read: it grows while reads are all used and shrinks when a queue wastes one. */
const MIN_CHUNK = 16;
const MAX_CHUNK = 1024;

// Byte loops rather than Buffer#compare with offsets: these run for every row, on a few bytes, and
// the native call's argument checks cost more than the comparison.

/** Whether `key[at..]` starts with `c`. */
function startsAt(key: Buffer, at: number, c: Buffer): boolean {
  if (key.length < at + c.length) return false;
  for (let i = 0; i < c.length; i++) if (key[at + i] !== c[i]) return false;
  return true;
}

/** Whether `key[at..]` equals `c`. */
const equalsAt = (key: Buffer, at: number, c: Buffer): boolean =>
  key.length - at === c.length && startsAt(key, at, c);

/** Whether `key[at..]` is in prefixRange(c): c, then a byte below 0xff. */
const inRangeAt = (key: Buffer, at: number, c: Buffer): boolean =>
  key.length > at + c.length && startsAt(key, at, c) && key[at + c.length] !== 0xff;

/** Whether `key` is in prefixRange(prefix): one of the server's keys. */
const ownKey = (key: Buffer, prefix: Buffer): boolean =>
  key.length > prefix.length && startsAt(key, 0, prefix) && key[prefix.length] !== 0xff;

/** `bytes` followed by `last`. */
function plus(bytes: Buffer, last: number): Buffer {
  const out = Buffer.allocUnsafe(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = last;
  return out;
}

/**
 * A forward scan of [start, end) in chunks, which can jump ahead (past a queue's items) without reading
 * what it skips. The chunk size adapts: a backed-up queue costs at most one chunk of items read for nothing.
 */
class Scan {
  private rows: KeyValue[] = [];
  private i = 0;
  /** Every key below this has been read (or skipped). */
  private readTo: Buffer;
  private chunk = 128;

  constructor(
    private readonly tx: ReadTransaction,
    start: Buffer,
    private readonly end: Buffer,
  ) {
    this.readTo = start;
  }

  async peek(): Promise<KeyValue | undefined> {
    if (this.i < this.rows.length) return this.rows[this.i];
    if (Buffer.compare(this.readTo, this.end) >= 0) return undefined;
    this.rows = await this.tx.getRange(this.readTo, this.end, { limit: this.chunk });
    this.i = 0;
    this.readTo = this.rows.length < this.chunk ? this.end : plus(this.rows[this.rows.length - 1].key, 0);
    return this.rows[0];
  }

  skip(): void {
    if (++this.i === this.rows.length) this.chunk = Math.min(MAX_CHUNK, this.chunk * 2);
  }

  /** Continues at the first key >= `key`; rows it passes over were read for nothing: smaller chunks. */
  seek(key: Buffer): void {
    const held = this.i;
    while (this.i < this.rows.length && Buffer.compare(this.rows[this.i].key, key) < 0) this.i++;
    if (this.i > held) this.chunk = Math.max(MIN_CHUNK, this.chunk >> 2);
    if (this.i === this.rows.length && Buffer.compare(key, this.readTo) > 0) this.readTo = key;
  }
}

/**
 * Whether the page can be scanned in one pass: every server's keys after the previous server's (no
 * tuid is a prefix of the next one's, which would nest their keys).
 */
export function scannable(page: readonly PageEntry[]): boolean {
  for (let i = 1; i < page.length; i++) {
    const a = page[i - 1].prefix;
    const b = page[i].prefix;
    if (b.length > a.length && startsAt(b, 0, a)) return false;
  }
  return true;
}

/** The summaries of a `scannable` page, as of the snapshot `tx`. */
export async function summarizePage(
  tx: ReadTransaction,
  tenantPath: readonly string[],
  page: readonly PageEntry[],
  now: number,
): Promise<ServerSummary[]> {
  if (page.length === 0) return [];
  const scan = new Scan(tx, plus(page[0].prefix, 0), plus(page[page.length - 1].prefix, 0xff));
  const out: ServerSummary[] = new Array(page.length);
  for (let s = 0; s < page.length; s++) {
    const { server, prefix } = page[s];
    const at = prefix.length;
    scan.seek(plus(prefix, 0));
    let lock: LockRecord | undefined;
    let deadLetters = 0;
    let head: KeyValue | undefined;
    let push = 0;
    let pop = 0;
    let stateKeys = 0;
    let stateBytes = 0;
    let version: Buffer | undefined;
    for (let r = await scan.peek(); r !== undefined; r = await scan.peek()) {
      const k = r.key;
      // past this server's keys: the rest is the next server's (or nobody's)
      if (!ownKey(k, prefix)) break;
      scan.skip();
      if (equalsAt(k, at, LOCK)) lock = decodeWire<LockRecord>(r.value);
      else if (inRangeAt(k, at, LETTERS)) deadLetters++;
      else if (inRangeAt(k, at, ITEMS)) {
        head = r; // the first item is the head; the rest of the queue is not read
        scan.seek(Buffer.concat([prefix, ITEMS_END]));
      } else if (equalsAt(k, at, PUSH)) push = Number(decodeInt64LE(r.value));
      else if (equalsAt(k, at, POP)) pop = Number(decodeInt64LE(r.value));
      else if (inRangeAt(k, at, STATE)) {
        stateKeys++;
        stateBytes += k.length + r.value.length;
        version = r.value; // the version key ('v') sorts after the data ('d')
      }
    }
    out[s] = summaryOf(tenantPath, server, now, {
      head,
      lock,
      deadLetters,
      push,
      pop,
      stateKeys,
      stateBytes,
      version,
    });
  }
  return out;
}

/** What one server's keys were found to hold, by either reader (per-server reads or a page scan). */
export interface ServerCounts {
  head: KeyValue | undefined;
  lock: LockRecord | undefined;
  deadLetters: number;
  push: number;
  pop: number;
  stateKeys: number;
  stateBytes: number;
  /** The state's version key's value (the last state key read). */
  version: Buffer | undefined;
}

/** The summary record of `server` from what its keys held. */
export function summaryOf(
  tenantPath: readonly string[],
  server: IndexedServer,
  now: number,
  c: ServerCounts,
): ServerSummary {
  const at = c.head ? decodeWire<QueueItem>(c.head.value).at : undefined;
  return {
    tenant: [...tenantPath],
    tuid: server.tuid,
    className: server.className,
    version: server.version,
    createdAt: server.createdAt,
    queueLength: c.push - c.pop,
    oldestAgeMs: typeof at === 'number' ? Math.max(0, now - at) : null,
    lock: c.lock ? { owner: c.lock.owner, leaseUntil: c.lock.leaseUntil } : null,
    deadLetters: c.deadLetters,
    stateKeys: c.stateKeys,
    stateBytes: c.stateBytes,
    stateVersion: c.version && c.version.length === 10 ? c.version.toString('hex') : null,
    pushed: c.push,
    popped: c.pop,
  };
}
