import { compactKeys, pack } from '../backend/keys';
import type { ReadTransaction, Transaction } from '../backend/types';
import type { StateStore } from '../codec/state-codec';
import { DgenError, VersionAheadError } from '../errors';
import {
  assertNotAhead,
  classVersion,
  decodeStateVersion,
  encodeStateVersion,
  toCurrentVersion,
} from '../kernel/upgrade';
import type { ClassDefinition } from '../registry/class-definition';
import type { ServerContext } from './server-context';
import type { StateStorage, StoredState } from './state-storage';

/**
 * A server's state with its state version (kernel/upgrade.ts) stored next to it, under
 * `(...prefix, 'n')` beside the codec's `(...prefix, 'd', …)` and `(...prefix, 'v')`:
 * - reading a state stored by an older version upgrades it in memory (`upgraded: true`; the runtime
 *   writes it back in the same transaction when it starts, and any later write carries the version);
 * - reading one stored by a newer version, or an upgrade that throws, calls `fatal` (the process steps
 *   aside) and throws VERSION_AHEAD / UPGRADE_FAILED: nothing is written.
 * A class of version 1 writes no version key (absent means 1), so it costs nothing until it is bumped.
 */
export class VersionedState implements StateStorage {
  private readonly versionKey: Buffer;
  private readonly running: number;

  constructor(
    private readonly def: ClassDefinition,
    private readonly instance: object,
    private readonly inner: StateStore,
    private readonly fatal: (error: DgenError) => void,
  ) {
    this.versionKey = compactKeys([pack([...inner.prefix, 'n'])])[0]; // kept per server: see compactKeys
    this.running = classVersion(def);
  }

  readVersion(tx: ReadTransaction): Promise<Buffer | undefined> {
    return this.inner.readVersion(tx);
  }

  async read(tx: ReadTransaction): Promise<StoredState | undefined> {
    const [stored, raw] = await Promise.all([this.inner.read(tx), tx.get(this.versionKey)]);
    if (!stored) return undefined;
    return this.guard(() => {
      const { state, upgraded } = toCurrentVersion(
        this.def,
        this.instance,
        decodeStateVersion(raw),
        stored.state,
      );
      return upgraded ? { ...stored, state, upgraded } : stored;
    });
  }

  /** For a consumer standing by (it reads no state): one key, about once a second. */
  async assertCurrent(tx: ReadTransaction): Promise<void> {
    const stored = decodeStateVersion(await tx.get(this.versionKey));
    this.guard(() => assertNotAhead(this.def, stored));
  }

  /** Runs `fn`; a VERSION_AHEAD or UPGRADE_FAILED it throws makes the process step aside first. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof DgenError) this.fatal(error);
      throw error;
    }
  }

  write(tx: Transaction, previous: unknown, next: unknown): void {
    this.inner.write(tx, previous, next);
    if (this.running !== 1) tx.set(this.versionKey, encodeStateVersion(this.running));
  }
}

/**
 * What a server process does when its state is not its to handle (VERSION_AHEAD) or cannot be
 * upgraded (UPGRADE_FAILED): says so on `events$` and stops, leaving its messages queued for a
 * process of the right version (the stop releases the consumer lease at once).
 */
export function stepAside(p: Pick<ServerContext, 'isStopped' | 'emit' | 'stop'>, error: DgenError): void {
  if (p.isStopped) return;
  if (error instanceof VersionAheadError)
    p.emit({ type: 'version-ahead', stored: error.stored ?? 0, running: error.running ?? 0 });
  else p.emit({ type: 'upgrade-failed', error });
  void p.stop(error);
}
