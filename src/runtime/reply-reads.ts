import type { Tenant } from '../backend/types';
import { CallChannel } from './call-channel';
import { PushGroup } from './push-group';
import type { ServerKeys } from './server-keys';
import { SharedRuns } from './shared-runs';
import type { FromId } from './wire';

type Got = Awaited<ReturnType<typeof CallChannel.readKeyed>>;
type Reader = { keys: ServerKeys; from: FromId };

/** Most replies one shared read takes. */
const MAX_READERS = 256;

const groups = new WeakMap<Tenant, SharedRuns<Reader, Got>>();

/**
 * The callers' reads of their replies, shared: one consumer commit answers a whole batch of calls, and
 * their callers (in one process) wake together; on PostgreSQL each read would otherwise take a pool
 * connection, BEGIN and ROLLBACK of its own. As PushGroup: SharedRuns gathers them into one snapshot
 * read; a failed shared read is done again reader by reader.
 */
export const ReplyReads = {
  /** The reply to `from`, if it has arrived, with the keys to clear later (CallChannel.readKeyed). */
  read(tenant: Tenant, keys: ServerKeys, from: FromId): Promise<Got> {
    const alone = (r: Reader) => tenant.read((tx) => CallChannel.readKeyed(tx, r.keys, r.from));
    if (!PushGroup.applies(tenant)) return alone({ keys, from });
    let group = groups.get(tenant);
    if (!group) {
      const together = (readers: Reader[]) =>
        tenant.read((tx) => Promise.all(readers.map((r) => CallChannel.readKeyed(tx, r.keys, r.from))));
      groups.set(tenant, (group = new SharedRuns(MAX_READERS, together, alone)));
    }
    return group.add({ keys, from });
  },
};
