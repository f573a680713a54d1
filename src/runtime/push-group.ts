import type { Tenant, Transaction } from '../backend/types';

/** Most pushes one shared transaction takes (the rest go in the next). */
const MAX_MEMBERS = 128;

interface Member {
  body: (tx: Transaction) => unknown;
  deferFlush: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const groups = new WeakMap<Tenant, PushGroup>();

/**
 * Group commit of the pushes (casts and calls) of one process to one tenant, on backends whose commits
 * are serialized and do not share a flush by themselves: PostgreSQL, whose commit lock (schema.ts) is
 * held through each commit's WAL flush, so N concurrent pushes would cost N flushes one after another.
 * (SQLite and memory group concurrent transactions in the backend already, see LockingBackend.)
 *
 * One shared transaction is in flight at a time; pushes that arrive meanwhile wait for it and then go
 * together in the next, each body run in arrival order (their queue items keep that order). A lone
 * push goes at once, so it waits for nothing. Bodies are the runtime's push bodies: synchronous writes
 * that read nothing. If a shared transaction fails for good, nothing of it was committed and every
 * member runs again alone, so one bad message fails only its own push.
 */
export class PushGroup {
  private waiting: Member[] = [];
  private inFlight = false;

  private constructor(private readonly tenant: Tenant) {}

  /** Whether pushes to `tenant` should share transactions (see the class comment). */
  static applies(tenant: Tenant): boolean {
    return tenant.backend.kind === 'postgres';
  }

  /** Runs `body` in a transaction shared with the concurrent pushes of this process to `tenant`. */
  static run<T>(tenant: Tenant, body: (tx: Transaction) => T, deferFlush = false): Promise<T> {
    if (!PushGroup.applies(tenant)) return tenant.transact(body, { deferFlush });
    let group = groups.get(tenant);
    if (!group) groups.set(tenant, (group = new PushGroup(tenant)));
    return group.add(body, deferFlush);
  }

  private add<T>(body: (tx: Transaction) => T, deferFlush: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ body, deferFlush, resolve: resolve as (v: unknown) => void, reject });
      // A microtask later: pushes made in the same turn (castMany loops, Promise.all) go together.
      if (!this.inFlight) {
        this.inFlight = true;
        queueMicrotask(() => void this.next());
      }
    });
  }

  private async next(): Promise<void> {
    while (this.waiting.length > 0) {
      const members = this.waiting.splice(0, MAX_MEMBERS);
      if (members.length === 1) await this.alone(members[0]);
      else await this.together(members);
    }
    this.inFlight = false;
  }

  private async alone(m: Member): Promise<void> {
    await this.tenant.transact(m.body, { deferFlush: m.deferFlush }).then(m.resolve, m.reject);
  }

  private async together(members: Member[]): Promise<void> {
    let values: unknown[];
    try {
      values = await this.tenant.transact((tx) => members.map((m) => m.body(tx)), {
        deferFlush: members.every((m) => m.deferFlush),
      });
    } catch {
      // Which member failed (a message that cannot be stored, a group too large) is not known: each
      // runs again alone, concurrently (nothing of the shared attempt was committed).
      await Promise.all(members.map((m) => this.alone(m)));
      return;
    }
    members.forEach((m, i) => m.resolve(values[i]));
  }
}
