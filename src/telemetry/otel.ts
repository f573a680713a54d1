import type * as OtelApi from '@opentelemetry/api';

/**
 * `@opentelemetry/api`, if installed (an optional peer dependency), loaded on first use. Without it
 * every telemetry hook returns at once: nothing is emitted and nothing breaks. With it but without an
 * SDK registered, the API's no-op tracer and meter make the hooks cheap no-ops.
 */
export type Api = typeof OtelApi;

let api: Api | null | undefined;

export function otel(): Api | null {
  if (api === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      api = require('@opentelemetry/api') as Api;
    } catch {
      api = null;
    }
  }
  return api;
}

/** For tests: behave as if the package were (not) installed. */
export function setOtelApiForTest(value: Api | null | undefined): void {
  api = value;
}

export const INSTRUMENTATION = 'dgen-ts';

export interface Instruments {
  handleDuration: OtelApi.Histogram;
  handled: OtelApi.Counter;
  retried: OtelApi.Counter;
  deadLettered: OtelApi.Counter;
}

let tracing: { api: Api; delegate: OtelApi.TracerProvider; tracer: OtelApi.Tracer | null } | undefined;

/**
 * Our tracer, or null while no SDK tracer provider is registered (then a span would be a no-op, and
 * its attributes and parent context are not worth building). Cached per registered provider: a
 * lookup per span otherwise, and tests swap providers.
 */
export function tracerOf(a: Api): OtelApi.Tracer | null {
  const p = a.trace.getTracerProvider();
  const delegate = p instanceof a.ProxyTracerProvider ? p.getDelegate() : p;
  if (tracing?.delegate === delegate && tracing.api === a) return tracing.tracer;
  // a fresh proxy's delegate is the API's no-op provider (it exports no other handle on it)
  const noop = new a.ProxyTracerProvider().getDelegate();
  tracing = { api: a, delegate, tracer: delegate === noop ? null : a.trace.getTracer(INSTRUMENTATION) };
  return tracing.tracer;
}

let instruments: { provider: OtelApi.MeterProvider; value: Instruments | null } | undefined;

/**
 * The metric instruments, or null while no SDK meter provider is registered (the API's no-op meter);
 * created again when the global MeterProvider changes (the metrics API has no proxy: a meter taken
 * before the SDK registers would stay a no-op for ever).
 */
export function meters(a: Api): Instruments | null {
  const provider = a.metrics.getMeterProvider();
  if (instruments?.provider === provider) return instruments.value;
  const m = provider.getMeter(INSTRUMENTATION);
  if (m === a.createNoopMeter()) {
    instruments = { provider, value: null };
    return null;
  }
  const value: Instruments = {
    handleDuration: m.createHistogram('dgen.handle.duration', {
      unit: 'ms',
      description: 'Time a handler took to handle one message',
    }),
    handled: m.createCounter('dgen.messages.handled', { description: 'Messages handled and committed' }),
    retried: m.createCounter('dgen.messages.retried', {
      description: 'Failed attempts at a message that will be tried again',
    }),
    deadLettered: m.createCounter('dgen.messages.dead_lettered', {
      description: 'Messages moved to the dead letters',
    }),
  };
  instruments = { provider, value };
  registerGauges(m);
  return value;
}

type GaugeSource = () => Promise<Array<{ attrs: OtelApi.Attributes; depth: number; ageMs: number | null }>>;
let gaugeSource: GaugeSource | undefined;

/** What the observable gauges read (set by the consumer registry in spans.ts). */
export function setGaugeSource(source: GaugeSource): void {
  gaugeSource = source;
}

function registerGauges(m: OtelApi.Meter): void {
  const depth = m.createObservableGauge('dgen.queue.depth', {
    description: 'Messages in the durable queue of each server consumed in this process',
  });
  const age = m.createObservableGauge('dgen.queue.oldest_age', {
    unit: 'ms',
    description: 'Age of the message at the head of the queue',
  });
  m.addBatchObservableCallback(
    async (r) => {
      for (const s of (await gaugeSource?.()) ?? []) {
        r.observe(depth, s.depth, s.attrs);
        if (s.ageMs !== null) r.observe(age, s.ageMs, s.attrs);
      }
    },
    [depth, age],
  );
}
