import 'reflect-metadata';
import { metrics, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { MemoryBackend } from '../../../src/backend/memory/memory-backend';
import { Runtime } from '../../../src/facade/runtime';
import { meters, otel, tracerOf } from '../../../src/telemetry/otel';
import { waitFor } from '../../runtime/backends';
import { memoryTracing, Traced } from './traced';

jest.setTimeout(60_000);

afterEach(async () => {
  await Runtime.stopAll();
  trace.disable();
  metrics.disable();
});

test('with the API but no SDK nothing is built; an SDK registered later is used at once, and dropped when disabled', async () => {
  const a = otel()!;
  expect(a).not.toBeNull();
  expect(tracerOf(a)).toBeNull(); // no spans, attributes or parent contexts are made
  expect(meters(a)).toBeNull();
  const backend = new MemoryBackend();
  const ref = await Runtime.start(Traced, undefined, { tenant: await backend.openTenant(['s']) });
  await ref.cast({ type: 'add', by: 1 });
  await waitFor(async () => (await ref.queueLength()) === 0);

  // the providers registered after the first messages: the cached "no SDK" answers must not stick
  const spans = memoryTracing();
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
  });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  expect(tracerOf(a)).not.toBeNull();
  expect(meters(a)).not.toBeNull();
  await ref.castMany([
    { type: 'add', by: 1 },
    { type: 'add', by: 1 },
  ]);
  await waitFor(() => spans.getFinishedSpans().filter((s) => s.name === 'handle').length === 2);
  const [cast, ...handles] = spans.getFinishedSpans().sort((x, y) => (x.name < y.name ? -1 : 1));
  expect(cast.name).toBe('cast');
  expect(cast.attributes['dgen.batch.size']).toBe(2);
  // both items of the batch carry the one cast span's context (the parent context is shared)
  for (const h of handles) {
    expect(h.spanContext().traceId).toBe(cast.spanContext().traceId);
    expect(h.parentSpanContext?.spanId).toBe(cast.spanContext().spanId);
  }
  const { resourceMetrics } = await reader.collect();
  const handled = resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === 'dgen.messages.handled')!;
  expect(handled.dataPoints.map((p) => p.value)).toEqual([2]);

  trace.disable();
  metrics.disable();
  expect(tracerOf(a)).toBeNull();
  expect(meters(a)).toBeNull();
  await backend.close();
});
