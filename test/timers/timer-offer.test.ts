/**
 * Due timers offered straight to an idle consumer (TimerOffer): handled without going through the
 * queue, and — whenever something gets in the way — fired into the queue as ever, never lost, never
 * handled twice, never ahead of a message that was queued first.
 */
import 'reflect-metadata';
import { decodeInt64LE } from '../../src/backend/common/int64';
import { Runtime } from '../../src/facade/runtime';
import { Consumer } from '../../src/runtime/consumer';
import { ServerKeys } from '../../src/runtime/server-keys';
import { freshTenantEachTest, runtimeBackends, waitFor } from '../runtime/backends';
import { Alarm, alarmHooks, type AlarmState } from './fixtures';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(runtimeBackends)('timers offered to an idle consumer on %s', (_name, make) => {
  const fx = freshTenantEachTest(make, 'offer');
  afterEach(() => {
    alarmHooks.beforeFire = undefined;
  });

  const fired = async (ref: { readState(): Promise<unknown> }) =>
    ((await ref.readState()) as AlarmState).fired;
  /** How many items were ever pushed to the server's queue (its push counter). */
  const pushes = async (id: string) =>
    fx.tenant.read(async (tx) => decodeInt64LE(await tx.get(new ServerKeys(['alarm', id]).pushCounter)));

  /**
   * A server whose consumer waits on an empty queue. Timers below fall due 1 s after they are set,
   * when the consumer is idle again after the wake-up that setting them caused.
   */
  const idleServer = async (id: string) => {
    const ref = await Runtime.start(Alarm, id, { tenant: fx.tenant });
    await ref.call('get');
    return ref;
  };

  test('an idle consumer handles a due timer straight from the timer index: its queue is not used', async () => {
    const ref = await idleServer('o1');
    await ref.castAfter(1000, { type: 'fire', tag: 'a' }, { key: 'a' });
    await sleep(500); // the consumer has handled the wake-up of setting it: idle again
    const before = await pushes('o1');
    await waitFor(async () => (await fired(ref)).length === 1);
    expect(await fired(ref)).toEqual(['a']);
    expect(await pushes('o1')).toBe(before); // nothing was enqueued for it
    expect(await ref.timers()).toEqual([]);
  });

  test('a message queued while an offered timer is being handled goes first; the timer follows, once', async () => {
    const ref = await idleServer('o2');
    let runs = 0;
    alarmHooks.beforeFire = async (tag) => {
      if (tag !== 'a' || runs++ > 0) return;
      await ref.cast({ type: 'fire', tag: 'b' }); // lands before the offered handling commits
    };
    await ref.castAfter(1000, { type: 'fire', tag: 'a' }, { key: 'a' });
    await waitFor(async () => (await fired(ref)).length === 2);
    await sleep(100);
    expect(await fired(ref)).toEqual(['b', 'a']);
    expect(runs).toBe(2); // the offered run was not written; the queued one was
    expect(await ref.timers()).toEqual([]);
  });

  test('a consumer busy when a timer falls due takes it in its next step: the queue is not used', async () => {
    const ref = await idleServer('o6');
    alarmHooks.beforeFire = async (tag) => {
      if (tag === 'slow') await sleep(800); // the timer falls due meanwhile
    };
    await ref.castAfter(1000, { type: 'fire', tag: 'due' }, { key: 'due' });
    await sleep(500);
    await ref.cast({ type: 'fire', tag: 'slow' });
    const before = await pushes('o6'); // the cast above counted
    await waitFor(async () => (await fired(ref)).length === 2);
    expect(await fired(ref)).toEqual(['slow', 'due']);
    expect(await pushes('o6')).toBe(before); // the timer was not enqueued
    expect(await ref.timers()).toEqual([]);
  });

  test('messages queued while it is busy go first, and the timer follows straight from the index', async () => {
    const ref = await idleServer('o7');
    alarmHooks.beforeFire = async (tag) => {
      if (tag === 'slow') await sleep(800); // the timer falls due meanwhile, and 'after' is queued
    };
    await ref.castAfter(1000, { type: 'fire', tag: 'due' }, { key: 'due' });
    await sleep(500);
    await ref.cast({ type: 'fire', tag: 'slow' });
    await sleep(200);
    await ref.cast({ type: 'fire', tag: 'after' });
    const before = await pushes('o7');
    await waitFor(async () => (await fired(ref)).length === 3);
    expect(await fired(ref)).toEqual(['slow', 'after', 'due']);
    expect(await pushes('o7')).toBe(before); // the timer was not enqueued
  });

  test('a queue that outlasts a few batches does not hold the timer back: it is fired into the queue', async () => {
    const ref = await Runtime.start(Alarm, 'o8', { tenant: fx.tenant, maxBatch: 1 });
    await ref.call('get');
    alarmHooks.beforeFire = async (tag) => {
      if (tag === 'slow') await sleep(800); // the timer falls due meanwhile; five messages wait behind
    };
    await ref.castAfter(1000, { type: 'fire', tag: 'due' }, { key: 'due' });
    await sleep(500);
    await ref.cast({ type: 'fire', tag: 'slow' });
    await sleep(200);
    await ref.castMany([1, 2, 3, 4, 5].map((i) => ({ type: 'fire', tag: `q${i}` })));
    const before = await pushes('o8');
    await waitFor(async () => (await fired(ref)).length === 7);
    // passed on three times (q1, q2, q3), then declined at q4 and fired behind q5
    expect(await fired(ref)).toEqual(['slow', 'q1', 'q2', 'q3', 'q4', 'q5', 'due']);
    expect(await pushes('o8')).toBe(before + 1n);
    expect(await ref.timers()).toEqual([]);
  });

  test('a timer replaced while its offered handling runs is handled as replaced, not as it was', async () => {
    const ref = await idleServer('o3');
    alarmHooks.beforeFire = async (tag) => {
      if (tag === 'old') await ref.castAfter(0, { type: 'fire', tag: 'new' }, { key: 'k' });
    };
    await ref.castAfter(1000, { type: 'fire', tag: 'old' }, { key: 'k' });
    await waitFor(async () => (await fired(ref)).length === 1);
    await sleep(100);
    expect(await fired(ref)).toEqual(['new']);
    expect(await ref.timers()).toEqual([]);
  });

  test('a timer cancelled while its offered handling runs is not handled', async () => {
    const ref = await idleServer('o4');
    let cancelled: boolean | undefined;
    alarmHooks.beforeFire = async (tag) => {
      if (tag === 'gone') cancelled ??= await ref.cancelTimer('k');
    };
    await ref.castAfter(1000, { type: 'fire', tag: 'gone' }, { key: 'k' });
    await ref.castAfter(1200, { type: 'fire', tag: 'after' }, { key: 'after' });
    await waitFor(async () => (await fired(ref)).length === 1);
    await sleep(100);
    expect(cancelled).toBe(true);
    expect(await fired(ref)).toEqual(['after']);
  });

  test('a handler that throws on an offered timer: the timer goes through the queue, where its attempts count', async () => {
    const ref = await Runtime.start(Alarm, 'o5', { tenant: fx.tenant, maxAttempts: 2 });
    await ref.call('get');
    let runs = 0;
    alarmHooks.beforeFire = async (tag) => {
      if (tag !== 'bad') return;
      runs++;
      throw new Error('refused');
    };
    const before = await pushes('o5');
    await ref.castAfter(1000, { type: 'fire', tag: 'bad' }, { key: 'bad' });
    await waitFor(async () => (await ref.deadLetters()).length === 1);
    expect((await ref.deadLetters())[0].msg).toEqual({ type: 'fire', tag: 'bad' });
    expect(runs).toBe(3); // offered once, then maxAttempts from the queue
    expect(await pushes('o5')).toBeGreaterThan(before);
    expect(await fired(ref)).toEqual([]);
  });
  test('the timers an offered handling read ahead are handled by the next offers without a snapshot read, once each, in due order', async () => {
    const ref = await idleServer('o8');
    // Counts step 1's snapshot reads (Consumer.read), calling through.
    const read = jest.spyOn(Consumer.prototype as unknown as { read: () => Promise<unknown> }, 'read');
    try {
      await ref.castAfter(1000, { type: 'fire', tag: 'a' }, { key: 'a' });
      await ref.castAfter(1300, { type: 'fire', tag: 'b' }, { key: 'b' });
      await ref.castAfter(1600, { type: 'fire', tag: 'c' }, { key: 'c' });
      const before = await pushes('o8');
      await waitFor(async () => (await fired(ref)).length === 1);
      const readsAfterFirst = read.mock.calls.length;
      await waitFor(async () => (await fired(ref)).length === 3);
      await sleep(100);
      expect(await fired(ref)).toEqual(['a', 'b', 'c']);
      expect(read.mock.calls.length).toBe(readsAfterFirst); // b and c: read ahead, no step 1
      expect(await pushes('o8')).toBe(before); // no timer was queued
      expect(await ref.timers()).toEqual([]);
    } finally {
      read.mockRestore();
    }
  });

  test('a timer read ahead and then replaced is handled as replaced: the stale read is caught and read again', async () => {
    const ref = await idleServer('o9');
    const runs: string[] = [];
    alarmHooks.beforeFire = (tag) => void runs.push(tag);
    await ref.castAfter(1000, { type: 'fire', tag: 'a' }, { key: 'a' });
    await ref.castAfter(1400, { type: 'fire', tag: 'b' }, { key: 'b' });
    await waitFor(async () => (await fired(ref)).length === 1); // a handled; b read ahead
    await ref.castAfter(600, { type: 'fire', tag: 'b2' }, { key: 'b' }); // b replaced, due later
    await waitFor(async () => (await fired(ref)).length === 2);
    await sleep(100);
    expect(await fired(ref)).toEqual(['a', 'b2']);
    expect(runs.filter((t) => t === 'b').length).toBeLessThanOrEqual(1); // at most a discarded run
    expect(await ref.timers()).toEqual([]);
  });
});
