/**
 * timers.pending_100k_*: what a process holding 100,000 pending timers costs. Two child processes on
 * one SQLite file (bench/timers-rss-child.ts): the holder consumes 100 servers and measures itself
 * with none; the writer sets 1,000 timers on each through `ref.castAfter`; the holder, woken by those
 * commits, learns each server's earliest due and measures itself again. The holder never writes a
 * timer, so its growth is what holding costs; the writer's own growth (SQLite's page cache filled by
 * the writes, at most 16 MB per connection whatever the count) is reported apart. _anon_ratio is the
 * holder's anonymous memory (allocated by the process, unlike the file-backed pages RSS also counts).
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { transpileTree } from '../test/helpers/transpile';

const ROOT = path.resolve(__dirname, '..');
const round = (x: number, digits = 3) => Number(x.toFixed(digits));
const mb = (bytes: number) => round(bytes / 2 ** 20, 1);

type Memory = { rss: number; heapUsed: number; anon: number };
type Loaded = Memory & { clockTimers: number; servers: number; pending: number };

/** src/ and the children's imports as plain CommonJS (no TypeScript compiler in their memory). */
function transpiled(): string {
  const out = transpileTree(['src', 'test/timers', 'bench'], path.join(ROOT, '.bench-tmp', 'timers-js'));
  return out(path.join(ROOT, 'bench', 'timers-rss-child.ts'));
}

function child(script: string, role: string, db: string): ChildProcess {
  return fork(script, [], {
    cwd: ROOT,
    execArgv: ['--expose-gc'],
    env: { ...process.env, ROLE: role, TIMER_DB: db },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** The child's next message, or a rejection if it exits first. */
function next<T>(c: ChildProcess): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`timers rss child exited (${code})`));
    c.once('exit', onExit);
    c.once('message', (m) => (c.off('exit', onExit), resolve(m as T)));
  });
}

export async function pendingRss(dir: string): Promise<Record<string, number>> {
  const script = transpiled();
  const db = path.join(dir, 'rss.sqlite');
  const holder = child(script, 'holder', db);
  let writer: ChildProcess | undefined;
  try {
    const base = await next<Memory>(holder);
    writer = child(script, 'writer', db);
    const written = await next<{ base: Memory; loaded: Memory }>(writer);
    const loading = next<Loaded>(holder);
    holder.send('armed');
    const loaded = await loading;
    if (loaded.pending !== 100_000)
      throw new Error(`expected 100,000 pending timers, found ${loaded.pending}`);
    if (loaded.servers !== 100)
      throw new Error(`the holder knows the due of ${loaded.servers} servers, not 100`);
    return {
      'timers.pending_none_rss_mb': mb(base.rss),
      'timers.pending_100k_rss_mb': mb(loaded.rss),
      'timers.pending_100k_rss_ratio': round(loaded.rss / base.rss),
      'timers.pending_100k_heap_ratio': round(loaded.heapUsed / base.heapUsed),
      ...(base.anon > 0 && { 'timers.pending_100k_anon_ratio': round(loaded.anon / base.anon) }),
      'timers.pending_100k_clock_timers': loaded.clockTimers,
      'timers.writer_100k_rss_mb': mb(written.loaded.rss),
      'timers.writer_100k_rss_ratio': round(written.loaded.rss / written.base.rss),
    };
  } finally {
    for (const c of [holder, writer]) if (c && c.exitCode === null) c.kill('SIGKILL');
  }
}
