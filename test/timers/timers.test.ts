import 'reflect-metadata';
import { Runtime } from '../../src/facade/runtime';
import { noreply } from '../../src/returns';
import { freshTenantEachTest, runtimeBackends, waitFor } from '../runtime/backends';
import { Alarm, alarmHooks, CtxEverywhere, refTargets, type AlarmState } from './fixtures';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(runtimeBackends)('durable timers and outbox casts on %s', (_name, make) => {
  const fx = freshTenantEachTest(make, 'timers');

  const fired = async (ref: { readState(): Promise<unknown> }) =>
    ((await ref.readState()) as AlarmState).fired;

  test('a timer a handler sets fires once, through the queue, and is no longer pending', async () => {
    const ref = await Runtime.start(Alarm, 'a', { tenant: fx.tenant });
    const key = await ref.call<string>({ type: 'arm', ms: 400, tag: 'one' });
    expect(typeof key).toBe('string');
    expect((await ref.timers()).map((t) => t.key)).toEqual([key]);
    await waitFor(async () => (await fired(ref)).length === 1);
    await sleep(150);
    expect(await fired(ref)).toEqual(['one']);
    expect(await ref.timers()).toEqual([]);
  });

  test('the same key replaces the earlier timer; timers() lists pending ones in due order', async () => {
    const ref = await Runtime.start(Alarm, 'b', { tenant: fx.tenant });
    expect(await ref.castAfter(5_000, { type: 'fire', tag: 'x' }, { key: 'k' })).toBe('k');
    await ref.castAfter(3_000, { type: 'fire', tag: 'y' }, { key: 'other' });
    await ref.castAfter(60, { type: 'fire', tag: 'z' }, { key: 'k' });
    const pending = await ref.timers();
    expect(pending.map((t) => [t.key, t.msg])).toEqual([
      ['k', { type: 'fire', tag: 'z' }],
      ['other', { type: 'fire', tag: 'y' }],
    ]);
    expect(pending[0].due).toBeLessThan(pending[1].due);
    await waitFor(async () => (await fired(ref)).length === 1);
    expect(await fired(ref)).toEqual(['z']);
    expect((await ref.timers()).map((t) => t.key)).toEqual(['other']);
  });

  test('cancelTimer says whether one was pending; a cancelled timer never fires', async () => {
    const ref = await Runtime.start(Alarm, 'c', { tenant: fx.tenant });
    await ref.castAfter(700, { type: 'fire', tag: 'never' }, { key: 'k' });
    await ref.call({ type: 'arm', ms: 700, tag: 'never2', key: 'h' });
    expect(await ref.cancelTimer('k')).toBe(true);
    expect(await ref.cancelTimer('k')).toBe(false);
    await ref.call({ type: 'disarm', key: 'h' });
    expect(await ref.timers()).toEqual([]);
    await sleep(900);
    expect(await fired(ref)).toEqual([]);
  });

  test('ctx.cancelTimer resolves with whether one was pending; a cancel whose handler throws leaves the timer', async () => {
    const ref = await Runtime.start(Alarm, 'cc', { tenant: fx.tenant });
    await ref.castAfter(60_000, { type: 'fire', tag: 'k' }, { key: 'k' });
    await ref.castAfter(60_000, { type: 'fire', tag: 'kept' }, { key: 'kept' });
    expect(await ref.call({ type: 'cancel', key: 'k' })).toBe(true);
    expect(await ref.call({ type: 'cancel', key: 'k' })).toBe(false); // cancelled: none pending
    expect(await ref.call({ type: 'cancel', key: 'unknown' })).toBe(false);
    // Asked, then the handler throws: nothing it asked is written, the timer is still pending.
    await expect(ref.call({ type: 'cancel', key: 'kept', fail: true })).rejects.toMatchObject({
      code: 'HANDLER_FAILED',
    });
    expect((await ref.timers()).map((t) => t.key)).toEqual(['kept']);
    // Within one handling, what it set earlier counts: set, cancel (true), cancel again (false).
    expect(await ref.call({ type: 'setCancel', key: 'fresh' })).toEqual([true, false]);
    expect((await ref.timers()).map((t) => t.key)).toEqual(['kept']);
    expect(await ref.cancelTimer('kept')).toBe(true);
    expect(await ref.timers()).toEqual([]);
  });

  test('ctx.cancelTimer in a batch sees the timer an earlier message of the batch set', async () => {
    const client = await Runtime.start(Alarm, 'cb', { tenant: fx.tenant, consume: false, name: 'cb-client' });
    await client.castMany([
      { type: 'armCast', key: 'b' },
      { type: 'cancel', key: 'b' },
      { type: 'cancel', key: 'b' },
    ]);
    const ref = await Runtime.start(Alarm, 'cb', { tenant: fx.tenant, name: 'cb-consumer' }); // takes them in one batch
    await waitFor(async () => (await fired(ref)).length === 2);
    expect(await fired(ref)).toEqual(['cancel:b:true', 'cancel:b:false']);
    expect(await ref.timers()).toEqual([]);
  });

  test('ctx.cancelTimer answers as of the commit: a timer cancelled elsewhere meanwhile makes the handler run again', async () => {
    const ref = await Runtime.start(Alarm, 'cr', { tenant: fx.tenant });
    await ref.castAfter(60_000, { type: 'fire', tag: 'r' }, { key: 'r' });
    const answers: boolean[] = [];
    let elsewhere: boolean | undefined;
    alarmHooks.afterCancel = async (_key, was) => {
      answers.push(was);
      // Between the handler's read and its commit, another client cancels the timer.
      if (elsewhere === undefined) elsewhere = await ref.cancelTimer('r');
    };
    try {
      expect(await ref.call({ type: 'cancel', key: 'r' })).toBe(false);
    } finally {
      alarmHooks.afterCancel = undefined;
    }
    expect(elsewhere).toBe(true); // exactly one of the two cancelled it
    expect(answers).toEqual([true, false]); // told true, not committed; run again, told false
    expect(await ref.timers()).toEqual([]);
  });

  test('@OnLocked: ctx.cancelTimer answers too, and runs again when the timer changed before its commit', async () => {
    const ref = await Runtime.start(Alarm, 'cl', { tenant: fx.tenant });
    await ref.castAfter(60_000, { type: 'fire', tag: 'l1' }, { key: 'l1' });
    await ref.cast({ type: 'lockCancel', key: 'l1' });
    await waitFor(async () => (await fired(ref)).length === 1);
    expect(await fired(ref)).toEqual(['locked-cancel:l1:true']);
    await ref.castAfter(60_000, { type: 'fire', tag: 'l2' }, { key: 'l2' });
    const answers: boolean[] = [];
    alarmHooks.afterCancel = async (_key, was) => {
      answers.push(was);
      if (answers.length === 1) expect(await ref.cancelTimer('l2')).toBe(true); // elsewhere, meanwhile
    };
    try {
      await ref.cast({ type: 'lockCancel', key: 'l2' });
      await waitFor(async () => (await fired(ref)).length === 2);
    } finally {
      alarmHooks.afterCancel = undefined;
    }
    expect(answers).toEqual([true, false]);
    expect(await fired(ref)).toEqual(['locked-cancel:l1:true', 'locked-cancel:l2:false']);
    expect(await ref.timers()).toEqual([]);
  });

  test('an outbox cast reaches its target with the sender state; a handler that throws leaves neither', async () => {
    const a = await Runtime.start(Alarm, 'sender', { tenant: fx.tenant });
    const b = await Runtime.start(Alarm, 'target', { tenant: fx.tenant });
    await expect(a.call({ type: 'tell', to: b.tuid, tag: 'bad', fail: true })).rejects.toMatchObject({
      code: 'HANDLER_FAILED',
    });
    expect(await a.call({ type: 'tell', to: b.tuid, tag: 'hi' })).toBe('told');
    await waitFor(async () => (await fired(b)).length === 1);
    await waitFor(async () => (await fired(a)).length === 2);
    await sleep(100);
    expect(await fired(b)).toEqual(['hi']);
    expect(await fired(a)).toEqual(['told:hi', 'later:hi']);
    // A ServerRef as the target
    refTargets.set('b', b);
    await a.cast({ type: 'tell', to: 'b', tag: 'ref' });
    await waitFor(async () => (await fired(b)).length === 2);
    expect(await fired(b)).toEqual(['hi', 'ref']);
  });

  test('ref.castIn enqueues inside the caller transaction: on commit only', async () => {
    const ref = await Runtime.start(Alarm, 'in', { tenant: fx.tenant });
    const marker = Buffer.from('marker');
    await expect(
      fx.tenant.transact(async (tx) => {
        tx.set(marker, Buffer.from('1'));
        await ref.castIn(tx, { type: 'fire', tag: 'rolled-back' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await fx.tenant.transact(async (tx) => {
      tx.set(marker, Buffer.from('2'));
      await ref.castIn(tx, { type: 'fire', tag: 'committed' });
    });
    await waitFor(async () => (await fired(ref)).length === 1);
    await sleep(50);
    expect(await fired(ref)).toEqual(['committed']);
  });

  test('the idle timeout: info "timeout" after ms without another message, reset by every message', async () => {
    const ref = await Runtime.start(Alarm, 'idle', { tenant: fx.tenant });
    const timeouts = async () => ((await ref.readState()) as AlarmState).timeouts;
    // Generous margins: a loaded machine must not turn a 50 ms pause into a real timeout.
    await ref.call({ type: 'touch', ms: 1_000 });
    const started = Date.now();
    for (let i = 0; i < 6; i++) {
      await sleep(50);
      await ref.call({ type: 'touch', ms: 1_000 });
    }
    if (Date.now() - started < 900) expect(await timeouts()).toBe(0);
    await waitFor(async () => (await timeouts()) >= 1, 10_000);
    const after = await timeouts();
    await sleep(1_300);
    expect(await timeouts()).toBe(after); // once: the timeout handler set no new one
    await ref.call({ type: 'touch', ms: 300 });
    await ref.call('get'); // another message, without a timeout: disarms it
    await sleep(600);
    expect(await timeouts()).toBe(after);
  });

  test('@OnLocked and @OnDeadLetter get a ctx too, written with their results', async () => {
    const watcher = await Runtime.start(Alarm, 'watcher', { tenant: fx.tenant });
    const ref = await Runtime.start(CtxEverywhere, null, { tenant: fx.tenant });
    const handled: string[] = [];
    ref.events$.subscribe((e) => e.type === 'handled' && handled.push(e.kind));
    await ref.cast({ type: 'slow' });
    await ref.cast({ type: 'unknown-cast' }); // no handler: dead-lettered, @OnDeadLetter runs
    await waitFor(async () => (await fired(watcher)).length === 2);
    expect([...(await fired(watcher))].sort()).toEqual(['dead:unknown-cast', 'from-locked']);
    expect(await ref.readState()).toEqual({ letters: 1 });
    await waitFor(async () => handled.filter((k) => k === 'cast').length === 2); // 'slow', then the timer's 'fire'
    expect(await ref.timers()).toEqual([]);
  });

  test('bad arguments are refused with BAD_ARGUMENT', async () => {
    const ref = await Runtime.start(Alarm, 'bad', { tenant: fx.tenant });
    const other = await Runtime.start(Alarm, 'elsewhere', {
      tenant: await fx.backend.openTenant(['elsewhere']),
    });
    await expect(ref.castAfter(-1, 'x')).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(ref.castAfter(Number.NaN, 'x')).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(ref.castAfter(10, 'x', { key: '' })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(ref.castAfter(10, 'x', { key: 7 as unknown as string })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
    await expect(ref.castAfter(10, () => 1)).rejects.toMatchObject({ code: 'NOT_SERIALIZABLE' });
    await expect(ref.cancelTimer('')).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(ref.castIn({} as never, 'x')).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(() => noreply(1, [], { timeout: -5 })).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    const e1 = await ref.call({ type: 'tell', to: 'not-a-target', tag: 't' }).catch((e: unknown) => e);
    expect(e1).toMatchObject({
      code: 'HANDLER_FAILED',
      cause: expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    });
    refTargets.set('other', other);
    const e2 = await ref.call({ type: 'tell', to: 'other', tag: 't' }).catch((e: unknown) => e);
    expect(e2).toMatchObject({
      code: 'HANDLER_FAILED',
      cause: expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    });
    const e3 = await ref.call({ type: 'arm', ms: -1, tag: 't' }).catch((e: unknown) => e);
    expect(e3).toMatchObject({
      code: 'HANDLER_FAILED',
      cause: expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    });
    expect(await ref.timers()).toEqual([]);
  });
});
