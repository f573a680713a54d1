/**
 * Durable timers and outbox casts on the SQLite backend.
 *
 *   npm run bench -- --only timers [--json]
 *
 * Keys:
 * - timers.sqlite.fire_late_p50_ms / _p99_ms  10,000 timers over 100 servers, due within 2 s, at
 *                                     synchronous=FULL, after a warm-up round of 2,000 (so V8 has compiled
 *                                     the paths: a running process's steady state): (fired − due), p99
 *                                     goal ≤ 20 ms. Fired: the
 *                                     server's handler starts on the timer's message (taken from the
 *                                     queue, so after the commit that enqueued it), as a timer fires for
 *                                     the code that set it; _handled_ the same until that handling committed
 * - timers.sqlite.fire_cpu_us_per_timer  this process's CPU time from the first due until every timer
 *                                     was handled, ÷ 10,000 (firing and handling are CPU-bound: when the
 *                                     process gets less CPU than that, lateness grows with the backlog)
 * - timers.sqlite.fired / _fired_twice / _fired_early  every timer handled, none twice (no crashes
 *                                     here), none started before its due
 * - timers.pending_100k_rss_mb / _ratio  RSS of a process consuming 100 servers that hold 100,000
 *                                     pending timers set by another process, and ÷ the same process
 *                                     before them (goal ≤ 1.2); _heap_ratio the same for the JS heap;
 *                                     _clock_timers how many clock timers they cost (one per tenant);
 *                                     timers.writer_100k_rss_* the process that wrote them (see timers-rss.ts)
 * - server.sqlite.outbox_cast_ratio   msgs/s handling a cast whose handler ctx.casts to another server ÷
 *                                     handling one that does not (goal ≥ 0.7); _plain/_outbox_msgs_per_s
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DurableServer, Init, OnCast } from '../src/decorators';
import { noreply, ok } from '../src/returns';
import type { HandlerContext } from '../src/runtime/context/handler-context';
import { Runtime } from '../src/facade/runtime';
import type { ServerRef } from '../src/runtime/server-ref';
import { openSqlite } from '../test/helpers/runtime/sqlite';
import { Alarm, alarmHooks } from '../test/timers/fixtures';
import { pendingRss } from './timers-rss';

const round = (x: number, digits = 3) => Number(x.toFixed(digits));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** Arms `perServer` timers on each server, due at random within `spreadMs` from `base`. */
async function armRound(
  refs: Array<Pick<ServerRef, 'call'>>,
  tag: string,
  perServer: number,
  base: number,
  spreadMs: number,
) {
  for (const [i, r] of refs.entries())
    await r.call({
      type: 'armMany',
      prefix: `${tag}${i}-`,
      dues: Array.from({ length: perServer }, () => base + Math.floor(Math.random() * spreadMs)),
    });
  if (Date.now() > base)
    throw new Error('arming the timers took longer than planned: the figure would be wrong');
}

export async function fireLate(dir: string): Promise<Record<string, number>> {
  const backend = await openSqlite(path.join(dir, 'fire.sqlite'), 'full');
  const late = new Map<string, number>(); // fired: the handler first starts on the timer's message
  const handled = new Map<string, number>(); // that handling committed
  let twice = 0;
  alarmHooks.keepState = true;
  alarmHooks.onHandle = (m) => {
    if (!late.has(m.tag)) late.set(m.tag, Date.now() - (m.due ?? 0));
  };
  alarmHooks.onFired = (m) => {
    if (handled.has(m.tag)) twice++;
    else handled.set(m.tag, Date.now() - (m.due ?? 0));
  };
  try {
    const tenant = await backend.openTenant(['bench-fire']);
    const refs = [];
    for (let i = 0; i < 100; i++) refs.push(await Runtime.start(Alarm, `f${i}`, { tenant }));
    // Warm-up (not measured): 2,000 timers over the same servers, so that the figure is the steady
    // state of a running process, not V8 compiling the fire and handling paths on their first use.
    const warm = Date.now() + 1000;
    await armRound(refs, 'w', 20, warm, 400);
    while (handled.size < 2000 && Date.now() < warm + 20_000) await sleep(20);
    await sleep(100);
    late.clear();
    handled.clear();
    twice = 0;
    const base = Date.now() + 3000;
    await armRound(refs, 's', 100, base, 2000);
    const until = base + 30_000;
    await sleep(base - Date.now());
    const cpu0 = process.cpuUsage();
    while (handled.size < 10_000 && Date.now() < until) await sleep(20);
    const cpu = process.cpuUsage(cpu0);
    await sleep(500); // a second firing would show up now
    const xs = [...late.values()];
    const hs = [...handled.values()];
    return {
      'timers.sqlite.fire_late_p50_ms': pct(xs, 50),
      'timers.sqlite.fire_late_p99_ms': pct(xs, 99),
      'timers.sqlite.fire_late_max_ms': Math.max(...xs),
      'timers.sqlite.fire_handled_p50_ms': pct(hs, 50),
      'timers.sqlite.fire_handled_p99_ms': pct(hs, 99),
      'timers.sqlite.fire_cpu_us_per_timer': Math.round((cpu.user + cpu.system) / handled.size),
      'timers.sqlite.fired': handled.size,
      'timers.sqlite.fired_twice': twice,
      'timers.sqlite.fired_early': xs.filter((x) => x < 0).length,
    };
  } finally {
    alarmHooks.onHandle = undefined;
    alarmHooks.onFired = undefined;
    alarmHooks.keepState = undefined;
    await Runtime.stopAll();
    await backend.close();
  }
}

@DurableServer({ name: 'bench-relay' })
class Relay {
  @Init() init(id: string) {
    return ok(0, ['bench-relay', id]);
  }
  @OnCast('plain') plain(_m: unknown, n: number) {
    return noreply(n + 1);
  }
  @OnCast('relay') relay(_m: unknown, n: number, ctx: HandlerContext) {
    ctx.cast(['bench-relay', 'sink'], 'relayed');
    return noreply(n + 1);
  }
}

/** Messages per second one consumer handles from a queue filled beforehand with `n` of `msg`. */
async function drainRate(dir: string, run: number, msg: string, n: number): Promise<number> {
  const backend = await openSqlite(path.join(dir, `outbox-${run}.sqlite`), 'full');
  try {
    const tenant = await backend.openTenant(['bench-outbox']);
    const filler = await Runtime.start(Relay, 'src', { tenant, consume: false });
    for (let i = 0; i < n; i += 500) await filler.castMany(Array.from({ length: 500 }, () => msg));
    const t0 = performance.now();
    const ref = await Runtime.start(Relay, 'src', { tenant });
    while ((await ref.queueLength()) > 0) await sleep(2);
    const rate = (n * 1000) / (performance.now() - t0);
    await Runtime.stopAll();
    return rate;
  } finally {
    await backend.close();
  }
}

async function outboxRatio(dir: string): Promise<Record<string, number>> {
  const n = 5000;
  await drainRate(dir, 0, 'plain', 1000); // warm up
  const plain: number[] = [];
  const outbox: number[] = [];
  for (let i = 0; i < 3; i++) {
    plain.push(await drainRate(dir, 1 + 2 * i, 'plain', n));
    outbox.push(await drainRate(dir, 2 + 2 * i, 'relay', n));
  }
  const p = Math.max(...plain);
  const o = Math.max(...outbox);
  return {
    'server.sqlite.plain_msgs_per_s': Math.round(p),
    'server.sqlite.outbox_msgs_per_s': Math.round(o),
    'server.sqlite.outbox_cast_ratio': round(o / p),
  };
}

export async function benchTimers(): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-bench-timers-'));
  try {
    return { ...(await fireLate(dir)), ...(await pendingRss(dir)), ...(await outboxRatio(dir)) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module)
  benchTimers().then(
    (f) => (console.log(JSON.stringify(f)), process.exit(0)),
    (e) => (console.error(e), process.exit(1)),
  );
