import 'reflect-metadata';
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metrics, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { openBackend } from '../../../src/backend/open-backend';
import { FaultyBackend } from '../../../src/backend/faulty/faulty-backend';
import { MemoryBackend } from '../../../src/backend/memory/memory-backend';
import { Runtime } from '../../../src/facade/runtime';
import { otel, setOtelApiForTest } from '../../../src/telemetry/otel';
import { waitFor } from '../../runtime/backends';
import { memoryTracing, toRecord, Traced, type SpanRecord } from './traced';

jest.setTimeout(300_000);

afterEach(async () => {
  await Runtime.stopAll();
  setOtelApiForTest(undefined);
  trace.disable();
  metrics.disable();
});

test('one trace runs from a call (and a cast) in this process through the queue to its handle in another process', async () => {
  const exporter = memoryTracing();
  const dir = mkdtempSync(join(tmpdir(), 'dgen-otel-'));
  const spec = `sqlite:${join(dir, 'db.sqlite')}`;
  const out = join(dir, 'spans.json');
  try {
    const backend = await openBackend(spec);
    const ref = await Runtime.start(Traced, undefined, {
      tenant: await backend.openTenant(['otel']),
      consume: false,
    });
    await ref.castMany([
      { type: 'add', by: 2 },
      { type: 'add', by: 3 },
    ]);
    const worker = fork(join(__dirname, 'consumer-worker.ts'), [spec, out, '3'], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<number | null>((resolve) => worker.on('exit', resolve));
    expect(await ref.call('get', { timeout: 120_000 })).toBe(5); // handled in the worker
    expect(await exited).toBe(0);
    await backend.close();

    const mine = exporter.getFinishedSpans().map(toRecord);
    const theirs = JSON.parse(readFileSync(out, 'utf8')) as SpanRecord[];
    const call = mine.find((s) => s.name === 'call')!;
    const cast = mine.find((s) => s.name === 'cast')!;
    expect(cast.attributes).toMatchObject({
      'dgen.server.class': 'Traced',
      'dgen.tuid': '["dgen_server","traced"]',
      'dgen.message.tag': 'add',
      'dgen.batch.size': 2,
      'dgen.outcome': 'ok',
    });
    expect(call.attributes).toMatchObject({ 'dgen.message.tag': 'get', 'dgen.outcome': 'ok' });
    const handles = theirs.filter((s) => s.name === 'handle');
    expect(handles).toHaveLength(3);
    const handledGet = handles.find((s) => s.attributes['dgen.message.tag'] === 'get')!;
    // the handle span in the other process is the child of the call span in this one
    expect(handledGet.traceId).toBe(call.traceId);
    expect(handledGet.parentSpanId).toBe(call.spanId);
    expect(handledGet.attributes).toMatchObject({
      'dgen.server.class': 'Traced',
      'dgen.message.kind': 'call',
      'dgen.outcome': 'reply',
    });
    const handledAdds = handles.filter((s) => s.attributes['dgen.message.tag'] === 'add');
    expect(handledAdds.map((s) => [s.traceId, s.parentSpanId])).toEqual([
      [cast.traceId, cast.spanId],
      [cast.traceId, cast.spanId],
    ]);
    expect(handledAdds[0].attributes).toMatchObject({
      'dgen.outcome': 'noreply',
      'dgen.message.kind': 'cast',
    });
    expect(handledAdds[0].attributes['dgen.batch.size']).toEqual(expect.any(Number));
    expect(call.traceId).not.toBe(cast.traceId);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('metrics: handled, retried and dead-lettered counters, the handle duration histogram, queue gauges; failures get failed handle spans', async () => {
  const spans = memoryTracing();
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
  });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  const backend = new MemoryBackend();
  const ref = await Runtime.start(Traced, undefined, {
    tenant: await backend.openTenant(['m']),
    maxAttempts: 2,
  });
  await ref.castMany([{ type: 'add', by: 1 }, { type: 'poison' }, { type: 'add', by: 1 }]);
  await waitFor(async () => (await ref.deadLetters()).length === 1 && (await ref.queueLength()) === 0);
  expect(await ref.call('get')).toBe(2);
  const { resourceMetrics } = await reader.collect();
  const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  const byName = (n: string) => all.find((m) => m.descriptor.name === n);
  const sum = (n: string) =>
    (byName(n)?.dataPoints ?? []).reduce((t, p) => t + (typeof p.value === 'number' ? p.value : 0), 0);
  expect(sum('dgen.messages.handled')).toBe(2); // the inline call is not a queued message
  expect(sum('dgen.messages.retried')).toBe(1);
  expect(sum('dgen.messages.dead_lettered')).toBe(1);
  const hist = byName('dgen.handle.duration')!;
  expect(hist.dataPointType).toBe(DataPointType.HISTOGRAM);
  expect((hist.dataPoints[0].value as { count: number }).count).toBe(2);
  const depth = byName('dgen.queue.depth')!;
  expect(depth.dataPoints.map((p) => [p.attributes['dgen.tuid'], p.value])).toEqual([
    ['["dgen_server","traced"]', 0],
  ]);
  const failed = spans
    .getFinishedSpans()
    .filter((s) => s.name === 'handle' && s.attributes['dgen.message.tag'] === 'poison')
    .map((s) => [s.attributes['dgen.outcome'], s.attributes['dgen.attempt'], s.status.code]);
  expect(failed).toEqual([
    ['retry', 1, 2],
    ['dead_lettered', 2, 2],
  ]);
  await backend.close();
});

test('without @opentelemetry/api nothing is emitted and nothing breaks', async () => {
  const spans = memoryTracing();
  setOtelApiForTest(null);
  expect(otel()).toBeNull();
  const backend = new MemoryBackend();
  const ref = await Runtime.start(Traced, undefined, {
    tenant: await backend.openTenant(['n']),
    consume: false,
  });
  await ref.cast({ type: 'add', by: 1 });
  const consumer = await Runtime.start(Traced, undefined, { tenant: await backend.openTenant(['n']) });
  await waitFor(async () => (await consumer.queueLength()) === 0);
  expect(await consumer.call('get')).toBe(1);
  expect(spans.getFinishedSpans()).toEqual([]);
  await backend.close();
});

test('metrics: transaction conflicts are counted per backend as the transaction loop retries them', async () => {
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
  });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  const backend = new FaultyBackend(new MemoryBackend(), { commitFailureRate: 0.5, seed: 7 });
  const ref = await Runtime.start(Traced, undefined, { tenant: await backend.openTenant(['c']) });
  for (let i = 0; i < 20; i++) await ref.cast({ type: 'add', by: 1 });
  await waitFor(async () => (await ref.queueLength()) === 0);
  const { resourceMetrics } = await reader.collect();
  const conflicts = resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === 'dgen.transaction.conflicts')!;
  expect(conflicts.dataPoints[0].attributes).toEqual({
    'dgen.backend': 'memory',
    'dgen.error.code': 'TRANSACTION_CONFLICT',
  });
  expect(conflicts.dataPoints[0].value as number).toBeGreaterThan(5);
  await backend.close();
});
