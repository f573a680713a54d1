import postgres, { type ReservedSql, type Sql } from 'postgres';
import { BackendError, isRetryable } from '../../errors';
import { countConflict } from '../../telemetry/backend-metrics';
import { PrefixTenant } from '../common/prefix-tenant';
import { checkTenantPath, subtreeRange, tenantPrefix } from '../common/tenant-path';
import { transactionTimedOut, withinTimeLimit } from '../common/transaction-deadline';
import { WatchHub } from '../common/watch-hub';
import type { Backend, ReadTransaction, Tenant, TransactOptions, Transaction } from '../types';
import { LIMITS } from '../types';
import { guardTypeFetch } from './client-guard';
import { postgresCounters } from './counters';
import { CommitOutcomeUnknown, isConnectionLoss, translatePgError } from './postgres-errors';
import {
  parsePostgresSpec,
  scrub,
  type PostgresBackendOptions,
  type PostgresSettings,
} from './postgres-options';
import { PostgresTransaction, type TxHost } from './postgres-transaction';
import { PostgresWatcher } from './postgres-watcher';
import { PreparedStatements } from './prepared-statements';
import { channelOf, ensureSchema, SCHEMA_VERSION, statements, type Statements } from './schema';
import { resolveUnknownCommit } from './unknown-commit';
import { OpenSockets, type connectNoDelay } from './no-delay-socket';
import { SpareConnection } from './spare-connection';

type Body<T> = (tx: Transaction) => T | Promise<T>;
/** The client's options, with its `socket` option (not in its type declarations: see connectNoDelay). */
type ClientOptions = postgres.Options<Record<string, postgres.PostgresType>> & {
  socket?: typeof connectNoDelay;
};

const noop = (): void => undefined;
/** A lost connection, raw or as the BACKEND_UNAVAILABLE a read turned it into. */
const lostConnection = (err: unknown): boolean =>
  isConnectionLoss(err) ||
  (err instanceof BackendError && err.code === 'BACKEND_UNAVAILABLE' && isConnectionLoss(err.cause));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a transaction waits for a pool connection before asking again (see `reserve`). */
const RESERVE_WAIT_MS = 2000;
/** A session idle inside a transaction longer than this is ended by the server (a client that vanished). */
const IDLE_IN_TRANSACTION_MS = 2 * LIMITS.transactionMs;

/**
 * PostgreSQL, for several app processes on several hosts sharing one database. One table
 * `<schema>.kv (key bytea PRIMARY KEY, value bytea)` holds every tenant's keys (a tenant is a key
 * prefix); transactions are PostgreSQL's SERIALIZABLE ones (see PostgresTransaction), retried on
 * serialization failures and on lost connections; watches work across processes through
 * LISTEN/NOTIFY (see PostgresWatcher).
 */
export class PostgresBackend implements Backend {
  readonly kind = 'postgres' as const;
  readonly schema: string;
  private readonly hub = new WatchHub();
  private readonly watcher: PostgresWatcher;
  private readonly host: TxHost;
  private readonly ending = new Set<Promise<void>>();
  /** Transactions and reads under way: `close` lets them end before it ends the pool. */
  private readonly active = new Set<Promise<unknown>>();
  private readonly prepared: PreparedStatements;
  private readonly spare = new SpareConnection((conn, tx) => this.release(conn, tx, false));
  private closed = false;

  private constructor(
    private readonly settings: PostgresSettings,
    private readonly sql: Sql,
    clientOptions: ClientOptions,
    prepared: PreparedStatements,
    /** Every socket its clients opened (see close). */
    private readonly sockets: OpenSockets,
  ) {
    this.prepared = prepared;
    this.schema = settings.schema;
    const st = statements(settings.schema);
    this.watcher = new PostgresWatcher(
      settings.url,
      clientOptions,
      channelOf(settings.schema),
      this.hub,
      (keys) => this.readMany(st, keys),
    );
    this.host = {
      st,
      hub: this.hub,
      channel: channelOf(settings.schema),
      notifications: () => this.watcher.notifications,
      changedSince: (key, since, own) => this.watcher.changedSince(key, since, own),
      recheck: (keys) => this.watcher.recheck(keys),
      watchToken: () => this.watcher.watchToken(),
      syncOf: (token) => this.watcher.syncOf(token),
      translate: (err) => this.translate(err),
      prepared: this.prepared,
    };
  }

  /**
   * Connects to the server at `url` (`postgres://user:password@host:port/database` or
   * `postgresql://…`) and creates the schema if needed. BAD_BACKEND_SPEC for a malformed URL,
   * BACKEND_UNAVAILABLE (with the reason, never the password) when the server cannot be reached.
   */
  static async open(url: string, options: PostgresBackendOptions = {}): Promise<PostgresBackend> {
    const settings = parsePostgresSpec(url, options);
    const prepared = new PreparedStatements();
    const sockets = new OpenSockets();
    const clientOptions: ClientOptions = {
      max: settings.poolSize,
      onclose: (id: number) => prepared.closed(id),
      connect_timeout: settings.connectTimeoutMs / 1000,
      idle_timeout: 60,
      // Seconds before reconnecting after a failed attempt: the client's default grows to 20 s, too
      // slow to be back within a few seconds of a restarted server.
      backoff: (retries: number) => Math.min(0.5, 0.05 * 2 ** retries) * (0.5 + Math.random() / 2),
      // Left on: besides fetching array types, its first query is what lets reserve() get a freshly
      // (re)connected connection (postgres 3.4.9: with fetch_types off, reserve() on a pool with no
      // open connection never resolves).
      fetch_types: true,
      prepare: true,
      onnotice: noop,
      socket: sockets.connect,
      connection: {
        // Names the schema, so that `pg_stat_activity` tells which deployment a session serves.
        application_name: `dgen-ts:${settings.schema}`.slice(0, 63),
        statement_timeout: settings.statementTimeoutMs,
        idle_in_transaction_session_timeout: Math.max(IDLE_IN_TRANSACTION_MS, settings.statementTimeoutMs),
      },
    };
    const sql = postgres(settings.url, clientOptions);
    guardTypeFetch(sql);
    try {
      const version = await ensureSchema(sql, settings.schema);
      if (version > SCHEMA_VERSION)
        throw new BackendError(
          'BACKEND_UNAVAILABLE',
          `schema "${settings.schema}" has layout version ${version}, newer than this dgen-ts understands (${SCHEMA_VERSION}); upgrade dgen-ts`,
        );
    } catch (err) {
      await sql.end({ timeout: 0 }).catch(noop);
      sockets.destroyAll();
      const e = translatePgError(err, (s) => scrub(s, settings));
      if (
        e instanceof BackendError &&
        e.code === 'BACKEND_UNAVAILABLE' &&
        !e.message.includes(settings.safeUrl)
      )
        throw new BackendError('BACKEND_UNAVAILABLE', `cannot open ${settings.safeUrl}: ${e.message}`, {
          cause: err,
        });
      throw e;
    }
    return new PostgresBackend(settings, sql, clientOptions, prepared, sockets);
  }

  async openTenant(path: readonly string[]): Promise<Tenant> {
    this.open();
    const checked = checkTenantPath(path);
    return new PrefixTenant(this, checked, tenantPrefix(checked));
  }

  async removeTenant(path: readonly string[]): Promise<void> {
    const { start, end } = subtreeRange(checkTenantPath(path));
    await this.transactAt(Buffer.alloc(0), (tx) => tx.clearRange(start, end), {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.spare.flush();
    this.hub.cancelAll();
    await this.watcher.stop();
    // Those under way end first (at their next step, or committing what they sent), bounded by the
    // transaction limit: a pool connection given back after `end` began would keep `end` waiting for
    // its whole timeout (postgres 3.4.9 ends a reserved connection only at a reply that comes after).
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise((r) => (timer = setTimeout(r, LIMITS.transactionMs)));
    await Promise.race([Promise.allSettled([...this.active]), limit]).finally(() => clearTimeout(timer));
    await Promise.all([...this.ending]);
    await this.sql.end({ timeout: 5 }).catch(noop);
    this.sockets.destroyAll(); // any the clients left open (see OpenSockets)
  }

  /** Notes `run` as under way until it settles (see close). */
  private tracked<T>(run: Promise<T>): Promise<T> {
    this.active.add(run);
    const done = () => void this.active.delete(run);
    run.then(done, done);
    return run;
  }

  transactAt<T>(prefix: Buffer, fn: Body<T>, options: TransactOptions): Promise<T> {
    return this.tracked(this.transaction(prefix, fn, options));
  }

  readAt<T>(prefix: Buffer, fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    return this.tracked(this.read(prefix, fn));
  }

  private async transaction<T>(prefix: Buffer, fn: Body<T>, options: TransactOptions): Promise<T> {
    const maxRetries = options.maxRetries ?? 100;
    const timeoutMs = options.timeoutMs ?? LIMITS.transactionMs;
    const extra =
      timeoutMs + 1000 > IDLE_IN_TRANSACTION_MS
        ? [`SET LOCAL idle_in_transaction_session_timeout = ${Math.ceil(timeoutMs + 1000)}`]
        : [];
    if (options.deferFlush === true) extra.push(this.host.st.asyncCommit);
    // A function answers at the commit, which then carries the setting (PostgresTransaction.commit).
    const deferAtCommit = typeof options.deferFlush === 'function' ? options.deferFlush : undefined;
    let unavailableSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      this.open();
      let conn: ReservedSql | undefined;
      let tx: PostgresTransaction | undefined;
      let result!: T;
      let committing = false;
      try {
        const spare = this.spare.take();
        conn = spare ?? (await this.reserve());
        this.open();
        tx = new PostgresTransaction(conn, this.host, prefix, false, extra);
        tx.rollbackFirst = spare !== undefined;
        tx.deferAtCommit = deferAtCommit;
        tx.start();
        const body = tx;
        const started = performance.now();
        // The limit covers the body; a commit once sent is never abandoned (its outcome would be unknown).
        result = await withinTimeLimit(
          (async () => {
            const value = await fn(body);
            if (performance.now() - started > timeoutMs) throw transactionTimedOut(timeoutMs);
            return value;
          })(),
          Math.max(0, started + timeoutMs - performance.now()),
          () => body.finish(),
          timeoutMs,
        );
        committing = true;
        const ended = await tx.commit();
        postgresCounters.commits++;
        this.release(conn, tx, ended);
        await this.committed(tx);
        return result;
      } catch (err) {
        tx?.finish();
        if (conn) this.release(conn, tx, false);
        if (err instanceof CommitOutcomeUnknown) {
          const outcome = await this.outcomeOf(err);
          if (outcome === 'committed') {
            postgresCounters.commits++;
            await this.committed(tx!);
            return result;
          }
          // 'aborted': nothing was applied, run it again. 'unknown': as FoundationDB's
          // commit_unknown_result, run it again too (see the README: a non-idempotent body may then
          // apply twice).
        }
        tx?.aborted(err);
        if (this.closed) throw new BackendError('BACKEND_CLOSED', 'this postgres backend has been closed');
        const lost = err instanceof CommitOutcomeUnknown || lostConnection(err);
        if (lost) {
          unavailableSince ??= Date.now();
          if (Date.now() - unavailableSince > this.settings.connectTimeoutMs)
            throw this.unavailable(err instanceof CommitOutcomeUnknown ? err.cause : err);
          await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
          attempt--; // a lost connection does not count as a conflict
          postgresCounters.connectionRetries++;
          continue;
        }
        // The body's own errors (and those of its reads, translated already) are rethrown as they are.
        const e = committing || conn === undefined ? this.translate(err) : err;
        if (isRetryable(e)) countConflict('postgres', 'TRANSACTION_CONFLICT'); // ops hook: telemetry
        if (!isRetryable(e) || attempt >= maxRetries) throw e;
        postgresCounters.conflictRetries++;
        unavailableSince = undefined;
      }
      await sleep(Math.min(100, 2 ** attempt) * Math.random());
    }
  }

  private async read<T>(prefix: Buffer, fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    let unavailableSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      this.open();
      let conn: ReservedSql | undefined;
      let tx: PostgresTransaction | undefined;
      try {
        const spare = this.spare.take();
        conn = spare ?? (await this.reserve());
        this.open();
        tx = new PostgresTransaction(conn, this.host, prefix, true);
        tx.rollbackFirst = spare !== undefined;
        tx.start();
        const t = tx;
        const result = await fn({ get: (k) => t.get(k), getRange: (s, e, o) => t.getRange(s, e, o) });
        tx.finish();
        // A read-only transaction: ROLLBACK without waiting, by the next transaction if it comes soon.
        if (this.closed) this.release(conn, tx, false);
        else this.spare.park(conn, tx);
        return result;
      } catch (err) {
        tx?.finish();
        if (conn) this.release(conn, tx, false);
        if (this.closed) throw new BackendError('BACKEND_CLOSED', 'this postgres backend has been closed');
        const cause = (err as { cause?: unknown }).cause ?? err;
        if (!lostConnection(err)) throw conn === undefined ? this.translate(err) : err;
        unavailableSince ??= Date.now();
        if (Date.now() - unavailableSince > this.settings.connectTimeoutMs) throw this.unavailable(cause);
        await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
      }
    }
  }

  /** After a commit: arm the transaction's watches (listening from now on) and resolve its versionstamp. */
  private async committed(tx: PostgresTransaction): Promise<void> {
    if (this.closed) {
      tx.aborted(new BackendError('BACKEND_CLOSED', 'this postgres backend has been closed'));
      return;
    }
    tx.committed();
    if (this.hub.size > 0) this.watcher.start();
  }

  /**
   * A pool connection for one transaction. postgres 3.4.9 can lose a reserve() request queued while
   * its connections are being reset and re-established (it then never resolves; seen in the fault
   * test): past RESERVE_WAIT_MS we stop waiting and try again (a connection the lost request gets
   * later is given straight back), as after a lost connection.
   */
  private async reserve(): Promise<ReservedSql> {
    const pending = this.sql.reserve();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error(`no pool connection within ${RESERVE_WAIT_MS} ms`), {
              code: 'CONNECTION_WAIT',
            }),
          ),
        RESERVE_WAIT_MS,
      );
    });
    try {
      return await Promise.race([pending, waited]);
    } catch (err) {
      pending.then((c) => c.release(), noop);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Gives the connection back; one left inside a transaction is rolled back first (not awaited). */
  private release(conn: ReservedSql, tx: PostgresTransaction | undefined, ended: boolean): void {
    if (!tx) {
      conn.release();
      return;
    }
    const done = tx.release(!ended && tx.open);
    if (!done) return;
    const tracked = done.finally(() => this.ending.delete(tracked));
    this.ending.add(tracked);
  }

  private async outcomeOf(err: CommitOutcomeUnknown): Promise<'committed' | 'aborted' | 'unknown'> {
    if (err.xid === undefined || this.closed) return 'unknown';
    return resolveUnknownCommit(this.sql, this.host.st, err.xid, err.boot, this.settings.connectTimeoutMs);
  }

  /** The current values of `keys` (hex key → value; missing keys absent), for the watcher. */
  private async readMany(st: Statements, keys: Buffer[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const rows = await this.sql.unsafe<Array<{ key: Buffer; value: Buffer }>>(
      `SELECT key, value FROM ${st.kv} WHERE key IN (SELECT decode(unnest(string_to_array($1, ',')), 'hex'))`,
      [keys.map((k) => k.toString('hex')).join(',')],
      { prepare: true },
    );
    for (const r of rows) out.set(r.key.toString('hex'), r.value);
    return out;
  }

  private translate(err: unknown): unknown {
    return translatePgError(err, (s) => scrub(s, this.settings));
  }

  private unavailable(cause: unknown): BackendError {
    const reason = scrub(cause instanceof Error ? cause.message : String(cause), this.settings);
    return new BackendError(
      'BACKEND_UNAVAILABLE',
      `PostgreSQL at ${this.settings.safeUrl} unreachable for more than ${this.settings.connectTimeoutMs} ms: ${reason}`,
      { cause },
    );
  }

  private open(): void {
    if (this.closed) throw new BackendError('BACKEND_CLOSED', 'this postgres backend has been closed');
  }
}
