/**
 * Operating benchmarks (#14): the inspector and OpenTelemetry.
 *
 *   npm run bench -- --only ops [--json]     BENCH_MS=… sets how long each cast side runs (3000 ms)
 *
 * - ops.servers_list_100k_ms      `dgen-ts servers SPEC --json` (plain JS, transpiled into .bench-tmp/)
 *                                  on a SQLite file holding 100,000 indexed servers, output to a pipe
 *                                  that only counts (goal ≤ 3000 ms); ops.servers_list_100k_cpu_ms its
 *                                  user + system CPU time (wall time on a loaded machine counts the
 *                                  other processes too); ops.servers_list_100k_rss_mb its
 *                                  peak RSS (streamed: stays bounded), ops.cli_start_ms the `--help`
 *                                  run of the same child (start-up, included in the listing time); the
 *                                  child runs with a 64 MB V8 heap, so holding all servers would fail
 * - server.sqlite.casts_per_s_with_otel / _without_otel  casts (enqueue + handle, one process) with the
 *                                  OpenTelemetry SDK registered (tracer and meter providers, a batch
 *                                  span processor and a no-op exporter) and with no API at all
 * - server.sqlite.cast_ratio_with_otel   with ÷ without (goal ≥ 0.8): ten pairs of adjacent slices
 *                                  (which side goes first alternates), the median of the pairs' ratios
 * - server.sqlite.cast_cpu_us_with_otel / _without_otel  CPU (user + system, this process: sender and
 *                                  consumer) per cast, medians: the instrumentation's own cost, which
 *                                  the fsync-bound rates hide on a loaded machine
 * - server.otel_us_per_msg_sdk / _no_api  CPU µs of the instrumentation alone per message (its `cast`
 *                                  span, its `handle` span, the handled counter and duration histogram),
 *                                  called directly in a loop with the SDK registered / without the API
 */
import { transpileTree } from '../test/helpers/transpile';
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { metrics, trace } from '@opentelemetry/api';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { openBackend } from '../src/backend/open-backend';
import { StateStore } from '../src/codec/state-codec';
import { recordServer, registerTenant } from '../src/ops/server-index';
import { Runtime } from '../src/facade/runtime';
import type { ServerRef } from '../src/runtime/server-ref';
import { ServerKeys } from '../src/runtime/server-keys';
import { otel, setOtelApiForTest } from '../src/telemetry/otel';
import { outgoingTrace } from '../src/telemetry/queue-extras';
import { traceBatch, traceSend } from '../src/telemetry/spans';
import type { ServerContext } from '../src/runtime/server-context';
import { Counter } from '../test/helpers/runtime/servers';

const ROOT = path.resolve(__dirname, '..');
const RUN_MS = Number(process.env.BENCH_MS ?? 3000);
const SERVERS = 100_000;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, d = 3) => Number(x.toFixed(d));

/** src/ as plain CommonJS under .bench-tmp/ops-js, as the packed dist/ would be (no TypeScript at run time). */
function transpiledCli(): string {
  return transpileTree(
    ['src'],
    path.join(ROOT, '.bench-tmp', 'ops-js'),
  )(path.join(ROOT, 'src', 'cli', 'main.ts'));
}

/** Writes SERVERS indexed servers (index record + initial state) straight into the file, 1000 a transaction. */
async function populate(spec: string): Promise<void> {
  const backend = await openBackend(spec);
  const tenant = await backend.openTenant(['bench', 'many']);
  await registerTenant(tenant);
  for (let i = 0; i < SERVERS; i += 1000)
    await tenant.transact(async (tx) => {
      for (let j = i; j < i + 1000; j++) {
        const tuid = ['c', j];
        await recordServer(tx, tuid, 'Counter', 1);
        new StateStore(new ServerKeys(tuid).state).write(tx, undefined, { n: j, tags: ['a', 'b'] });
      }
    });
  await backend.close();
}

/** Runs the CLI child; stdout only counted. Wall ms, peak RSS (MB, from /usr/bin/time when present), bytes out. */
function runChild(
  main: string,
  args: string[],
): Promise<{ ms: number; cpuMs: number; rssMb: number; bytes: number; status: number }> {
  const timeBin = fs.existsSync('/usr/bin/time');
  const cmd = timeBin ? '/usr/bin/time' : process.execPath;
  // A 64 MB heap: a listing that held every server would run out of memory and fail the bench.
  const node = ['--max-old-space-size=64', main, ...args];
  const argv = timeBin ? ['-f', 'maxrss_kb=%M cpu_s=%U+%S', process.execPath, ...node] : node;
  const start = now();
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let err = '';
  child.stdout.on('data', (d: Buffer) => (bytes += d.length));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (status) => {
      const ms = now() - start;
      if (status !== 0) return reject(new Error(`dgen-ts ${args.join(' ')} exited ${status}: ${err}`));
      const kb = /maxrss_kb=(\d+)/.exec(err);
      const cpu = /cpu_s=([\d.]+)\+([\d.]+)/.exec(err);
      const cpuMs = cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : NaN;
      resolve({ ms, cpuMs, rssMb: kb ? Number(kb[1]) / 1024 : NaN, bytes, status: status ?? -1 });
    }),
  );
}

async function serversList(dir: string): Promise<Record<string, number>> {
  const spec = `sqlite:${path.join(dir, 'many.sqlite')}`;
  await populate(spec);
  const main = transpiledCli();
  await runChild(main, ['--help']); // warms the file cache
  const help = await runChild(main, ['--help']);
  const list = await runChild(main, ['servers', spec, '--json']);
  if (list.bytes < SERVERS * 100) throw new Error(`the listing printed only ${list.bytes} bytes`);
  return {
    'ops.servers_list_100k_ms': Math.round(list.ms),
    'ops.servers_list_100k_cpu_ms': Math.round(list.cpuMs),
    'ops.servers_list_100k_rss_mb': round(list.rssMb, 1),
    'ops.cli_start_ms': Math.round(help.ms),
  };
}

// ---- casts with and without OpenTelemetry ------------------------------------------------------

const noopSpans: SpanExporter = { export: (_s, done) => done({ code: 0 }), shutdown: async () => {} };
const noopMetrics: PushMetricExporter = {
  export: (_m, done) => done({ code: 0 }),
  shutdown: async () => {},
  forceFlush: async () => {},
};

/** Casts for `ms`, then waits until they are handled: casts per second and CPU µs per cast. */
async function castSlice(
  ref: ServerRef,
  handled: { n: number },
  ms: number,
): Promise<{ perS: number; cpuUs: number }> {
  const before = handled.n;
  const start = now();
  const cpu = process.cpuUsage();
  let sent = 0;
  while (now() - start < ms) {
    for (let i = 0; i < 20; i++) await ref.cast({ type: 'add', by: 1 });
    sent += 20;
  }
  const deadline = Date.now() + 60_000;
  while (handled.n - before < sent) {
    if (Date.now() > deadline) throw new Error('bench: casts not drained');
    await sleep(1);
  }
  const used = process.cpuUsage(cpu);
  return { perS: (sent * 1000) / (now() - start), cpuUs: (used.user + used.system) / sent };
}

async function castWithOtel(dir: string): Promise<Record<string, number>> {
  const api = otel();
  if (!api) throw new Error('@opentelemetry/api is not installed (a devDependency)');
  const tracer = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(noopSpans)] });
  const meter = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: noopMetrics, exportIntervalMillis: 1000 })],
  });
  trace.setGlobalTracerProvider(tracer);
  metrics.setGlobalMeterProvider(meter);
  const backend = await openBackend(`sqlite:${path.join(dir, 'casts.sqlite')}`);
  try {
    const ref = await Runtime.start(Counter, undefined, { tenant: await backend.openTenant(['bench']) });
    const handled = { n: 0 };
    ref.events$.subscribe((e) => e.type === 'handled' && e.kind === 'cast' && handled.n++);
    const side = (on: boolean) => setOtelApiForTest(on ? api : null);
    side(true);
    await castSlice(ref, handled, RUN_MS / 4);
    side(false);
    await castSlice(ref, handled, RUN_MS / 4);
    // Adjacent slices share the machine's conditions (casts wait on fsync, which other jobs slow
    // down): the ratio is the median of the pairs' ratios, the other figures medians per side.
    const pairs: Array<{ with: { perS: number; cpuUs: number }; without: { perS: number; cpuUs: number } }> =
      [];
    for (let i = 0; i < 10; i++) {
      side(i % 2 === 0);
      const first = await castSlice(ref, handled, RUN_MS / 10);
      side(i % 2 !== 0);
      const second = await castSlice(ref, handled, RUN_MS / 10);
      pairs.push(i % 2 === 0 ? { with: first, without: second } : { with: second, without: first });
    }
    return {
      'server.sqlite.casts_per_s_with_otel': Math.round(median(pairs.map((p) => p.with.perS))),
      'server.sqlite.casts_per_s_without_otel': Math.round(median(pairs.map((p) => p.without.perS))),
      'server.sqlite.cast_ratio_with_otel': round(median(pairs.map((p) => p.with.perS / p.without.perS))),
      'server.sqlite.cast_cpu_us_with_otel': Math.round(median(pairs.map((p) => p.with.cpuUs))),
      'server.sqlite.cast_cpu_us_without_otel': Math.round(median(pairs.map((p) => p.without.cpuUs))),
    };
  } finally {
    setOtelApiForTest(undefined);
    await Runtime.stopAll();
    await backend.close();
    await tracer.shutdown();
    await meter.shutdown();
    trace.disable();
    metrics.disable();
  }
}

/**
 * The telemetry hooks of one cast, as the runtime calls them (send, then the consumer's batch of one),
 * on a stand-in server context: CPU µs per message. `isStopped` makes the queue gauges drop it.
 */
async function hooksPerMessage(n: number): Promise<number> {
  const ctx = { def: { ctor: { name: 'Counter' } }, tuid: ['dgen_server', 'counter'], isStopped: true };
  const msg = { type: 'add', by: 1 };
  const done = [{ result: { kind: 'noreply', state: 1 }, ms: 0.1, kind: 'cast' }];
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    let carrier: Record<string, string> | undefined;
    await traceSend('cast', ctx as unknown as ServerContext, [msg], async () => {
      carrier = outgoingTrace.getStore();
    });
    const item = { kind: 'cast' as const, msg, at: Date.now(), trace: carrier };
    traceBatch(ctx as unknown as ServerContext, Date.now(), [{ item }], done);
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / n;
}

async function otelHooks(): Promise<Record<string, number>> {
  const api = otel();
  if (!api) throw new Error('@opentelemetry/api is not installed (a devDependency)');
  const tracer = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(noopSpans)] });
  const meter = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: noopMetrics, exportIntervalMillis: 1000 })],
  });
  trace.setGlobalTracerProvider(tracer);
  metrics.setGlobalMeterProvider(meter);
  try {
    const sdk: number[] = [];
    const none: number[] = [];
    for (let i = 0; i < 5; i++) {
      setOtelApiForTest(api);
      sdk.push(await hooksPerMessage(i === 0 ? 2000 : 10_000)); // the first: warm-up, outvoted
      setOtelApiForTest(null);
      none.push(await hooksPerMessage(i === 0 ? 2000 : 10_000));
    }
    return {
      'server.otel_us_per_msg_sdk': round(median(sdk), 2),
      'server.otel_us_per_msg_no_api': round(median(none), 2),
    };
  } finally {
    setOtelApiForTest(undefined);
    await tracer.shutdown();
    await meter.shutdown();
    trace.disable();
    metrics.disable();
  }
}

export async function benchOps(): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-bench-ops-'));
  try {
    return { ...(await castWithOtel(dir)), ...(await otelHooks()), ...(await serversList(dir)) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module)
  void benchOps().then((f) => {
    console.log(JSON.stringify(f));
    process.exit(0);
  });
