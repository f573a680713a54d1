import type { SyncStore } from './sync-store';

/**
 * The atomic adds of one transaction, held back and merged per key, so that many adds to one counter
 * (a consumer's pop counter, once per message of a batch; a target's push counter, once per outbox
 * cast) are one store write. The transaction applies them before anything could see them — a read,
 * write or watch of the same key, any range read or clear, and the end of its body — and adds wrap at
 * 64 bits, so the merged sum leaves exactly the value the adds one by one would.
 */
export class PendingAdds {
  private readonly byKey = new Map<string, { key: Buffer; delta: bigint }>();

  /** `hex`: the key's hex (the map's key). */
  add(hex: string, key: Buffer, delta: bigint): void {
    const pending = this.byKey.get(hex);
    if (pending) pending.delta = BigInt.asIntN(64, pending.delta + delta);
    else this.byKey.set(hex, { key, delta });
  }

  get size(): number {
    return this.byKey.size;
  }

  has(key: Buffer): boolean {
    return this.byKey.has(key.toString('hex'));
  }

  /** Writes every pending add to `store` (which has `add`), and forgets them. */
  apply(store: SyncStore): void {
    for (const { key, delta } of this.byKey.values()) store.add!(key, delta);
    this.byKey.clear();
  }
}
