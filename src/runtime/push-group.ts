import type { Tenant, Transaction } from '../backend/types';
import { SharedRuns } from './shared-runs';

/** Most pushes one shared transaction takes (the rest go in the next). */
const MAX_MEMBERS = 128;

interface Member {
  body: (tx: Transaction) => unknown;
  deferFlush: boolean;
}

const groups = new WeakMap<Tenant, SharedRuns<Member, unknown>>();

/**
 * Group commit of the pushes (casts and calls) of one process to one tenant, on backends whose commits
 * are serialized and do not share a flush by themselves: PostgreSQL, whose commit lock (schema.ts) is
 * held through each commit's WAL flush, so N concurrent pushes would cost N flushes one after another.
 * (SQLite and memory group concurrent transactions in the backend already, see LockingBackend.)
 *
 * Pushes share transactions as SharedRuns gathers them (one in flight; a lone push goes at once; a
 * failed shared transaction committed nothing, and its members run again alone), each body run in
 * arrival order (their queue items keep that order). Bodies are the runtime's push bodies:
 * synchronous writes that read nothing.
 */
export const PushGroup = {
  /** Whether pushes to `tenant` should share transactions (see above). */
  applies(tenant: Tenant): boolean {
    return tenant.backend.kind === 'postgres';
  },

  /** Runs `body` in a transaction shared with the concurrent pushes of this process to `tenant`. */
  run<T>(tenant: Tenant, body: (tx: Transaction) => T, deferFlush = false): Promise<T> {
    if (!PushGroup.applies(tenant)) return tenant.transact(body, { deferFlush });
    let group = groups.get(tenant);
    if (!group) {
      const alone = (m: Member) => tenant.transact(m.body, { deferFlush: m.deferFlush });
      const together = (members: Member[]) =>
        tenant.transact((tx) => members.map((m) => m.body(tx)), {
          deferFlush: members.every((m) => m.deferFlush),
        });
      groups.set(tenant, (group = new SharedRuns(MAX_MEMBERS, together, alone)));
    }
    return group.add({ body, deferFlush }) as Promise<T>;
  },
};
