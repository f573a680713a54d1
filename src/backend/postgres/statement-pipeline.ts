import type { ReservedSql } from 'postgres';
import { postgresCounters } from './counters';
import { sqlState } from './postgres-errors';
import { execute, inline } from './sql-literal';
import type { TxHost } from './postgres-transaction';
import { WriteBuffer, type Stmt } from './write-buffer';
import { mergeWrites } from './write-merge';
import { writesTogether } from './no-delay-socket';

const noop = (): void => undefined;

/** Statements SQL `PREPARE` takes (not BEGIN, LOCK or COMMIT). */
const PREPARABLE = /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i;

type Row = Record<string, unknown>;

/**
 * The wire half of a PostgreSQL transaction: one reserved connection, statements pipelined in batches
 * (BEGIN with the first, LOCK when asked), prepared statements described before a lock, and the
 * connection's loss turned into a rejection of everything still waiting. PostgresTransaction adds the
 * contract (reads, buffered writes, commit) on top.
 */
export abstract class StatementPipeline {
  protected readonly buffer = new WriteBuffer();
  protected begun = false;
  /** BEGIN's reply, not yet looked at. */
  protected started: Array<Promise<Row[]>> = [];
  /** Whether a read was sent: the transaction's snapshot is then fixed. */
  protected snapshotTaken = false;
  /** Whether a statement of the body reached the server. */
  protected used = false;
  /** Send ROLLBACK before BEGIN: the connection was handed over inside a read-only transaction. */
  rollbackFirst = false;
  /** Batches sent whose replies have not all arrived. */
  private awaiting = 0;
  /** The client's connection object (caught at the first send) and the error it closed with, if it did. */
  protected connection: { id: number; onclose?: ((err: unknown) => void) | null } | undefined;
  protected lostWith: unknown;
  /** The first statement error of this transaction: what a later 25P02 ("transaction is aborted") means. */
  protected firstError: unknown;
  protected loseConnection!: (err: unknown) => void;
  /** Rejects when the connection closes: statements the client queued but never sent would wait for ever. */
  protected readonly lost = new Promise<never>((_, reject) => (this.loseConnection = reject));

  constructor(
    protected readonly conn: ReservedSql,
    protected readonly host: TxHost,
    private readonly readOnly: boolean,
    /** Extra statements after BEGIN (e.g. a longer idle_in_transaction_session_timeout). */
    private readonly beginExtra: readonly string[],
  ) {
    this.lost.catch(noop);
  }

  /** True once BEGIN was sent: the connection needs COMMIT or ROLLBACK before it is reused. */
  get open(): boolean {
    return this.begun;
  }

  /**
   * False once the connection closed under this transaction. The client then keeps it in its pool of
   * closed connections (to reconnect on demand), so it must not be released, and nothing more may be
   * sent on it: a reconnected session would run the rest of the transaction outside any transaction.
   */
  get reusable(): boolean {
    return this.lostWith === undefined;
  }

  /**
   * Gives the connection back to the pool, after a ROLLBACK (not awaited by the caller) if it is still
   * inside a transaction. Never a closed connection: releasing one would put it among the open ones,
   * and the client would then write to its missing socket.
   */
  release(rollback: boolean): Promise<void> | undefined {
    const detach = () => {
      if (this.connection) this.connection.onclose = null;
    };
    if (this.lostWith !== undefined) return void detach();
    if (!rollback) {
      detach();
      this.conn.release();
      return undefined;
    }
    const q = this.conn.unsafe(this.host.st.rollback).execute() as unknown as Promise<unknown>;
    return Promise.race([q, this.lost])
      .then(noop, noop)
      .finally(() => {
        detach();
        if (this.lostWith === undefined) this.conn.release();
      });
  }

  /** Whether the connection is known (its loss would be heard) and open: it can be handed over. */
  get handOverReady(): boolean {
    return this.connection !== undefined && this.lostWith === undefined;
  }

  /**
   * Leaves the connection, still inside this (read-only, finished) transaction, to another that rolls
   * it back before its BEGIN (see SpareConnection): false if it was lost, when it must be released.
   */
  handOver(): boolean {
    if (this.lostWith !== undefined) return false;
    if (this.connection) this.connection.onclose = null;
    return true;
  }

  /** BEGIN's reply (the first time), then what `send` sends. */
  protected batch(stmts: Stmt[], lock: boolean): { all: Array<Promise<Row[]>>; mine: Array<Promise<Row[]>> } {
    this.used = true;
    // Batches sent while another awaits its reply (concurrent reads) ride in the same round trip.
    if (this.awaiting++ === 0) postgresCounters.roundTrips++;
    const started = this.started;
    this.started = [];
    const sent = this.send(stmts, lock);
    void Promise.allSettled(sent.all).then(() => this.awaiting--);
    // replies (and so rejections) arrive in the order sent: the first failure is recorded before any 25P02
    for (const p of sent.all) p.catch((e: unknown) => void (this.firstError ??= e));
    return { all: [...started, ...sent.all], mine: sent.mine };
  }

  /** Sends the ready writes (all of them, after LOCK, when `lock`) and `stmt`; resolves with its rows. */
  protected async query(stmt: Stmt, lock: boolean): Promise<Row[]> {
    if (lock && this.snapshotTaken) await this.prepare([...this.buffer.ready, ...this.buffer.locked, stmt]);
    this.snapshotTaken = true;
    const { all } = this.batch([...mergeWrites(this.buffer.take(lock), this.host.st), stmt], lock);
    const settled = await Promise.allSettled(all);
    const failure = settled.find((s) => s.status === 'rejected');
    if (failure) {
      // statements pipelined after a failed one only say the transaction is aborted: report the cause
      const reason =
        sqlState(failure.reason) === '25P02' ? (this.firstError ?? failure.reason) : failure.reason;
      throw this.host.translate(reason);
    }
    return (settled[settled.length - 1] as PromiseFulfilledResult<Row[]>).value;
  }

  /**
   * Before a batch that starts with LOCK, in a transaction whose snapshot is taken: prepares, in one
   * round trip before the lock, the statements the connection has not prepared yet (see
   * PreparedStatements). Errors are left to the batch.
   */
  protected async prepare(stmts: Stmt[]): Promise<void> {
    const id = this.connection?.id;
    if (id === undefined || this.lostWith !== undefined) return;
    const missing = this.host.prepared.missing(id, stmts);
    if (missing.length === 0) return;
    this.used = true;
    postgresCounters.roundTrips++;
    const described = missing.map((s) => {
      const q = this.conn
        .unsafe(s.text, s.params as never[], { prepare: true })
        .describe() as unknown as Promise<unknown>;
      const settled = Promise.race([q, this.lost]);
      settled.catch(noop);
      return settled;
    });
    const results = await Promise.allSettled([...this.started, ...described]);
    this.started = [];
    if (results.every((r) => r.status === 'fulfilled')) this.host.prepared.prepared(id, missing);
    else {
      // BEGIN's failure (or a lost connection) is the batch's to report: leave a settled copy for it.
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      const again = Promise.reject(failed.reason);
      again.catch(noop);
      this.started = [again];
    }
  }

  /**
   * Commits a transaction that takes the commit lock now: `LOCK`, `stmts` and `COMMIT` go as ONE
   * simple-protocol Query message, which the server runs only once it has received all of it, and then
   * to its end without waiting for the client; the lock is released at COMMIT, before the reply is sent
   * (up to 8 KB of replies before COMMIT stay in the server's buffer; `flush` sends the id early). As
   * separate extended-protocol messages, a client or link stalled after LOCK arrived left the lock held
   * until idle_in_transaction_session_timeout, and every other process of the database waited. Rows
   * reach `onRow` as they arrive. Resolves (rejects) like `batch`'s promises: BEGIN's, then this one's.
   */
  protected commitLocked(stmts: Stmt[], onRow: (row: Row) => void): Array<Promise<unknown>> {
    const { all } = this.batch([], false); // BEGIN's reply (and BEGIN itself if not sent yet)
    this.buffer.lockTaken = true;
    // Each statement runs as EXECUTE of its text prepared on this connection (PREPAREd in this query
    // the first time): the server parses and plans it once per connection, which roughly halved the
    // server's CPU per commit of a queue push. After LOCK: a PREPARE takes the transaction's snapshot,
    // which must not be fixed before the lock is held. Unknown connection: texts inlined.
    const id = this.connection?.id;
    const prepares: string[] = [];
    const parts = stmts.map((s) => {
      if (id === undefined || !PREPARABLE.test(s.text)) return inline(s);
      const { name, fresh } = this.host.prepared.nameOf(id, s.text);
      if (fresh) prepares.push(`PREPARE ${name} AS ${s.text}`);
      return execute(name, s);
    });
    const text = [this.host.st.commitLock, ...prepares, ...parts, this.host.st.commit].join(';\n');
    let q: Promise<unknown>;
    if (this.lostWith !== undefined) q = Promise.reject(this.lostWith);
    else {
      const sent = this.conn.unsafe(text).simple().forEach(onRow) as unknown as Promise<unknown>;
      q = Promise.race([sent, this.lost]);
    }
    q.catch((e: unknown) => {
      this.firstError ??= e;
      if (id !== undefined) this.host.prepared.forget(id);
    });
    return [...all, q];
  }

  /** Sends BEGIN (first time), LOCK (when `lock`), then `stmts`. */
  protected send(stmts: Stmt[], lock: boolean): { all: Array<Promise<Row[]>>; mine: Array<Promise<Row[]>> } {
    const batch: Stmt[] = [];
    if (!this.begun) {
      this.begun = true;
      // ROLLBACK first on a connection handed over inside a read-only transaction (see
      // SpareConnection); then BEGIN and its extras. One simple-protocol query message for them all:
      // one reply (ReadyForQuery) to parse instead of one each.
      const begin = this.readOnly ? this.host.st.beginRead : this.host.st.begin;
      const texts = [...(this.rollbackFirst ? [this.host.st.rollback] : []), begin, ...this.beginExtra];
      batch.push({ text: texts.length === 1 ? begin : texts.join(';\n'), params: [] });
    }
    if (lock) {
      // Before any statement that takes a snapshot, when this is the first batch with one.
      this.buffer.lockTaken = true;
      batch.push({ text: this.host.st.commitLock, params: [] });
    }
    batch.push(...stmts);
    let all: Array<Promise<Row[]>>;
    if (this.lostWith !== undefined) {
      const lost = Promise.reject(this.lostWith);
      lost.catch(noop);
      all = batch.map(() => lost);
    } else
      all = writesTogether(() =>
        batch.map((s, i) => {
          // BEGIN (no parameters, so sent at once) tells us the connection object, to hear of its closing.
          // A statement without parameters would go as a simple-protocol query, parsed and planned
          // every time (the transaction id's, in every commit): prepared instead, unless it is BEGIN's
          // or COMMIT's (nothing to plan), or several statements in one text.
          const options =
            i === 0 && !this.connection
              ? { prepare: true, onexecute: this.onFirstExecute }
              : s.params.length === 0 && PREPARABLE.test(s.text)
                ? { prepare: true, simple: false }
                : { prepare: true };
          const q = this.conn
            .unsafe(s.text, s.params as never[], options as never)
            .execute() as unknown as Promise<Row[]>;
          const settled = Promise.race([q, this.lost]);
          settled.catch(noop); // every outcome is collected by allSettled
          return settled;
        }),
      );
    const id = this.connection?.id;
    if (id !== undefined && stmts.some((x) => x.params.length > 0))
      Promise.all(all).then(() => this.host.prepared.prepared(id, stmts), noop);
    return { all, mine: all.slice(all.length - stmts.length) };
  }

  /** The client calls this with its connection object as it sends our first statement. */
  private readonly onFirstExecute = (connection: {
    id: number;
    onclose?: ((err: unknown) => void) | null;
  }): boolean => {
    this.connection = connection;
    connection.onclose = (err) => {
      this.lostWith = err ?? Object.assign(new Error('connection closed'), { code: 'CONNECTION_CLOSED' });
      this.loseConnection(this.lostWith);
    };
    return true; // true: the connection may take more statements now (pipelining)
  };
}
