import { pack, prefixRange } from '../backend/keys';
import type { Tenant } from '../backend/types';
import { toChunks } from '../codec/chunks';
import { cborSerializer } from '../codec/serializer';
import { DgenError, SerializationError, VersionAheadError } from '../errors';
import { decodeStateVersion, encodeStateVersion } from '../kernel/upgrade';
import { isSeq, type Seq } from './change-row';
import type { RowMark } from './db-replaced';

/** What a follower resumes from. */
export interface Checkpoint<S = unknown> {
  readonly seq: Seq;
  readonly state: S;
  /** The id and a revision of the last row handled: tells whether the database is still the same. */
  readonly last?: RowMark;
  /** The class version (`@ChangesFollower({ version })`) that stored the state; 1 before versions. */
  readonly version: number;
}

const isMark = (m: unknown): m is RowMark =>
  typeof m === 'object' &&
  m !== null &&
  typeof (m as RowMark).id === 'string' &&
  typeof (m as RowMark).rev === 'string';

const FORMAT = 1;

/**
 * A follower's checkpoint in a backend tenant: `{ seq, state }` encoded as a durable server's state
 * and messages are (the codec's checked CBOR serializer: Map, Set, Date, BigInt and undefined survive;
 * what would not come back as it was — a class instance, a function, a lone surrogate — is
 * NOT_SERIALIZABLE, never silently flattened), split by the codec's chunker into values below the
 * size limit, under `('dgen-ts', 'changes_follower', key, i)`. Each save replaces the previous one
 * in one transaction.
 */
export class CheckpointStore {
  private readonly prefix: [string, string, string];
  /** Where the version of the class that wrote the state is kept (read by every save, so small). */
  private readonly versionKey: Buffer;

  constructor(
    private readonly tenant: Tenant,
    readonly key: string,
    /** The running class's version: a save over a checkpoint of a newer version is VERSION_AHEAD. */
    private readonly version = 1,
  ) {
    this.prefix = ['dgen-ts', 'changes_follower', key];
    this.versionKey = pack(['dgen-ts', 'changes_follower_version', key]);
  }

  async load<S>(): Promise<Checkpoint<S> | undefined> {
    const { start, end } = prefixRange(this.prefix);
    const [pairs, rawVersion] = await this.tenant.read(
      async (tx) => [await tx.getRange(start, end), await tx.get(this.versionKey)] as const,
    );
    if (pairs.length === 0) return undefined;
    const version = decodeStateVersion(rawVersion);
    let record: unknown;
    try {
      record = cborSerializer.decode(Buffer.concat(pairs.map((p) => p.value)));
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
      ? { seq: r.seq, state: r.state as S, last: { id: r.last.id, rev: r.last.rev }, version }
      : { seq: r.seq, state: r.state as S, version };
  }

  async save(seq: Seq, state: unknown, last?: RowMark): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = cborSerializer.encode(last ? { v: FORMAT, seq, state, last } : { v: FORMAT, seq, state });
    } catch (err) {
      throw new SerializationError(
        'NOT_SERIALIZABLE',
        `the follower's state cannot be stored in its checkpoint: ${err instanceof DgenError ? err.message : String(err)}`,
        { cause: err },
      );
    }
    const { start, end } = prefixRange(this.prefix);
    await this.tenant.transact(async (tx) => {
      const stored = decodeStateVersion(await tx.get(this.versionKey));
      if (stored > this.version)
        throw new VersionAheadError(
          `the checkpoint ${JSON.stringify(this.key)} was stored by version ${stored} of the follower, and this process runs version ${this.version}: it leaves it to the newer processes`,
          stored,
          this.version,
        );
      tx.clearRange(start, end);
      toChunks(bytes).forEach((chunk, i) => tx.set(pack([...this.prefix, i]), chunk));
      tx.set(this.versionKey, encodeStateVersion(this.version));
    });
  }

  /** Removes the checkpoint (the next start begins at `options.since`). */
  async clear(): Promise<void> {
    const { start, end } = prefixRange(this.prefix);
    await this.tenant.transact((tx) => {
      tx.clearRange(start, end);
      tx.clear(this.versionKey);
    });
  }
}
