/**
 * Child of bench/timers.ts (run as transpiled JavaScript, with --expose-gc): RSS and JS heap of a
 * process that consumes 100 servers, before and after they hold 100,000 pending timers, and how many
 * clock timers it holds for them. Answers one IPC message.
 */
import 'reflect-metadata';
import { openBackend } from '../src/backend/open-backend';
import { Runtime } from '../src/facade/runtime';
import { systemClock } from '../src/kernel/clock';
import { TimerScheduler } from '../src/timers/scheduler';
import { Alarm } from '../test/timers/fixtures';

const SERVERS = 100;
const PER_SERVER = 1000;
const PER_TX = Number(process.env.TIMERS_PER_TX ?? 100);

const gc = () => (global as { gc?: () => void }).gc?.();
const rss = (): number => (gc(), process.memoryUsage().rss);
const heap = (): number => (gc(), process.memoryUsage().heapUsed);

async function main(): Promise<void> {
  const backend = await openBackend(`sqlite:${process.env.TIMER_DB}`, { sqlite: { synchronous: 'normal' } });
  const tenant = await backend.openTenant(['bench-rss']);
  const refs = [];
  for (let i = 0; i < SERVERS; i++) refs.push(await Runtime.start(Alarm, `r${i}`, { tenant }));
  for (const r of refs) await r.call('get');
  await new Promise((r) => setTimeout(r, 200));
  const base = rss();
  const baseHeap = heap();
  const hour = Date.now() + 3_600_000;
  for (const [i, r] of refs.entries())
    for (let c = 0; c < PER_SERVER; c += PER_TX)
      await r.call({
        type: 'armMany',
        prefix: `t${i}-${c}-`,
        dues: Array.from({ length: PER_TX }, (_, j) => hour + c + j),
      });
  await new Promise((r) => setTimeout(r, 500));
  const loaded = rss();
  const loadedHeap = heap();
  const pending = (await refs[0].timers()).length * SERVERS;
  // The clock timers the scheduler holds for them (one per tenant and clock, whatever the count).
  const clockTimers = TimerScheduler.of(tenant, systemClock).size.clockTimers;
  process.send!({ base, loaded, baseHeap, loadedHeap, clockTimers, pending });
  await Runtime.stopAll();
  await backend.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
