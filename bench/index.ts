/**
 * `npm run bench`: runs every benchmark module that exists and prints its figures as a table;
 * `npm run bench -- --json` also ends with one line holding one JSON object of all the figures.
 *
 * Each module is optional and loaded only if its file is there, so the suite grows as the parts of
 * the library land: bench/backend.ts (benchBackend), bench/codec.ts (benchCodec), bench/server.ts
 * (benchServer), bench/follower.ts (benchFollower), bench/postgres.ts (benchPostgres), bench/ops.ts
 * (benchOps), bench/idempotency.ts (benchIdempotency), bench/timers.ts (benchTimers). `--only backend,server` runs a subset. A module
 * that fails or runs past BENCH_MODULE_TIMEOUT_MS (600 s) is reported and the others still run; the
 * exit code is then 1.
 *
 * Each module runs in a process of its own (this script again, with `--module NAME`): a module must
 * not measure what the ones before it left in the process — a heap grown by 100,000 index entries,
 * registered telemetry, open handles. (Run after the others in one process, the timers module took
 * 150-215 µs of CPU per timer instead of ~125.)
 */
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

type Figures = Record<string, number>;

/** A module that runs longer than this is reported as failed and the others still run. */
const MODULE_TIMEOUT_MS = Number(process.env.BENCH_MODULE_TIMEOUT_MS ?? 600_000);

function withinMs<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const MODULES: Array<{ name: string; file: string; fn: string; only?: boolean }> = [
  { name: 'backend', file: 'backend', fn: 'benchBackend' },
  { name: 'codec', file: 'codec', fn: 'benchCodec' },
  { name: 'server', file: 'server', fn: 'benchServer' },
  // Not in a full run (benchServer includes it): `--only server-xproc` runs the cross-process figures alone.
  { name: 'server-xproc', file: 'server', fn: 'benchServerXproc', only: true },
  { name: 'follower', file: 'follower', fn: 'benchFollower' },
  { name: 'postgres', file: 'postgres', fn: 'benchPostgres' },
  { name: 'server-postgres', file: 'server-postgres', fn: 'benchServerPostgres' },
  { name: 'ops', file: 'ops', fn: 'benchOps' },
  { name: 'timers', file: 'timers', fn: 'benchTimers' },
  { name: 'idempotency', file: 'idempotency', fn: 'benchIdempotency' },
];

function exists(file: string): boolean {
  return ['.ts', '.js'].some((ext) => fs.existsSync(path.join(__dirname, file + ext)));
}

function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

function table(figures: Figures): string {
  const rows = Object.entries(figures);
  const width = Math.max(6, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${format(v).padStart(14)}`).join('\n');
}

/** Runs one module here (a child of `main`) and sends its figures to the parent. */
async function runModule(name: string): Promise<void> {
  const mod = MODULES.find((m) => m.name === name);
  if (!mod) throw new Error(`no bench module ${name}`);
  const loaded = (await import(`./${mod.file}`)) as Record<string, () => Promise<Figures>>;
  if (typeof loaded[mod.fn] !== 'function')
    throw new Error(`bench/${mod.file}.ts does not export ${mod.fn}()`);
  const figures = await withinMs(loaded[mod.fn](), MODULE_TIMEOUT_MS, `${mod.name} bench`);
  await new Promise<void>((resolve) => process.send!(figures, () => resolve()));
}

/** One module in a child process: its figures, or an error if it failed, died or sent none. */
function inChild(name: string): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--module', name], { execArgv: process.execArgv, stdio: 'inherit' });
    let figures: Figures | undefined;
    child.on('message', (m) => (figures = m as Figures));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      figures && code === 0
        ? resolve(figures)
        : reject(
            new Error(
              `the ${name} bench process exited with ${signal ?? code} (figures: ${figures ? 'sent' : 'none'})`,
            ),
          ),
    );
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const single = args.indexOf('--module');
  if (single >= 0) {
    await runModule(args[single + 1]).then(
      () => process.exit(0),
      (err) => (
        console.error(err instanceof Error ? (err.stack ?? err.message) : String(err)),
        process.exit(1)
      ),
    );
    return;
  }
  const json = args.includes('--json');
  const onlyArg = args.find((a) => a.startsWith('--only'));
  const only = onlyArg
    ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : (args[args.indexOf(onlyArg) + 1] ?? '')).split(',')
    : undefined;

  const all: Figures = {};
  let failed = false;
  for (const mod of MODULES) {
    if (only ? !only.includes(mod.name) : mod.only) continue;
    if (!exists(mod.file)) continue;
    const started = Date.now();
    console.log(`\n== ${mod.name} (bench/${mod.file}.ts)`);
    try {
      const figures = await inChild(mod.name);
      Object.assign(all, figures);
      console.log(table(figures));
      console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed = true;
      console.error(`${mod.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  if (json) console.log(JSON.stringify(all));
  // Benchmarks may leave child processes or handles behind on failure: do not hang on them.
  process.exit(failed ? 1 : 0);
}

void main();
