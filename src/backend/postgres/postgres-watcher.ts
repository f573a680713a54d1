import { randomBytes } from 'node:crypto';
import postgres, { type Sql } from 'postgres';
import type { WatchHub, WatchSync } from '../common/watch-hub';
import { postgresCounters } from './counters';
import { keyHash } from './key-hash';

const noop = (): void => undefined;
/** Most tokens kept waiting to be heard (or heard before their watches were armed); past it, forgotten. */
const MAX_TOKENS = 10_000;

/**
 * Makes watches fire for commits made through other connections, in this process or any other.
 *
 * Every commit that writes sends `NOTIFY dgen_<schema>, '<payload>'` inside its transaction (see
 * TouchedKeys for the payload), so a notification exists exactly when the commit does and is delivered
 * only after it is visible: no polling, and no wake-up lost or early. This watcher LISTENs on a
 * connection of its own (opened with the first watch). For each notification it fires the watches
 * whose key's value, given in the payload, differs from their baseline — once it has heard the commit
 * that armed them (see WatchSync: notifications arrive in commit order) — and re-reads the other
 * watched keys the payload names. When that connection is lost it listens again and then re-reads
 * every watched key, since notifications sent meanwhile are gone.
 *
 * NOTIFY was chosen over polling a change counter because it costs nothing while nothing changes and
 * reaches other hosts within one network hop; its price is that commits which NOTIFY take a
 * database-wide lock briefly at commit (PostgreSQL orders notifications), which the commit lock
 * (schema.ts) makes moot for queue traffic.
 */
export class PostgresWatcher {
  private listener: Sql | undefined;
  private listening = false;
  private stopped = false;
  private received = 0;
  private wanted: Set<string> | '*' | undefined;
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private running = false;
  private relistenTimer: NodeJS.Timeout | undefined;
  private relistenDelay = 50;
  /** The position (`received`) of the last notification naming each key hash (or hex key, with its value). */
  private readonly lastByHash = new Map<string, number>();
  /** By hex key: the positions of the last two notifications that gave its value. */
  private readonly lastByHex = new Map<string, [number, number]>();
  /** This process's tokens (see `watchToken`): those not heard yet, and those heard before being armed. */
  private readonly tokenPrefix = `${randomBytes(4).toString('hex')}.`;
  private tokens = 0;
  private readonly awaiting = new Map<string, WatchSync>();
  /** Tokens heard before their watches were armed, with the position of their notification. */
  private readonly early = new Map<string, number>();
  /** The position of the last '*' (every key), LISTEN, or forgetting of `lastByHash`. */
  private allSince = 0;

  constructor(
    private readonly url: string,
    private readonly options: postgres.Options<Record<string, postgres.PostgresType>>,
    private readonly channel: string,
    private readonly hub: WatchHub,
    private readonly readMany: (keys: Buffer[]) => Promise<Map<string, Buffer>>,
  ) {}

  /** Notifications received so far (and LISTENs established): see PostgresTransaction.watch. */
  get notifications(): number {
    return this.received;
  }

  /**
   * Whether a notification handled after position `since` (a value of `notifications`) may concern
   * `key`: a transaction that read `key` in a snapshot taken after `since` may have missed that commit.
   * `own`: the position of that transaction's own notification, if heard already (it gave `key` the
   * value the transaction committed, so it alone does not count).
   */
  changedSince(key: Buffer, since: number, own?: number): boolean {
    if (this.allSince > since || (this.lastByHash.get(keyHash(key)) ?? 0) > since) return true;
    const [before, last] = (this.lastByHex.size > 0 && this.lastByHex.get(key.toString('hex'))) || [0, 0];
    // The notification of the arming commit itself (at `own`) tells nothing its baseline does not.
    return last === own ? before > since : last > since;
  }

  /** A new token, for the NOTIFY of a commit that arms watches. */
  watchToken(): string {
    return this.tokenPrefix + (++this.tokens).toString(36);
  }

  /** The sync of the watches armed by the commit whose NOTIFY carried `token`. */
  syncOf(token: string): WatchSync & { heardAt?: number } {
    const heardAt = this.early.get(token);
    if (heardAt !== undefined) {
      this.early.delete(token);
      return { synced: true, heardAt };
    }
    const sync = { synced: false };
    if (this.listening) {
      if (this.awaiting.size >= MAX_TOKENS) this.awaiting.clear(); // (their watches read their keys)
      this.awaiting.set(token, sync);
    }
    return sync;
  }

  /** Starts listening if not yet (called when a commit arms a watch). */
  start(): void {
    if (this.listener || this.stopped) return;
    this.listener = postgres(this.url, {
      ...this.options,
      max: 1,
      // No array-type query at connect: stopping while it ran would reject it where nobody listens.
      fetch_types: false,
      idle_timeout: undefined,
      max_lifetime: null,
      onnotify: (_channel: string, payload: string) => this.notified(payload),
      onclose: () => this.lost(),
    } as postgres.Options<Record<string, postgres.PostgresType>>);
    void this.listen();
  }

  /** Re-reads these keys soon (their watches may have missed a notification). */
  recheck(keys: Buffer[]): void {
    if (this.wanted !== '*') {
      const wanted: Set<string> = this.wanted ?? (this.wanted = new Set());
      for (const k of keys) wanted.add(keyHash(k));
    }
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.relistenTimer);
    if (this.scheduled) {
      clearTimeout(this.scheduled as NodeJS.Timeout);
      clearImmediate(this.scheduled as NodeJS.Immediate);
    }
    this.scheduled = undefined;
    await this.listener?.end({ timeout: 0 }).catch(noop);
  }

  private async listen(): Promise<void> {
    if (this.stopped || !this.listener) return;
    try {
      await this.listener.unsafe(`LISTEN "${this.channel}"`);
      this.listening = true;
      this.relistenDelay = 50;
      this.received++;
      this.notified('*'); // whatever happened before (or while the connection was down)
    } catch {
      this.lost();
    }
  }

  private lost(): void {
    this.listening = false;
    // Notifications may be lost with the connection: their tokens' watches keep reading their keys.
    this.awaiting.clear();
    this.early.clear();
    if (this.stopped || this.relistenTimer) return;
    this.relistenTimer = setTimeout(() => {
      this.relistenTimer = undefined;
      void this.listen();
    }, this.relistenDelay);
    this.relistenTimer.unref();
    this.relistenDelay = Math.min(1000, this.relistenDelay * 2);
  }

  private notified(payload: string): void {
    this.received++;
    let all = false;
    const hashes: string[] = [];
    /** Hex key → its value in hex (undefined: cleared), decoded only for watched keys. */
    const valued: Array<[string, string | undefined]> = [];
    for (const e of payload.split(',')) {
      if (e === '*') all = true;
      else if (e.startsWith('@')) this.heard(e.slice(1));
      else if (e.endsWith('-')) valued.push([e.slice(0, -1), undefined]);
      else {
        const at = e.indexOf('=');
        if (at < 0) hashes.push(e);
        else valued.push([e.slice(0, at), e.slice(at + 1)]);
      }
    }
    if (all || this.lastByHash.size + this.lastByHex.size > 100_000) {
      this.allSince = this.received;
      this.lastByHash.clear();
      this.lastByHex.clear();
    }
    for (const h of hashes) this.lastByHash.set(h, this.received);
    for (const [hex] of valued) this.lastByHex.set(hex, [this.lastByHex.get(hex)?.[1] ?? 0, this.received]);
    if (this.hub.size === 0) return;
    if (all) this.wanted = '*';
    const want = (hash: string) => {
      if (this.wanted === '*') return;
      const wanted: Set<string> = this.wanted ?? (this.wanted = new Set());
      wanted.add(hash);
    };
    // Some values not given (see TouchedKeys): read every key, so that its watches fire together. So
    // too while a read is in flight: these keys join the next, and watches woken by commits close
    // together fire together (32 concurrent callers then keep sharing their pushes and reads).
    const readAll = all || hashes.length > 0 || this.running;
    for (const [hex, value] of valued) {
      if (!this.hub.watching(hex)) continue; // (a read captures watched keys only)
      const v = value === undefined ? undefined : Buffer.from(value, 'hex');
      if (readAll || this.hub.known(hex, v)) want(keyHash(Buffer.from(hex, 'hex'))); // (or not synced)
    }
    for (const h of hashes) want(h);
    if (this.wanted) this.schedule(0);
  }

  /** A token heard: the watches its commit armed (or will arm) are synced. */
  private heard(token: string): void {
    if (!token.startsWith(this.tokenPrefix)) return; // another process's
    const sync = this.awaiting.get(token);
    if (sync) {
      sync.synced = true;
      this.awaiting.delete(token);
      return;
    }
    if (this.early.size >= MAX_TOKENS) this.early.clear();
    this.early.set(token, this.received);
  }

  private schedule(ms: number): void {
    if (this.scheduled || this.running || this.stopped) return;
    const run = () => {
      this.scheduled = undefined;
      void this.run();
    };
    this.scheduled = ms === 0 ? setImmediate(run) : setTimeout(run, ms).unref();
  }

  /** One pass: read the wanted watched keys and fire the watches whose value changed. */
  private async run(): Promise<void> {
    const wanted = this.wanted;
    this.wanted = undefined;
    if (!wanted || this.hub.size === 0 || this.stopped) return;
    this.running = true;
    let retryMs = 0;
    try {
      const pass = this.hub.capture(wanted === '*' ? undefined : (key) => wanted.has(keyHash(key)));
      if (pass.keys.length > 0) {
        postgresCounters.watcherReads++;
        pass.apply(await this.readMany(pass.keys));
      }
    } catch {
      // The server is unreachable: look at everything again shortly.
      this.wanted = '*';
      retryMs = 100;
    } finally {
      this.running = false;
    }
    if (this.wanted) this.schedule(retryMs);
  }

  /** For tests: whether the LISTEN is in place. */
  get isListening(): boolean {
    return this.listening;
  }
}
