import type { ReadTransaction, Transaction, Watch } from '../backend/types';
import type { ServerContext } from './server-context';
import type { ServerKeys } from './server-keys';
import { decodeWire, encodeWire, type LockRecord } from './wire';

/** How long the active consumer of a server keeps the role without handling anything (ms). */
export const CONSUMER_LEASE_MS = 2000;

/** The lease record decoded last, by its bytes. */
let last: { raw: Buffer; lease: Readonly<LockRecord> } | undefined;

/**
 * Which consumer of a server handles its queue: the "active consumer" lease. Consumers of one server in
 * several processes would otherwise all run every batch, and all but one find at commit that another
 * got there first — re-reading a large state after every such loss. The consumer that commits a batch
 * holds the lease (renewed, inside the batch's own transaction, once half of it has run); the others
 * stand by, looking again when it would expire, and take over once it has (its holder stopped or died).
 */
export const ConsumerLease = {
  async read(tx: ReadTransaction, keys: ServerKeys): Promise<LockRecord | undefined> {
    const raw = await tx.get(keys.consumerLease);
    if (!raw) return undefined;
    // A consumer reads its lease twice a batch and renews it about once a second: the same bytes, the
    // same record, decoded once.
    if (!last?.raw.equals(raw)) last = { raw, lease: Object.freeze(decodeWire<LockRecord>(raw)) };
    return last.lease;
  },

  /** Held by another consumer and not run out: when to look again; else undefined (ours to take). */
  heldByOther(lease: LockRecord | undefined, owner: string): number | undefined {
    if (!lease || lease.owner === owner || lease.leaseUntil <= Date.now()) return undefined;
    return lease.leaseUntil;
  },

  /**
   * Standing by while another consumer is active: a lazy watch on its lease (renewed, released: a
   * release is seen within a poll, 50 ms on SQLite) and when it would run out; undefined if it is ours
   * to take now. While the other works this runs about once
   * a second (it renews at half its lease), a read-only transaction.
   */
  async waitOut(ctx: ServerContext): Promise<{ watch: Watch; until: number } | undefined> {
    return ctx.tenant.transact(async (tx) => {
      await ctx.state.assertCurrent?.(tx); // a newer version took over: step aside (versioned-state.ts)
      const until = ConsumerLease.heldByOther(await ConsumerLease.read(tx, ctx.keys), ctx.owner);
      if (until === undefined) return undefined;
      // Lazy: the lease changes about once a second, its holder commits thousands of times (WatchOptions).
      return { watch: tx.watch(ctx.keys.consumerLease, { lazy: true }), until };
    });
  },

  /** Gives the lease up if it is still ours (the server stops here), so another may take over at once. */
  async release(ctx: ServerContext): Promise<void> {
    await ctx.tenant
      .transact(async (tx) => {
        const lease = await ConsumerLease.read(tx, ctx.keys);
        if (lease?.owner === ctx.owner) tx.clear(ctx.keys.consumerLease);
      })
      .catch(() => undefined); // the backend is closed, or the server was killed: nothing to hand over
  },

  /** Takes or renews the lease in the transaction that handles a batch (only once half has run). */
  hold(tx: Transaction, keys: ServerKeys, lease: LockRecord | undefined, owner: string): void {
    const now = Date.now();
    if (lease && lease.owner === owner && lease.leaseUntil - now > CONSUMER_LEASE_MS / 2) return;
    tx.set(
      keys.consumerLease,
      encodeWire({ owner, leaseUntil: now + CONSUMER_LEASE_MS } satisfies LockRecord),
    );
  },
};
