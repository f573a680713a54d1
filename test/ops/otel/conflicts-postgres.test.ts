import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { postgresCounters } from '../../../src/backend/postgres/counters';
import { backendFactories } from '../../helpers/backend/factories';

jest.setTimeout(120_000);

afterEach(() => metrics.disable());

const postgres = backendFactories.find((f) => f.name === 'postgres')!;

test('metrics: PostgreSQL serialization conflicts are counted as dgen.transaction.conflicts, one per retried attempt', async () => {
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
  });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  const { backend, cleanup } = await postgres.open();
  try {
    const tenant = await backend.openTenant(['conflicts']);
    const key = Buffer.from('n');
    const before = postgresCounters.conflictRetries;
    // read-modify-write of one key from concurrent transactions: serializable isolation makes some
    // of them fail and run again (until some have, bounded)
    for (let round = 0; round < 20 && postgresCounters.conflictRetries === before; round++)
      await Promise.all(
        Array.from({ length: 8 }, () =>
          tenant.transact(async (tx) => {
            const n = (await tx.get(key))?.readUInt32BE() ?? 0;
            await new Promise((r) => setTimeout(r, 5));
            const out = Buffer.alloc(4);
            out.writeUInt32BE(n + 1);
            tx.set(key, out);
          }),
        ),
      );
    const retried = postgresCounters.conflictRetries - before;
    expect(retried).toBeGreaterThan(0);
    const { resourceMetrics } = await reader.collect();
    const points = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === 'dgen.transaction.conflicts')
      .flatMap((m) => m.dataPoints as Array<{ attributes: Record<string, unknown>; value: unknown }>)
      .filter((p) => p.attributes['dgen.backend'] === 'postgres');
    expect(points.map((p) => p.attributes['dgen.error.code'])).toEqual(['TRANSACTION_CONFLICT']);
    expect(points[0].value).toBe(retried);
  } finally {
    await cleanup();
  }
});
