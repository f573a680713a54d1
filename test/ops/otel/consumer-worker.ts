/**
 * A second process that consumes: `consumer-worker.ts SPEC OUT_FILE N` starts the Traced server with
 * its own OpenTelemetry SDK (in-memory exporter), waits until it has N `handle` spans and writes them
 * to OUT_FILE as JSON, then exits.
 */
import { writeFileSync } from 'node:fs';
import { openBackend } from '../../../src/backend/open-backend';
import { Runtime } from '../../../src/facade/runtime';
import { memoryTracing, toRecord, Traced } from './traced';

async function main(): Promise<void> {
  const [spec, out, n] = process.argv.slice(2);
  const exporter = memoryTracing();
  const backend = await openBackend(spec);
  await Runtime.start(Traced, undefined, { tenant: await backend.openTenant(['otel']) });
  process.send?.('consuming');
  const until = Date.now() + 120_000;
  while (exporter.getFinishedSpans().filter((s) => s.name === 'handle').length < Number(n)) {
    if (Date.now() > until) throw new Error('the handle spans did not come');
    await new Promise((r) => setTimeout(r, 20));
  }
  writeFileSync(out, JSON.stringify(exporter.getFinishedSpans().map(toRecord)));
  await Runtime.stopAll();
  await backend.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
