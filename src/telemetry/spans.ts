import type * as OtelApi from '@opentelemetry/api';
import { DgenError } from '../errors';
import { returnKind } from '../returns';
import { DurableQueue } from '../runtime/durable-queue';
import type { ServerContext } from '../runtime/server-context';
import { decodeWire, type QueueItem } from '../runtime/wire';
import { meters, otel, setGaugeSource, tracerOf, type Api } from './otel';
import { outgoingTrace, type TraceCarrier } from './queue-extras';

/**
 * Spans and metrics of the runtime (names in the README's "Operating" section):
 * - `cast` / `call` (PRODUCER) around a ref's cast/castMany/call; its context goes into the queue
 *   item (`trace.traceparent`, W3C format, written by hand so no propagator needs registering);
 * - `handle` (CONSUMER) for each message a consumer handled, the child of the span that queued it,
 *   so one trace runs from the sender through the queue to the process that handled it.
 */

type Who = Pick<ServerContext, 'def' | 'tuid'>;

/** A message's tag as dispatch sees it: the string itself, or its `type`. */
export function messageTag(msg: unknown): string {
  if (typeof msg === 'string') return msg;
  const t = (msg as { type?: unknown } | null)?.type;
  return typeof t === 'string' ? t : typeof msg;
}

/** Per server: its class and tuid as attributes, and the metric attributes per message kind (made once). */
interface Names {
  cls: string;
  tuid: string;
  metric: { cast: OtelApi.Attributes; call: OtelApi.Attributes; info: OtelApi.Attributes };
}
const names = new WeakMap<object, Names>();
function namesOf(who: Who): Names {
  let n = names.get(who);
  if (!n) {
    const cls = who.def.ctor.name;
    n = {
      cls,
      tuid: JSON.stringify(who.tuid),
      metric: {
        cast: { 'dgen.server.class': cls, 'dgen.message.kind': 'cast' },
        call: { 'dgen.server.class': cls, 'dgen.message.kind': 'call' },
        info: { 'dgen.server.class': cls, 'dgen.message.kind': 'info' },
      },
    };
    names.set(who, n);
  }
  return n;
}

const errorCode = (e: unknown): string => (e instanceof DgenError ? e.code : 'ERROR');

function traceparent(sc: OtelApi.SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

/** The context of the last traceparent read: the items of one castMany share it. */
let lastParent: { a: Api; traceparent: string; ctx: OtelApi.Context } | undefined;

function parentContext(a: Api, carrier: TraceCarrier | undefined): OtelApi.Context {
  const tp = carrier?.traceparent;
  if (tp === undefined) return a.ROOT_CONTEXT;
  if (lastParent?.traceparent === tp && lastParent.a === a) return lastParent.ctx;
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(tp);
  if (!m) return a.ROOT_CONTEXT;
  const ctx = a.trace.setSpanContext(a.ROOT_CONTEXT, {
    traceId: m[1],
    spanId: m[2],
    traceFlags: parseInt(m[3], 16),
    isRemote: true,
  });
  lastParent = { a, traceparent: tp, ctx };
  return ctx;
}

/** Runs a ref's `cast`/`call` inside a PRODUCER span whose context the queued items carry. */
export function traceSend<T>(
  name: 'cast' | 'call',
  who: Who,
  msgs: readonly unknown[],
  fn: () => Promise<T>,
): Promise<T> {
  const a = otel();
  const tracer = a && tracerOf(a);
  return tracer ? traced(a!, tracer, name, who, msgs, fn) : fn(); // no wrapper at all without an SDK
}

async function traced<T>(
  a: Api,
  tracer: OtelApi.Tracer,
  name: 'cast' | 'call',
  who: Who,
  msgs: readonly unknown[],
  fn: () => Promise<T>,
): Promise<T> {
  const n = namesOf(who);
  const span = tracer.startSpan(name, {
    kind: a.SpanKind.PRODUCER,
    attributes: {
      'dgen.server.class': n.cls,
      'dgen.tuid': n.tuid,
      'dgen.message.tag': messageTag(msgs[0]),
      'dgen.batch.size': msgs.length,
    },
  });
  const sc = span.spanContext();
  try {
    const result = await (a.trace.isSpanContextValid(sc)
      ? outgoingTrace.run({ traceparent: traceparent(sc) }, fn)
      : fn());
    span.setAttribute('dgen.outcome', 'ok');
    return result;
  } catch (error) {
    span.setAttribute('dgen.outcome', errorCode(error));
    span.setStatus({ code: a.SpanStatusCode.ERROR, message: (error as Error)?.message });
    throw error;
  } finally {
    span.end();
  }
}

/** What a consumer batch left per item: a handler outcome (with its result) or a skipped item. */
type Done = { result: unknown; ms: number; kind: string } | { skipped: Error; call: boolean };

/**
 * After a consumer batch committed: one `handle` span per message, metrics. Counters are added once
 * per batch and kind (an SDK counter hashes its attributes on every add); the duration histogram
 * takes each message.
 */
export function traceBatch(
  ctx: ServerContext,
  began: number,
  items: ReadonlyArray<{ item: QueueItem }>,
  done: readonly Done[],
): void {
  const a = otel();
  if (!a) return;
  const tracer = tracerOf(a);
  const m = meters(a);
  if (!tracer && !m) return;
  const n = namesOf(ctx);
  const end = Date.now();
  const counts = {
    cast: { handled: 0, dead: 0 },
    call: { handled: 0, dead: 0 },
    info: { handled: 0, dead: 0 },
  };
  for (let i = 0; i < done.length; i++) {
    const d = done[i];
    const item = items[i].item;
    if (m) {
      if ('skipped' in d) {
        if (!d.call) counts[item.kind].dead++;
      } else {
        counts[item.kind].handled++;
        m.handleDuration.record(d.ms, n.metric[item.kind]);
      }
    }
    if (!tracer) continue;
    const span = tracer.startSpan(
      'handle',
      {
        kind: a.SpanKind.CONSUMER,
        startTime: began,
        attributes: {
          'dgen.server.class': n.cls,
          'dgen.tuid': n.tuid,
          'dgen.message.tag': messageTag(item.msg),
          'dgen.message.kind': item.kind,
          'dgen.batch.size': done.length,
          'dgen.outcome': 'result' in d ? (returnKind(d.result) ?? 'unknown') : 'no_handler',
          'dgen.handler.ms': 'ms' in d ? d.ms : 0,
        },
      },
      parentContext(a, item.trace),
    );
    if ('skipped' in d) span.setStatus({ code: a.SpanStatusCode.ERROR, message: d.skipped.message });
    span.end(end);
  }
  if (!m) return;
  watch(ctx);
  for (const kind of ['cast', 'call', 'info'] as const) {
    if (counts[kind].handled > 0) m.handled.add(counts[kind].handled, n.metric[kind]);
    if (counts[kind].dead > 0) m.deadLettered.add(counts[kind].dead, n.metric[kind]);
  }
}

/** After a failed attempt at the head message was recorded: a failed `handle` span, metrics. */
export function traceFailure(
  ctx: ServerContext,
  item: QueueItem,
  error: unknown,
  attempt: number,
  deadLettered: boolean,
): void {
  const a = otel();
  if (!a) return;
  const n = namesOf(ctx);
  const tracer = tracerOf(a);
  if (tracer) {
    const span = tracer.startSpan(
      'handle',
      {
        kind: a.SpanKind.CONSUMER,
        attributes: {
          'dgen.server.class': n.cls,
          'dgen.tuid': n.tuid,
          'dgen.message.tag': messageTag(item.msg),
          'dgen.message.kind': item.kind,
          'dgen.attempt': attempt,
          'dgen.batch.size': 1,
          'dgen.outcome': deadLettered ? 'dead_lettered' : 'retry',
          'dgen.error.code': errorCode(error),
        },
      },
      parentContext(a, item.trace),
    );
    span.setStatus({ code: a.SpanStatusCode.ERROR, message: (error as Error)?.message });
    span.end();
  }
  const m = meters(a);
  if (deadLettered) m?.deadLettered.add(1, n.metric[item.kind]);
  else m?.retried.add(1, n.metric[item.kind]);
}

/**
 * After a message handled outside the queue committed (an inline call — the fast path of a call to
 * an idle server —, a priority call or cast, an info): its `handle` span, the child of the sending
 * `call` span when there is one (the carrier the ref put in outgoingTrace). Not counted as handled
 * by the metrics: those count queued messages.
 */
export function traceOutside(
  ctx: ServerContext,
  began: number,
  o: { result: unknown; kind: string; msg: unknown; ms: number },
): void {
  const a = otel();
  const tracer = a && tracerOf(a);
  if (!tracer) return;
  const n = namesOf(ctx);
  tracer
    .startSpan(
      'handle',
      {
        kind: a!.SpanKind.CONSUMER,
        startTime: began,
        attributes: {
          'dgen.server.class': n.cls,
          'dgen.tuid': n.tuid,
          'dgen.message.tag': messageTag(o.msg),
          'dgen.message.kind': o.kind,
          'dgen.inline': true,
          'dgen.batch.size': 1,
          'dgen.outcome': returnKind(o.result) ?? 'unknown',
          'dgen.handler.ms': o.ms,
        },
      },
      parentContext(a!, outgoingTrace.getStore()),
    )
    .end();
}

// ---- queue gauges: the servers this process consumes (seen handling), read when metrics are collected

const MAX_GAUGED = 1000;
const consumers = new Map<ServerContext, true>();

function watch(ctx: ServerContext): void {
  if (consumers.has(ctx) || consumers.size >= MAX_GAUGED) return;
  consumers.set(ctx, true);
}

setGaugeSource(async () => {
  const out = [];
  for (const ctx of [...consumers.keys()]) {
    if (ctx.isStopped) {
      consumers.delete(ctx);
      continue;
    }
    try {
      const [depth, head] = await ctx.tenant.read((tx) =>
        Promise.all([
          DurableQueue.length(tx, ctx.keys),
          tx.getRange(ctx.keys.queueItems.start, ctx.keys.queueItems.end, { limit: 1 }),
        ]),
      );
      const at = head[0] && decodeWire<QueueItem>(head[0].value).at;
      out.push({
        attrs: { 'dgen.server.class': namesOf(ctx).cls, 'dgen.tuid': namesOf(ctx).tuid },
        depth,
        ageMs: typeof at === 'number' ? Math.max(0, Date.now() - at) : depth > 0 ? null : 0,
      });
    } catch {
      consumers.delete(ctx); // its backend closed
    }
  }
  return out;
});
