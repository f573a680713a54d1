import 'reflect-metadata';
import { metrics, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { ChangesFollower, OnChange, follow, type ChangeRow, type DbTarget } from '../../src/couch';
import { seqNumber } from '../../src/couch/follower-telemetry';
import { Init, OnCall } from '../../src/decorators';
import { Runtime } from '../../src/facade/runtime';
import { ok, reply } from '../../src/returns';
import { describeTargets } from '../helpers/couch/targets';
import { waitFor, writeDocs } from '../helpers/couch/follower-kit';
import { memoryTracing } from '../ops/otel/traced';

@ChangesFollower()
class CountingFollower {
  @Init() init(db: DbTarget) {
    return follow(db, 0, { heartbeat: 300 });
  }
  @OnChange() change(_row: ChangeRow, n: number) {
    return ok(n + 1);
  }
  @OnCall('count') count(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
}

let gate: Promise<void> = Promise.resolve();
let openGate: () => void = () => undefined;
let entered = 0;

@ChangesFollower()
class SlowFollower {
  @Init() init(db: DbTarget) {
    entered = 0;
    return follow(db, 0, { heartbeat: 300 });
  }
  @OnChange() async change(_row: ChangeRow, n: number) {
    entered++;
    await gate;
    return ok(n + 1);
  }
}

afterEach(async () => {
  await Runtime.stopAll();
  trace.disable();
  metrics.disable();
});

test('seqNumber reads PouchDB numbers and CouchDB 2+ opaque seqs', () => {
  expect(seqNumber(42)).toBe(42);
  expect(seqNumber('17-g1AAAAB')).toBe(17);
  expect(seqNumber('opaque')).toBeUndefined();
  expect(seqNumber(undefined)).toBeUndefined();
});

describeTargets('follower telemetry (issue #14)', (target) => {
  it('a follow.batch span per batch of rows, a rows counter, and the lag behind update_seq', async () => {
    const exporter = memoryTracing();
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 3_600_000,
    });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const t = target();
    const db = await t.createDb('telemetry');
    await writeDocs(t.nano.use(db), 'a', 5);
    const ref = await Runtime.start(CountingFollower, t.dbTarget(db));
    await waitFor(async () => (await ref.call<number>('count')) === 5, 'five rows');

    const batches = exporter.getFinishedSpans().filter((s) => s.name === 'follow.batch');
    expect(batches.length).toBeGreaterThan(0);
    expect(batches[0].attributes).toMatchObject({
      'dgen.follower.class': 'CountingFollower',
      'dgen.follower.db': t.dbUrl(db),
      'dgen.outcome': 'ok',
    });
    expect(batches.reduce((n, s) => n + Number(s.attributes['dgen.follower.rows']), 0)).toBe(5);

    const collect = async () => {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    };
    const all = await collect();
    const rows = all.find((m) => m.descriptor.name === 'dgen.follower.rows')!;
    expect(rows.dataPoints.reduce((n, p) => n + Number(p.value), 0)).toBe(5);
    const lagOf = (ms: typeof all) =>
      ms.find((m) => m.descriptor.name === 'dgen.follower.lag')?.dataPoints[0]?.value as number | undefined;
    expect(lagOf(all)).toBe(0); // caught up

    await ref.stop();
  });

  it('dgen.follower.lag counts the rows a follower has not handled yet', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 3_600_000,
    });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const t = target();
    const db = await t.createDb('lag');
    await writeDocs(t.nano.use(db), 'a', 5);
    gate = new Promise<void>((resolve) => (openGate = resolve));
    const ref = await Runtime.start(SlowFollower, t.dbTarget(db));
    await waitFor(() => entered > 0, 'the first row');
    const lag = async () => {
      const { resourceMetrics } = await reader.collect();
      const m = resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .find((x) => x.descriptor.name === 'dgen.follower.lag');
      return m?.dataPoints.find((p) => p.attributes['dgen.follower.db'] === t.dbUrl(db))?.value;
    };
    expect(await lag()).toBe(5); // held in the first row: none of the five handled yet
    openGate();
    await waitFor(async () => (await lag()) === 0, 'caught up');
    await ref.stop();
  });
});
