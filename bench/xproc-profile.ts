/**
 * Where a cross-process call's time goes (issue #10), counted rather than timed: N sequential calls
 * from this process to a Counter consumed in a child process, on one SQLite file, and per call in each
 * process: CPU (process.cpuUsage), SQLite statements by kind, commit notices written, watcher checks,
 * tuple packings; with TIMELINE=1 also the median time between the hand-off's steps, both processes on
 * one clock (performance.timeOrigin), for the most common order of steps.
 *
 *   npx ts-node --transpile-only bench/xproc-profile.ts      # N=2000 SYNC=full|normal TIMELINE=1
 *
 * It instruments by wrapping prototypes and module exports in both processes, which costs time of its
 * own: read the counts as exact and the times as a breakdown, not as the call's latency (that is
 * bench/server-xproc.ts's figure).
 */
import 'reflect-metadata';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import * as tuple from 'fdb-tuple';
import { LockingBackend } from '../src/backend/common/locking-backend';
import { CommitNotice } from '../src/backend/sqlite/commit-notice';
import { LockFairness } from '../src/backend/sqlite/lock-fairness';
import { SqliteBackend } from '../src/backend/sqlite/sqlite-backend';
import { SqliteWatcher } from '../src/backend/sqlite/sqlite-watcher';
import { Runtime } from '../src/facade/runtime';
import { Consumer } from '../src/runtime/consumer';
import { Counter } from '../test/helpers/runtime/servers';
import { openSqlite } from '../test/helpers/runtime/sqlite';

const N = Number(process.env.N ?? 2000);
const SYNC = (process.env.SYNC ?? 'full') as 'full' | 'normal';
const TIMELINE = process.env.TIMELINE === '1';

type Counts = Record<string, number>;
type Mark = [string, number];
interface Report {
  notice: ReturnType<typeof noticeStats>;
  counts: Counts;
  marks: Mark[];
  cpu: NodeJS.CpuUsage;
}

const counts: Counts = {};
const marks: Mark[] = [];
const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
const mark = (k: string) => TIMELINE && marks.push([k, (performance.timeOrigin + performance.now()) * 1000]);

/** Wraps `proto[name]`: counts its calls as `tag`, marks its start (and, with `end`, its end). */
function wrap(proto: object, name: string, tag: string, end?: string): void {
  const target = proto as Record<string, (...args: unknown[]) => unknown>;
  const inner = target[name];
  target[name] = function (this: unknown, ...args: unknown[]) {
    count(tag);
    mark(tag);
    const r = inner.apply(this, args);
    if (end && r instanceof Promise) return r.then((v) => (mark(end), v));
    if (end) mark(end);
    return r;
  };
}

/** µs spent in each notice `pwrite` (always measured: one clock read around a system call). */
const noticeUs: number[] = [];
{
  const proto = CommitNotice.prototype as unknown as { write: () => void };
  const write = proto.write;
  proto.write = function (this: unknown) {
    const t0 = performance.now();
    write.call(this);
    noticeUs.push((performance.now() - t0) * 1000);
  };
}
const noticeStats = () => {
  const s = [...noticeUs].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0);
  return {
    n: s.length,
    mean: Math.round(s.reduce((x, y) => x + y, 0) / (s.length || 1)),
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
  };
};

function instrument(): void {
  if (process.env.BARE === '1') return; // latency and CPU only, no wrappers (e.g. under --cpu-prof)
  const db = Database.prototype as unknown as { prepare: (sql: string) => Record<string, unknown> };
  const prepare = db.prepare;
  db.prepare = function (this: unknown, sql: string) {
    const st = prepare.call(this, sql);
    const kind = `sql ${sql.replace(/\s+/g, ' ').slice(0, 44)}`;
    for (const m of ['run', 'get', 'all']) wrap(st, m, kind);
    return st;
  };
  // better-sqlite3's db.transaction() runs BEGIN/COMMIT without prepared statements: count it apart.
  const transaction = (Database.prototype as unknown as { transaction: (fn: unknown) => unknown })
    .transaction;
  (Database.prototype as unknown as { transaction: unknown }).transaction = function (
    this: unknown,
    fn: (...args: unknown[]) => unknown,
  ) {
    return transaction.call(
      this,
      (...args: unknown[]) => (count('sql BEGIN…COMMIT (db.transaction)'), fn(...args)),
    );
  };
  for (const name of ['pack', 'packUnboundVersionstamp', 'range']) wrap(tuple, name, `tuple.${name}`);
  wrap(CommitNotice.prototype, 'write', 'notice written');
  wrap(SqliteWatcher.prototype, 'check', 'watcher check', 'watcher checked');
  wrap(SqliteBackend.prototype, 'snapshot', 'snapshot', 'snapshot done');
  wrap(SqliteBackend.prototype, 'begin', 'write lock');
  wrap(SqliteBackend.prototype, 'beginWhenFree', 'write lock busy');
  wrap(LockFairness.prototype, 'announce', 'write lock wait announced');
  wrap(LockingBackend.prototype, 'commitGroup', 'commit', 'committed');
  wrap(Consumer.prototype, 'step', 'consumer step');
}

/**
 * HEAPPROF=1: samples every allocation made while calls run (also those collected since), and writes
 * `<dir>/<role>.heapprofile` (open in Chrome DevTools) at the report.
 */
const heapSession = process.env.HEAPPROF ? new inspector.Session() : undefined;
const post = (method: string, params?: object): Promise<unknown> =>
  new Promise((resolve, reject) =>
    heapSession!.post(method, params, (err, res) => (err ? reject(err) : resolve(res))),
  );
async function startHeap(): Promise<void> {
  if (!heapSession) return;
  heapSession.connect();
  await post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}
async function stopHeap(role: string): Promise<void> {
  if (!heapSession) return;
  const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: unknown };
  fs.writeFileSync(path.join(process.env.HEAPPROF!, `${role}.heapprofile`), JSON.stringify(profile));
}

const reset = () => {
  noticeUs.length = 0;
  for (const k of Object.keys(counts)) delete counts[k];
  marks.length = 0;
};

async function child(db: string): Promise<void> {
  instrument();
  const backend = await openSqlite(db, SYNC);
  await Runtime.start(Counter, undefined, { tenant: await backend.openTenant(['profile']) });
  let cpu = process.cpuUsage();
  process.on('message', (m: string) => {
    if (m === 'reset') {
      void startHeap();
      reset();
      cpu = process.cpuUsage();
    }
    if (m === 'report')
      void stopHeap('consumer').then(() =>
        process.send!({ notice: noticeStats(), counts, marks, cpu: process.cpuUsage(cpu) } satisfies Report),
      );
    if (m === 'exit') void Runtime.stopAll().then(() => process.exit(0));
  });
  process.send!('ready');
}

/** Per call, sorted: `{ "sql SELECT …": 3, … }`. */
const perCall = (c: Counts): Counts =>
  Object.fromEntries(
    Object.entries(c)
      .filter(([k]) => !k.endsWith('done') && !k.endsWith('checked') && k !== 'committed')
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, Number((v / N).toFixed(2))]),
  );

/** The most common order of steps across calls, with the median µs since the previous step. */
function timeline(mine: Mark[], theirs: Mark[]): string[] {
  const all = [...mine.map(([k, t]) => [`caller   ${k}`, t] as Mark)]
    .concat(theirs.map(([k, t]) => [`consumer ${k}`, t] as Mark))
    .sort((a, b) => a[1] - b[1]);
  const calls: Mark[][] = [];
  for (const m of all) {
    if (m[0] === 'caller   call') calls.push([]);
    calls.at(-1)?.push(m);
  }
  const bySteps = new Map<string, Mark[][]>();
  for (const c of calls) {
    const steps = c.map((m) => m[0]).join('|');
    bySteps.set(steps, [...(bySteps.get(steps) ?? []), c]);
  }
  const orders = [...bySteps].sort((a, b) => b[1].length - a[1].length);
  const [steps, same] = orders[Math.min(orders.length - 1, Number(process.env.ORDER ?? 0))];
  const lines = [`${same.length} of ${calls.length} calls in this order; median µs since the previous step:`];
  steps.split('|').forEach((step, i) => {
    const gaps = same.map((c) => (i === 0 ? 0 : c[i][1] - c[i - 1][1])).sort((a, b) => a - b);
    lines.push(`${gaps[gaps.length >> 1].toFixed(0).padStart(7)}  ${step}`);
  });
  // The other orders: how often, and how long a call took in each (median µs, call to reply).
  const total = (c: Mark[]) => c[c.length - 1][1] - c[0][1];
  lines.push('orders of steps: calls, median µs, then where they differ from the most common order');
  const first = orders[0][0].split('|');
  for (const [other, cs] of orders.slice(0, 6)) {
    const ts = cs.map(total).sort((a, b) => a - b);
    const diff = other
      .split('|')
      .filter((s, i) => s !== first[i])
      .slice(0, 3);
    lines.push(
      `${String(cs.length).padStart(6)} ${ts[ts.length >> 1].toFixed(0).padStart(6)}  ${diff.join(' / ')}`,
    );
  }
  // The slowest tenth of calls: the step each waited for longest before (count, median gap in µs).
  const slowest = Number(process.env.SLOWEST ?? 0.1); // the fraction of calls looked at
  const slow = [...calls].sort((a, b) => total(b) - total(a)).slice(0, Math.ceil(calls.length * slowest));
  const waits = new Map<string, number[]>();
  for (const c of slow) {
    let at = 1;
    for (let i = 2; i < c.length; i++) if (c[i][1] - c[i - 1][1] > c[at][1] - c[at - 1][1]) at = i;
    const step = `${c[at - 1][0]}  ->  ${c[at][0]}`;
    waits.set(step, [...(waits.get(step) ?? []), c[at][1] - c[at - 1][1]]);
  }
  lines.push(
    `slowest ${slow.length} calls (from ${total(slow[slow.length - 1]).toFixed(0)} µs): their longest gap`,
  );
  for (const [step, gaps] of [...waits].sort((a, b) => b[1].length - a[1].length).slice(0, 8)) {
    gaps.sort((a, b) => a - b);
    lines.push(
      `${String(gaps.length).padStart(6)} ${gaps[gaps.length >> 1].toFixed(0).padStart(6)}  ${step}`,
    );
  }
  return lines;
}

async function main(): Promise<void> {
  instrument();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-xproc-profile-'));
  const db = path.join(dir, 'profile.sqlite');
  const worker = fork(__filename, ['child', db], { execArgv: process.execArgv });
  const ask = (m: string) =>
    new Promise<Report>((resolve) => {
      worker.once('message', (r) => resolve(r as Report));
      worker.send(m);
    });
  try {
    await new Promise((resolve) => worker.once('message', resolve));
    const backend = await openSqlite(db, SYNC);
    const caller = await Runtime.start(Counter, undefined, {
      tenant: await backend.openTenant(['profile']),
      consume: false,
    });
    for (let i = 0; i < 200; i++) await caller.call('get'); // warm up
    worker.send('reset');
    await new Promise((r) => setTimeout(r, 50));
    reset();
    await startHeap();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const times: number[] = [];
    for (let i = 0; i < N; i++) {
      mark('call');
      const t0 = performance.now();
      await caller.call('get');
      times.push(performance.now() - t0);
      mark('replied');
    }
    times.sort((a, b) => a - b);
    const q = (p: number) => Number(times[Math.min(N - 1, Math.floor(p * N))].toFixed(3));
    const ms = performance.now() - started;
    const mine = process.cpuUsage(cpu);
    await stopHeap('caller');
    const theirs = await ask('report');
    const cpuPerCall = (u: NodeJS.CpuUsage) => ({
      user: Math.round(u.user / N),
      system: Math.round(u.system / N),
    });
    console.log(
      JSON.stringify(
        {
          synchronous: SYNC,
          calls: N,
          calls_per_s: Math.round((N * 1000) / ms),
          call_ms: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) },
          load: os.loadavg()[0],
          caller: { cpu_us: cpuPerCall(mine), notice_us: noticeStats(), ...perCall(counts) },
          consumer: { cpu_us: cpuPerCall(theirs.cpu), notice_us: theirs.notice, ...perCall(theirs.counts) },
        },
        null,
        1,
      ),
    );
    if (TIMELINE) console.log(timeline(marks, theirs.marks).join('\n'));
    // DUMP=file: both processes' marks, for analysis elsewhere ([step, µs since the epoch] each).
    if (process.env.DUMP) fs.writeFileSync(process.env.DUMP, JSON.stringify({ caller: marks, consumer: theirs.marks }));
    await Runtime.stopAll();
    await backend.close();
    worker.send('exit');
    await new Promise((r) => worker.once('exit', r));
  } finally {
    worker.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'child') void child(process.argv[3]);
else void main();
