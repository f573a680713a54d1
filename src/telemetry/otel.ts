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

let instruments: { provider: OtelApi.MeterProvider; value: Instruments } | undefined;

/**
 * The metric instruments, created again when the global MeterProvider changes (the metrics API has
 * no proxy: a meter taken before the SDK registers would stay a no-op for ever).
 */
export function meters(a: Api): Instruments {
  const provider = a.metrics.getMeterProvider();
  if (instruments?.provider === provider) return instruments.value;
  const m = provider.getMeter(INSTRUMENTATION);
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
