import { HandlerError } from '../errors';
import { thrownBy } from '../kernel/invoke';
import type { ConnectionPolicy, Next } from './connection-policy';
import { ContinuousParser, tooLong } from './continuous-parser';
import type { FeedConnection } from './feed-connection';
import type { FeedCursor } from './feed-cursor';
import { FeedError } from './feed-error';
import type { FeedItem } from './feed-item';
import type { FollowerCore } from './follower-core';
import { StopSignal } from './follower-core';
import { startBatch } from './follower-telemetry';
import type { ResolvedDb } from './db-target';
import { longpollItems } from './longpoll-answer';
import type { RowDispatch } from './row-dispatch';

const isNewlines = (buf: Buffer): boolean => {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0x0a && buf[i] !== 0x0d) return false;
  return buf.length > 0;
};

/** What the reader needs from the follower's message loop. */
export interface FeedReaderLoop {
  /** The next chunk of the connection, serving messages while waiting for it. */
  read(conn: FeedConnection): Promise<Buffer | null>;
  /** Serves the messages queued now (between two rows); undefined when there are none. */
  serveQueued(): Promise<void> | undefined;
}

/**
 * Reads one connection's answer — continuous lines or a longpoll body — and hands each batch of rows
 * to `@OnChange`, checkpointing after each batch. Returns when and why to connect again.
 */
export class FeedReader<S> {
  /** Rows handed to `@OnChange` so far (for the batch spans). */
  private rowsHandled = 0;

  constructor(
    private readonly core: FollowerCore<S>,
    private readonly cursor: FeedCursor,
    private readonly rows: RowDispatch<S>,
    private readonly policy: ConnectionPolicy<S>,
    private readonly loop: FeedReaderLoop,
    private readonly maxLineBytes: number,
    private readonly db: ResolvedDb,
  ) {}

  /** Reads a continuous feed line by line, handling each batch of rows as it arrives. */
  async continuous(conn: FeedConnection): Promise<Next> {
    const parser = new ContinuousParser(this.maxLineBytes);
    let ended = false;
    for (;;) {
      const chunk = await this.loop.read(conn);
      let items: FeedItem[];
      try {
        items = chunk === null ? parser.end() : parser.push(chunk);
      } catch (err) {
        await this.cursor.flush(this.core);
        return this.policy.failure(err);
      }
      if (items.length > 0) {
        const next = await this.handleItems(items);
        if (next) return next;
        if (!ended) ended = items.some((i) => i.kind === 'last_seq');
      }
      if (chunk === null)
        return ended ? { reason: 'end', waitMs: 0 } : { reason: 'closed', waitMs: this.policy.jitter() };
    }
  }

  /**
   * Reads a longpoll answer whole — one JSON body; the server may put heartbeat newlines inside it —
   * then handles its rows. Memory holds one answer, at most `maxLineBytes` of it.
   */
  async longpoll(conn: FeedConnection): Promise<Next> {
    const parts: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = await this.loop.read(conn);
      if (chunk === null) break;
      if (isNewlines(chunk)) this.core.life.emit({ type: 'heartbeat' });
      size += chunk.length;
      if (size > this.maxLineBytes) return this.policy.failure(tooLong(this.maxLineBytes, 'an answer'));
      parts.push(chunk);
    }
    const items = longpollItems(Buffer.concat(parts));
    if (items instanceof FeedError) return this.policy.failure(items);
    return (await this.handleItems(items)) ?? { reason: 'end', waitMs: 0 };
  }

  /** Handles one batch inside its `follow.batch` span (when telemetry is on). */
  private async handleItems(items: readonly FeedItem[]): Promise<Next | undefined> {
    if (!items.some((i) => i.kind === 'row')) return this.handleBatch(items);
    const span = startBatch(this.core.def.name, this.db, this.cursor.since);
    const before = this.rowsHandled;
    try {
      const next = await this.handleBatch(items);
      span.end(this.rowsHandled - before, this.cursor.since);
      return next;
    } catch (err) {
      span.end(this.rowsHandled - before, this.cursor.since, err instanceof StopSignal ? undefined : err);
      throw err;
    }
  }

  /** Handles one batch; checkpoints after it. Returns a Next when the connection must end early. */
  private async handleBatch(items: readonly FeedItem[]): Promise<Next | undefined> {
    for (const item of items) {
      const serving = this.loop.serveQueued();
      if (serving) await serving;
      switch (item.kind) {
        case 'row': {
          const pending = this.row(item.row);
          const next = pending && (await pending); // no await per row when handlers are synchronous
          if (next) {
            await this.cursor.flush(this.core);
            return next;
          }
          break;
        }
        case 'heartbeat':
          this.core.life.emit({ type: 'heartbeat' });
          break;
        case 'last_seq':
          this.cursor.advance(item.seq);
          break;
        case 'error':
          await this.cursor.flush(this.core);
          return this.policy.failure(
            new FeedError(
              'error-row',
              `the feed reported ${item.error}${item.reason ? `: ${item.reason}` : ''}`,
              {
                error: item.error,
                reason: item.reason,
              },
            ),
          );
        case 'invalid':
          this.core.life.emit({ type: 'feed-error', error: item.error });
          break;
      }
    }
    await this.cursor.flush(this.core);
    return undefined;
  }

  /** One row; a throwing `@OnChange` goes to `@OnError` (which decides the Next). */
  private row(row: Parameters<RowDispatch<S>['dispatch']>[0]): undefined | Promise<Next | undefined> {
    this.rowsHandled++;
    try {
      const pending = this.rows.dispatch(row);
      if (pending)
        return pending.then(
          () => undefined,
          (err: unknown) => this.rowFailed(err),
        );
    } catch (err) {
      return this.rowFailed(err);
    }
    return undefined;
  }

  private rowFailed(err: unknown): Promise<Next> {
    if (err instanceof StopSignal || !(err instanceof HandlerError)) return Promise.reject(err);
    return this.policy.failure(thrownBy(err), err);
  }
}
