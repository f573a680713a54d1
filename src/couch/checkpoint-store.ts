import { Encoder } from 'cbor-x';
import { pack, prefixRange } from '../backend/keys';
import type { Tenant } from '../backend/types';
import { SerializationError } from '../errors';
import { isSeq, type Seq } from './change-row';
import type { RowMark } from './db-replaced';

/** What a follower resumes from. */
export interface Checkpoint<S = unknown> {
  readonly seq: Seq;
  readonly state: S;
  /** The id and a revision of the last row handled: tells whether the database is still the same. */
  readonly last?: RowMark;
}

const isMark = (m: unknown): m is RowMark =>
  typeof m === 'object' &&
  m !== null &&
  typeof (m as RowMark).id === 'string' &&
  typeof (m as RowMark).rev === 'string';

/** Below the backends' 100 000-byte value limit. */
const CHUNK_BYTES = 90_000;
const FORMAT = 1;

/**
 * A follower's checkpoint in a backend tenant: `{ seq, state }` in CBOR (cbor-x, so Map, Set, Date,
 * BigInt and undefined survive), split into values below the size limit, under
 * `('dgen-ts', 'changes_follower', key, i)`. Each save replaces the previous one in one transaction.
 */
export class CheckpointStore {
  private readonly codec = new Encoder({ useRecords: false });
  private readonly prefix: [string, string, string];

  constructor(
    private readonly tenant: Tenant,
    readonly key: string,
  ) {
    this.prefix = ['dgen-ts', 'changes_follower', key];
  }

  async load<S>(): Promise<Checkpoint<S> | undefined> {
    const { start, end } = prefixRange(this.prefix);
    const pairs = await this.tenant.read((tx) => tx.getRange(start, end));
    if (pairs.length === 0) return undefined;
    let record: unknown;
    try {
      record = this.codec.decode(Buffer.concat(pairs.map((p) => p.value)));
    } catch (err) {
      throw new SerializationError(
        'NOT_SERIALIZABLE',
        `the checkpoint ${JSON.stringify(this.key)} cannot be decoded`,
        {
          cause: err,
        },
      );
    }
    const r = record as { v?: unknown; seq?: unknown; state?: unknown; last?: unknown };
    if (typeof r !== 'object' || r === null || r.v !== FORMAT || !isSeq(r.seq))
      throw new SerializationError(
        'NOT_SERIALIZABLE',
        `the checkpoint ${JSON.stringify(this.key)} is not one this version wrote`,
      );
    return isMark(r.last)
      ? { seq: r.seq, state: r.state as S, last: { id: r.last.id, rev: r.last.rev } }
      : { seq: r.seq, state: r.state as S };
  }

  async save(seq: Seq, state: unknown, last?: RowMark): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = this.codec.encode(last ? { v: FORMAT, seq, state, last } : { v: FORMAT, seq, state });
    } catch (err) {
      throw new SerializationError(
        'NOT_SERIALIZABLE',
        `the follower's state cannot be stored in its checkpoint: ${String(err)}`,
        {
          cause: err,
        },
      );
    }
    const { start, end } = prefixRange(this.prefix);
    await this.tenant.transact((tx) => {
      tx.clearRange(start, end);
      for (let i = 0, n = 0; i < bytes.length || n === 0; i += CHUNK_BYTES, n++)
        tx.set(pack([...this.prefix, n]), bytes.subarray(i, i + CHUNK_BYTES));
    });
  }

  /** Removes the checkpoint (the next start begins at `options.since`). */
  async clear(): Promise<void> {
    const { start, end } = prefixRange(this.prefix);
    await this.tenant.transact((tx) => tx.clearRange(start, end));
  }
}
