/**
 * Child of bench/timers-rss.ts (run as transpiled JavaScript, with --expose-gc), in one of two roles:
 * - ROLE=holder: consumes 100 servers; answers its RSS and JS heap before they have timers ('base'),
 *   then, told 'armed' (another process set 100,000 timers on them), once its scheduler knows of every
 *   server's due: RSS, heap, clock timers and the pending count ('loaded'). It never writes a timer,
 *   so it shows what holding them pending costs.
 * - ROLE=writer: sets 1,000 timers on each of those servers through `ref.castAfter` (not consuming
 *   them) and answers its own RSS before and after: what writing them costs (SQLite's page cache).
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import { openBackend } from '../src/backend/open-backend';
import { Runtime } from '../src/facade/runtime';
import { systemClock } from '../src/kernel/clock';
import { TimerScheduler } from '../src/timers/scheduler';
import { Alarm } from '../test/timers/fixtures';

const SERVERS = 100;
const PER_SERVER = 1000;
const HOUR = 3_600_000;

const gc = () => (global as { gc?: () => void }).gc?.();
/**
 * RSS, JS heap, and anonymous memory (Linux: /proc/self/smaps_rollup; 0 elsewhere). RSS also counts
 * file-backed pages such as node's own binary, which the kernel drops when cold (this machine runs
 * DAMON with a pageout scheme), so RSS can shrink between two readings; anonymous memory is what the
 * process allocated.
 */
function memory(): { rss: number; heapUsed: number; anon: number } {
  gc();
  const { rss, heapUsed } = process.memoryUsage();
  let anon = 0;
  try {
    const m = /^Anonymous:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'));
    anon = m ? Number(m[1]) * 1024 : 0;
  } catch {
    // not Linux
  }
  return { rss, heapUsed, anon };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const send = (m: object) => new Promise((r) => process.send!(m, r));

async function holder(): Promise<void> {
  const backend = await openBackend(`sqlite:${process.env.TIMER_DB}`, { sqlite: { synchronous: 'normal' } });
  const tenant = await backend.openTenant(['bench-rss']);
  const refs = [];
  for (let i = 0; i < SERVERS; i++) refs.push(await Runtime.start(Alarm, `r${i}`, { tenant }));
  for (const r of refs) await r.call('get');
  await sleep(200);
  const armed = new Promise((r) => process.once('message', r));
  await send({ phase: 'base', ...memory() });
  await armed;
  const scheduler = TimerScheduler.of(tenant, systemClock);
  const until = Date.now() + 60_000;
  while (scheduler.size.servers < SERVERS && Date.now() < until) await sleep(50);
  await sleep(500);
  const loaded = memory();
  const clockTimers = scheduler.size.clockTimers;
  let pending = 0;
  for (const r of refs) pending += (await r.timers()).length;
  await send({ phase: 'loaded', ...loaded, clockTimers, servers: scheduler.size.servers, pending });
  await Runtime.stopAll();
  await backend.close();
}

async function writer(): Promise<void> {
  const backend = await openBackend(`sqlite:${process.env.TIMER_DB}`, { sqlite: { synchronous: 'full' } });
  const tenant = await backend.openTenant(['bench-rss']);
  const refs = [];
  for (let i = 0; i < SERVERS; i++)
    refs.push(await Runtime.start(Alarm, `r${i}`, { tenant, consume: false }));
  const base = memory();
  // One server's timers at once: concurrent transactions share a commit (group commit at FULL).
  for (const [i, r] of refs.entries())
    await Promise.all(
      Array.from({ length: PER_SERVER }, (_, j) =>
        r.castAfter(HOUR + j, { type: 'fire', tag: `t${i}-${j}` }, { key: `t${i}-${j}` }),
      ),
    );
  await sleep(500);
  await send({ phase: 'written', base, loaded: memory() });
  await Runtime.stopAll();
  await backend.close();
}

(process.env.ROLE === 'writer' ? writer() : holder()).then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
