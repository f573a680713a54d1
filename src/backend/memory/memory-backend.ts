import { LockingBackend, type LockSession } from '../common/locking-backend';
import type { SyncStore } from '../common/sync-store';
import { SortedStore, UndoLog } from './sorted-store';

/** Everything in this process's memory: the same semantics as the other backends, for fast tests. */
export class MemoryBackend extends LockingBackend {
  readonly kind = 'memory' as const;
  private readonly data = new SortedStore();
  private version = 0n;

  protected begin(): LockSession {
    const log = new UndoLog(this.data);
    let allocated: bigint | undefined;
    return {
      store: log,
      allocateVersion: () => (allocated = this.version + 1n),
      commit: () => {
        log.forget();
        if (allocated !== undefined) this.version = allocated;
      },
      rollback: () => log.rollback(),
    };
  }

  // Reads wait for the write lock: writes go straight to the store, so this is what isolates them.
  protected snapshot<T>(fn: (store: SyncStore) => Promise<T>): Promise<T> {
    return this.writeLock.run(() => fn(this.data));
  }

  protected async closeEngine(): Promise<void> {}
}
