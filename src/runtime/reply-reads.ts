import type { Tenant } from '../backend/types';
import { CallChannel } from './call-channel';
import { PushGroup } from './push-group';
import type { ServerKeys } from './server-keys';
import type { FromId } from './wire';

type Got = Awaited<ReturnType<typeof CallChannel.readKeyed>>;

interface Reader {
  keys: ServerKeys;
  from: FromId;
  resolve: (got: Got) => void;
  reject: (err: unknown) => void;
}

const groups = new WeakMap<Tenant, ReplyReads>();

/**
 * The callers' reads of their replies, shared: one consumer commit answers a whole batch of calls, and
 * their callers (in one process) wake together; on PostgreSQL each read would otherwise take a pool
 * connection, BEGIN and ROLLBACK of its own. As PushGroup: one shared snapshot read in flight, the reads
 * asked meanwhile go together in the next; a failed shared read is done again reader by reader.
 */
export class ReplyReads {
  private waiting: Reader[] = [];
  private inFlight = false;

  private constructor(private readonly tenant: Tenant) {}

  /** The reply to `from`, if it has arrived, with the keys to clear later (CallChannel.readKeyed). */
  static read(tenant: Tenant, keys: ServerKeys, from: FromId): Promise<Got> {
    if (!PushGroup.applies(tenant)) return tenant.read((tx) => CallChannel.readKeyed(tx, keys, from));
    let group = groups.get(tenant);
    if (!group) groups.set(tenant, (group = new ReplyReads(tenant)));
    return group.add(keys, from);
  }

  private add(keys: ServerKeys, from: FromId): Promise<Got> {
    return new Promise<Got>((resolve, reject) => {
      this.waiting.push({ keys, from, resolve, reject });
      if (!this.inFlight) {
        this.inFlight = true;
        queueMicrotask(() => void this.next());
      }
    });
  }

  private async next(): Promise<void> {
    while (this.waiting.length > 0) {
      const readers = this.waiting.splice(0, 256);
      try {
        const got = await this.tenant.read((tx) =>
          Promise.all(readers.map((r) => CallChannel.readKeyed(tx, r.keys, r.from))),
        );
        readers.forEach((r, i) => r.resolve(got[i]));
      } catch {
        await Promise.all(
          readers.map((r) =>
            this.tenant.read((tx) => CallChannel.readKeyed(tx, r.keys, r.from)).then(r.resolve, r.reject),
          ),
        );
      }
    }
    this.inFlight = false;
  }
}
