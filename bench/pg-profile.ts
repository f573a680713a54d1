/**
 * Where a PostgreSQL cross-process call's CPU and round trips go (issue #9): N sequential calls from
 * this process (consume: false) to a Counter consumed in a child process, on a PostgreSQL started from
 * npm (or DGEN_TEST_POSTGRES_URL). Per call, in each process: CPU µs (process.cpuUsage, and per
 * thread from /proc), round trips, commits, watcher reads, and what went to the server: socket writes
 * (write/writev system calls), bytes, µs spent inside them, statements (Bind and Query messages).
 *
 *   npx ts-node --transpile-only bench/pg-profile.ts    # N=1000
 *   PROF=1 …     a CPU profile of the measured calls of each process: .prof/caller|consumer.cpuprofile
 *   TIMELINE=1 … three calls' socket writes and reads, both processes on one clock, statements named
 *   PGSS=1 …     the server's time per call by statement (pg_stat_statements, preloaded; EXECUTEs count
 *                under their PREPARE's text), on stderr
 *
 * Counts are exact; CPU and times include whatever else loads the machine: compare runs side by side.
 */
import 'reflect-metadata';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import postgres from 'postgres';
import { openBackend } from '../src/backend/open-backend';
import { postgresCounters } from '../src/backend/postgres/counters';
import { Runtime } from '../src/facade/runtime';
import { Counter } from '../test/helpers/runtime/servers';
import { serverTicks } from './postgres-server-cpu';
import { startPostgres } from '../test/helpers/postgres/server';
import { runMain } from './run-main';

const N = Number(process.env.N ?? 1000);
const ROOT = path.resolve(__dirname, '..');
/** With PROF=1: a CPU profile of the measured calls only, written to .prof/<role>.cpuprofile. */
const PROF = process.env.PROF === '1';
const session = new inspector.Session();
const post = (method: string, params?: object) =>
  new Promise<unknown>((resolve, reject) =>
    session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))),
  );
async function profStart(): Promise<void> {
  if (!PROF) return;
  session.connect();
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
}
async function profStop(role: string): Promise<void> {
  if (!PROF) return;
  const { profile } = (await post('Profiler.stop')) as { profile: unknown };
  fs.mkdirSync(path.join(ROOT, '.prof'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, '.prof', `${role}.cpuprofile`), JSON.stringify(profile));
  session.disconnect();
}

/** Socket writes: how many, their bytes, and the µs spent inside them (the syscall, on loopback the delivery too). */
const writes = { n: 0, bytes: 0, us: 0, statements: 0 };
// Counted where the socket hands data to the system (one write or writev each), not at write(): a
// corked socket's writes go out together.
type Generic = (this: net.Socket, writev: boolean, data: unknown, ...rest: unknown[]) => unknown;
const proto = net.Socket.prototype as unknown as { _writeGeneric: Generic };
const writeGeneric = proto._writeGeneric;
proto._writeGeneric = function (this: net.Socket, writev, data, ...rest) {
  const t = performance.now();
  const chunks = writev ? (data as Array<{ chunk: Buffer }>).map((d) => d.chunk) : [data as Buffer];
  writes.n++;
  for (const chunk of chunks) {
    writes.bytes += chunk.length;
    // Statements sent: Bind (extended protocol) and Query (simple) messages.
    for (let i = 0; i + 5 <= chunk.length; i += 1 + chunk.readInt32BE(i + 1))
      if (chunk[i] === 0x42 || chunk[i] === 0x51) writes.statements++;
    record('w', this, chunk);
  }
  const r = writeGeneric.call(this, writev, data, ...rest);
  writes.us += (performance.now() - t) * 1000;
  return r;
};
/** With TIMELINE=1: every socket write and read as [µs since epoch, 'w'|'r', port, message types]. */
const TIMELINE = process.env.TIMELINE === '1';
type Ev = [number, string, number, string];
const events: Ev[] = [];
/** Prepared statement names → their text's start, from the Parse messages this process sent. */
const named = new Map<string, string>();
const cstr = (b: Buffer, at: number): [string, number] => {
  const end = b.indexOf(0, at);
  return [b.toString('latin1', at, end), end + 1];
};
const types = (b: Buffer, out: boolean): string => {
  let t = '';
  let i = 0;
  while (i + 5 <= b.length) {
    const len = b.readInt32BE(i + 1);
    if (len < 4) return t + '?';
    const c = String.fromCharCode(b[i]);
    if (out && c === 'P') {
      const [name, at] = cstr(b, i + 5);
      const [text] = cstr(b, at);
      named.set(name, text.replace(/"[^"]*"\./g, '').slice(0, 60));
      t += `P[${named.get(name)}]`;
    } else if (out && c === 'B') {
      const [, at] = cstr(b, i + 5);
      const [stmt] = cstr(b, at);
      t += `B[${named.get(stmt) ?? stmt}]`;
    } else if (out && c === 'Q')
      t += `Q[${b
        .subarray(i + 5, Math.min(i + 1 + len, i + 5 + 40))
        .toString('latin1')
        .replace(/"[^"]*"\./g, '')}]`;
    else if (!(out && (c === 'E' || c === 'S'))) t += c;
    i += 1 + len;
  }
  return i < b.length ? `${t}+${b.length - i}` : t;
};
const record = (kind: string, sock: net.Socket, chunk: unknown) => {
  if (!TIMELINE || !Buffer.isBuffer(chunk)) return;
  events.push([
    Math.round((performance.timeOrigin + performance.now()) * 1000),
    kind,
    sock.localPort ?? 0,
    types(chunk, kind === 'w'),
  ]);
};
const socketEmit = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (this: net.Socket, ev: string | symbol, ...args: unknown[]) {
  if (ev === 'data') record('r', this, args[0]);
  return (socketEmit as (...a: unknown[]) => boolean).call(this, ev, ...args);
} as typeof socketEmit;
const countersNow = () => ({
  ...postgresCounters,
  writes: writes.n,
  writeBytes: writes.bytes,
  writeUs: writes.us,
  statements: writes.statements,
});

type Report = {
  events?: Ev[];
  cpu: NodeJS.CpuUsage;
  counters: Record<string, number>;
  threads: Record<string, number>;
};

/** CPU ticks (1/100 s) of each of this process's threads, by thread name. */
function threadTicks(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of fs.readdirSync('/proc/self/task')) {
    const stat = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out[name] = (out[name] ?? 0) + Number(f[11]) + Number(f[12]);
  }
  return out;
}
const threadsSince = (t0: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(threadTicks())
      .map(([k, v]) => [k, v - (t0[k] ?? 0)])
      .filter(([, v]) => v !== 0),
  );

async function child(db: string): Promise<void> {
  const [url, schema] = db.split('#');
  const backend = await openBackend(url, { postgres: { schema, poolSize: 8 } });
  await Runtime.start(Counter, undefined, { tenant: await backend.openTenant(['profile']) });
  let cpu = process.cpuUsage();
  let c0 = countersNow();
  let t0 = threadTicks();
  process.on('message', async (m: string) => {
    if (m === 'reset') {
      await profStart();
      cpu = process.cpuUsage();
      c0 = countersNow();
      t0 = threadTicks();
      events.length = 0;
      process.send!('ok');
    }
    if (m === 'report') {
      await profStop('consumer');
      const counters = Object.fromEntries(
        Object.entries(countersNow()).map(([k, v]) => [k, v - (c0 as Record<string, number>)[k]]),
      );
      process.send!({
        cpu: process.cpuUsage(cpu),
        counters,
        threads: threadsSince(t0),
        events,
      } satisfies Report);
    }
    if (m === 'exit')
      void Runtime.stopAll()
        .then(() => backend.close())
        .then(() => process.exit(0));
  });
  process.send!('ready');
}

const perCall = (r: Report) => ({
  cpu_us: Math.round((r.cpu.user + r.cpu.system) / N),
  user_us: Math.round(r.cpu.user / N),
  thread_us: Object.fromEntries(Object.entries(r.threads).map(([k, v]) => [k, Math.round((v * 10000) / N)])),
  ...Object.fromEntries(Object.entries(r.counters).map(([k, v]) => [k, Number((v / N).toFixed(2))])),
});

async function main(): Promise<void> {
  const PGSS = process.env.PGSS === '1';
  const server = process.env.DGEN_TEST_POSTGRES_URL
    ? undefined
    : await startPostgres({
        maxConnections: 50,
        settings: PGSS
          ? {
              shared_preload_libraries: 'pg_stat_statements',
              'pg_stat_statements.track': 'all',
              'pg_stat_statements.track_planning': 'on',
            }
          : {},
      });
  const url = process.env.DGEN_TEST_POSTGRES_URL ?? server!.url;
  const schema = `pgprof_${process.pid}`;
  const worker = fork(__filename, ['child', `${url}#${schema}`], { execArgv: process.execArgv });
  const ask = <T>(m: string) =>
    new Promise<T>((resolve) => {
      worker.once('message', (r) => resolve(r as T));
      worker.send(m);
    });
  try {
    await new Promise((resolve) => worker.once('message', resolve));
    const backend = await openBackend(url, { postgres: { schema, poolSize: 8 } });
    const caller = await Runtime.start(Counter, undefined, {
      tenant: await backend.openTenant(['profile']),
      consume: false,
    });
    for (let i = 0; i < 300; i++) await caller.call('get'); // warm up
    await ask('reset');
    await profStart();
    events.length = 0;
    const c0 = countersNow();
    const cpu = process.cpuUsage();
    const t0 = threadTicks();
    const s0 = server ? serverTicks(server.dataDir) : 0;
    const times: number[] = [];
    const started = performance.now();
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      if (TIMELINE) events.push([Math.round((performance.timeOrigin + t) * 1000), 'CALL', 0, '']);
      await caller.call('get');
      if (TIMELINE)
        events.push([Math.round((performance.timeOrigin + performance.now()) * 1000), 'DONE', 0, '']);
      times.push(performance.now() - t);
    }
    const ms = performance.now() - started;
    const serverUs = server ? Math.round(((serverTicks(server.dataDir) - s0) * 10000) / N) : 0;
    if (PGSS) {
      const sql = postgres(url, { max: 1, onnotice: () => undefined });
      await sql.unsafe('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      const rows = await sql.unsafe(
        `SELECT calls, round((total_exec_time + total_plan_time)::numeric * 1000 / ${N}) AS us_per_call, round(total_plan_time::numeric * 1000 / ${N}) AS plan_us, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS q FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 25`,
      );
      for (const r of rows)
        console.error(
          String(r.us_per_call).padStart(6),
          String(r.plan_us).padStart(5),
          String(r.calls).padStart(7),
          r.q,
        );
      await sql.end();
    }
    await profStop('caller');
    const mine: Report = {
      cpu: process.cpuUsage(cpu),
      threads: threadsSince(t0),
      counters: Object.fromEntries(
        Object.entries(countersNow()).map(([k, v]) => [k, v - (c0 as Record<string, number>)[k]]),
      ),
    };
    const theirs = await ask<Report>('report');
    if (TIMELINE) {
      const all = [
        ...events.map((e) => ['caller  ', ...e] as const),
        ...(theirs.events ?? []).map((e) => ['consumer', ...e] as const),
      ].sort((a, b) => a[1] - b[1]);
      const starts = all.flatMap((e, i) => (e[2] === 'CALL' ? [i] : []));
      for (const c of [N >> 1, (N >> 1) + 1, (N >> 1) + 2]) {
        const seq = all.slice(starts[c], starts[c + 1]);
        console.log(`--- call ${c}: ${times[c].toFixed(2)} ms`);
        let prev = seq[0][1];
        for (const [who, t, kind, port, what] of seq) {
          console.log(
            `${String(t - seq[0][1]).padStart(6)} +${String(t - prev).padStart(5)}  ${who} ${kind} ${port} ${kind === 'w' ? what.split('B[').join('\n' + ' '.repeat(40) + 'B[') : what.slice(0, 80)}`,
          );
          prev = t;
        }
      }
    }
    times.sort((a, b) => a - b);
    console.log(
      JSON.stringify(
        {
          calls: N,
          calls_per_s: Math.round((N * 1000) / ms),
          p50_ms: Number(times[N >> 1].toFixed(2)),
          p99_ms: Number(times[Math.floor(N * 0.99)].toFixed(2)),
          load: os.loadavg()[0],
          // exited backends' CPU is not counted: the pools keep their connections for the whole run
          server_cpu_us: server ? serverUs : undefined,
          caller: perCall(mine),
          consumer: perCall(theirs),
        },
        null,
        1,
      ),
    );
    await Runtime.stopAll();
    await backend.close();
    await ask('exit').catch(() => undefined);
  } finally {
    worker.kill();
    await server?.destroy();
  }
}

if (process.argv[2] === 'child') void child(process.argv[3]);
else runMain(main);
