/**
 * A child process for the multi-process timer tests, run by fork with ts-node. TIMER_DB is the SQLite
 * file; TIMER_MODE says what to do:
 * - 'arm-and-leave': start Alarm 'down' (consuming), have its handler arm timers c (100 ms), b (200 ms)
 *   and a (300 ms), then stop everything and exit before any falls due.
 * - 'consume': consume Alarm TIMER_ID; a 'fire' whose tag is 'stall' says { type: 'stalling' } and then
 *   waits inside its handler (its transaction not committed) so the parent can kill -9 it there. With
 *   TIMER_FAIL_FIRST=1 its first run throws instead (a timer offered to the idle consumer is then
 *   declined and fired into the queue: the stall comes while it is handled from there).
 */
import 'reflect-metadata';
import { openBackend } from '../../src/backend/open-backend';
import { Runtime } from '../../src/facade/runtime';
import { Alarm, alarmHooks } from './fixtures';

const send = (m: unknown) => process.connected && process.send!(m);

async function main(): Promise<void> {
  const backend = await openBackend(`sqlite:${process.env.TIMER_DB}`, { sqlite: { synchronous: 'normal' } });
  const tenant = await backend.openTenant(['timers-mp']);
  if (process.env.TIMER_MODE === 'arm-and-leave') {
    const ref = await Runtime.start(Alarm, 'down', { tenant });
    for (const [tag, ms] of [
      ['a', 300],
      ['b', 200],
      ['c', 100],
    ] as const)
      await ref.call({ type: 'arm', ms, tag, key: tag });
    await Runtime.stopAll();
    await backend.close();
    send({ type: 'left' });
    return;
  }
  let failFirst = process.env.TIMER_FAIL_FIRST === '1';
  alarmHooks.beforeFire = async (tag) => {
    if (tag !== 'stall') return;
    if (failFirst) {
      failFirst = false;
      throw new Error('the first run fails');
    }
    send({ type: 'stalling' });
    await new Promise((r) => setTimeout(r, 4000));
  };
  const ref = await Runtime.start(Alarm, process.env.TIMER_ID, { tenant });
  ref.events$.subscribe((e) => e.type === 'handled' && send({ type: 'handled' }));
  send({ type: 'ready' });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
