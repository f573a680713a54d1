import type * as OtelApi from '@opentelemetry/api';
import { INSTRUMENTATION, otel, type Api } from '../telemetry/otel';
import type { Seq } from './change-row';
import { ask, TIMEOUT_MS } from './db-request';
import type { ResolvedDb } from './db-target';

/**
 * Spans and metrics of followers (names in the README's "Operating" section), through the optional
 * `@opentelemetry/api` (without it nothing here runs):
 * - a `follow.batch` span (CONSUMER) around each batch of rows handled, with the follower's class and
 *   database, the number of rows, the first and last seq and the outcome;
 * - `dgen.follower.rows` (counter): rows handled, by class;
 * - `dgen.follower.lag` (observable gauge): rows the follower is behind its database's `update_seq`,
 *   asked of the database only when a metric reader collects.
 */

/** A running follower, as the lag gauge sees it. */
export interface FollowedFeed {
  readonly cls: string;
  readonly db: ResolvedDb;
  lastSeq(): Seq | undefined;
}

const live = new Set<FollowedFeed>();

/** Counts a follower for the lag gauge until `untrack()` is called. */
export function trackFollower(feed: FollowedFeed): () => void {
  if (!otel()) return () => undefined;
  live.add(feed);
  return () => void live.delete(feed);
}

/** The leading number of a seq: PouchDB's and CouchDB 1.x's are numbers, CouchDB 2+'s `N-opaque`. */
export function seqNumber(seq: Seq | undefined): number | undefined {
  if (typeof seq === 'number') return seq;
  if (typeof seq !== 'string') return undefined;
  const m = /^(\d+)/.exec(seq);
  return m ? Number(m[1]) : undefined;
}

interface Instruments {
  provider: OtelApi.MeterProvider;
  rows: OtelApi.Counter;
}
let instruments: Instruments | undefined;

function metricsOf(a: Api): Instruments {
  const provider = a.metrics.getMeterProvider();
  if (instruments?.provider === provider) return instruments;
  const meter = provider.getMeter(INSTRUMENTATION);
  const rows = meter.createCounter('dgen.follower.rows', { description: 'Change rows a follower handled' });
  const lag = meter.createObservableGauge('dgen.follower.lag', {
    description: "Rows a follower is behind its database's update_seq",
  });
  lag.addCallback(async (result) => {
    await Promise.all(
      [...live].map(async (feed) => {
        const info = (await ask(feed.db, '', TIMEOUT_MS)) as { update_seq?: Seq } | undefined | symbol;
        const head = typeof info === 'object' && info !== null ? seqNumber(info.update_seq) : undefined;
        const at = seqNumber(feed.lastSeq()) ?? 0;
        if (head !== undefined)
          result.observe(Math.max(0, head - at), {
            'dgen.follower.class': feed.cls,
            'dgen.follower.db': feed.db.url,
          });
      }),
    );
  });
  instruments = { provider, rows };
  return instruments;
}

/** An open `follow.batch` span; `end` records the outcome and the rows handled. */
export interface BatchSpan {
  end(rows: number, lastSeq: Seq | undefined, error?: unknown): void;
}

const NO_SPAN: BatchSpan = { end: () => undefined };

/** Opens the span of one batch of rows (a no-op without `@opentelemetry/api`). */
export function startBatch(cls: string, db: ResolvedDb, firstSeq: Seq | undefined): BatchSpan {
  const a = otel();
  if (!a) return NO_SPAN;
  const span = a.trace.getTracer(INSTRUMENTATION).startSpan('follow.batch', {
    kind: a.SpanKind.CONSUMER,
    attributes: { 'dgen.follower.class': cls, 'dgen.follower.db': db.url },
  });
  return {
    end(rows, lastSeq, error) {
      span.setAttribute('dgen.follower.rows', rows);
      if (firstSeq !== undefined) span.setAttribute('dgen.follower.first_seq', String(firstSeq));
      if (lastSeq !== undefined) span.setAttribute('dgen.follower.last_seq', String(lastSeq));
      span.setAttribute('dgen.outcome', error === undefined ? 'ok' : 'error');
      if (error !== undefined) span.setStatus({ code: a.SpanStatusCode.ERROR, message: String(error) });
      span.end();
      if (rows > 0) metricsOf(a).rows.add(rows, { 'dgen.follower.class': cls });
    },
  };
}

/** Creates the follower's instruments (so the lag gauge reports before the first batch ends). */
export function registerFollowerMetrics(): void {
  const a = otel();
  if (a) metricsOf(a);
}
