import 'reflect-metadata';
import { filter, firstValueFrom } from 'rxjs';
import { DurableServer, Init, OnCall, OnCast } from '../../src/decorators';
import { OnDeadLetter } from '../../src/ops/on-dead-letter';
import { noreply, ok, reply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import type { DeadLetter } from '../../src/runtime/wire';
import { freshTenantEachTest, runtimeBackends, waitFor } from '../runtime/backends';

type S = { handled: number[]; dead: Array<{ n: unknown; attempts: number }>; healed: boolean };

/** Fails on poison items until `healed`; counts its dead letters in its state. */
@DurableServer({ name: 'dl' })
class Letters {
  @Init() init() {
    return ok<S>({ handled: [], dead: [], healed: false });
  }
  @OnCast('item') item(m: { n: number; poison?: boolean }, s: S) {
    if (m.poison && !s.healed) throw new Error(`cannot handle ${m.n}`);
    return noreply({ ...s, handled: [...s.handled, m.n] });
  }
  @OnCast('heal') heal(_m: unknown, s: S) {
    return noreply({ ...s, healed: true });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: S) {
    return reply(s, s);
  }
  @OnDeadLetter() onDead(letter: DeadLetter, s: S) {
    const msg = letter.msg as { n?: unknown };
    return noreply({ ...s, dead: [...s.dead, { n: msg?.n ?? msg, attempts: letter.attempts }] });
  }
}

@DurableServer({ name: 'dl-bad' })
class BadDeadLetterHandler {
  @Init() init() {
    return ok(0);
  }
  @OnCast('item') item() {
    throw new Error('always');
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: number) {
    return reply(s, s);
  }
  @OnDeadLetter() onDead() {
    throw new Error('handler of dead letters broke');
  }
}

describe.each(runtimeBackends)('dead letters from code on %s', (_name, make) => {
  const fx = freshTenantEachTest(make, 'dl');

  test('@OnDeadLetter runs in the dead-lettering transaction; requeue puts letters back at the END of the queue; purge deletes', async () => {
    const ref = await Runtime.start(Letters, undefined, { tenant: fx.tenant, maxAttempts: 2 });
    await ref.castMany([
      { type: 'item', n: 1 },
      { type: 'item', n: 2, poison: true },
      { type: 'item', n: 3, poison: true },
      { type: 'item', n: 4 },
    ]);
    await waitFor(async () => (await ref.deadLetters()).length === 2 && (await ref.queueLength()) === 0);
    const letters = await ref.deadLetters();
    expect(letters.map((l) => [(l.msg as { n: number }).n, l.attempts])).toEqual([
      [2, 2],
      [3, 2],
    ]);
    expect(letters[0].id < letters[1].id).toBe(true);
    // the handler's state was written with the letter
    expect(await ref.call('get')).toEqual({
      handled: [1, 4],
      dead: [
        { n: 2, attempts: 2 },
        { n: 3, attempts: 2 },
      ],
      healed: false,
    });

    // requeue one by id, behind a message already queued: it is handled after it
    const consumerless = await Runtime.start(Letters, undefined, { tenant: fx.tenant, consume: false });
    await ref.stop();
    await consumerless.cast('heal');
    await consumerless.cast({ type: 'item', n: 5 });
    expect(await consumerless.requeueDeadLetters([letters[1].id, 'ffff'])).toBe(1);
    expect(await consumerless.queueLength()).toBe(3);
    expect((await consumerless.deadLetters()).map((l) => l.id)).toEqual([letters[0].id]);
    const again = await Runtime.start(Letters, undefined, { tenant: fx.tenant, maxAttempts: 2 });
    await waitFor(async () => (await again.queueLength()) === 0);
    expect(((await again.call('get')) as S).handled).toEqual([1, 4, 5, 3]);

    expect(await again.purgeDeadLetters()).toBe(1);
    expect(await again.deadLetters()).toEqual([]);
    expect(await again.purgeDeadLetters()).toBe(0);
    expect(await again.requeueDeadLetters()).toBe(0);
  });

  test('a cast no handler takes is dead-lettered inside a batch and @OnDeadLetter sees the batch state', async () => {
    const pub = await Runtime.start(Letters, undefined, { tenant: fx.tenant, consume: false });
    await pub.castMany([
      { type: 'item', n: 1 },
      { type: 'nobody', n: 'x' },
      { type: 'item', n: 2 },
    ]);
    const ref = await Runtime.start(Letters, undefined, { tenant: fx.tenant });
    await waitFor(async () => (await ref.queueLength()) === 0);
    expect(await ref.call('get')).toEqual({
      handled: [1, 2],
      dead: [{ n: 'x', attempts: 0 }],
      healed: false,
    });
    // a cast with no handler after the last handled one: the state the handler returned is stored
    await ref.cast({ type: 'nobody', n: 'y' });
    await waitFor(async () => (await ref.deadLetters()).length === 2);
    expect(((await ref.call('get')) as S).dead).toEqual([
      { n: 'x', attempts: 0 },
      { n: 'y', attempts: 0 },
    ]);
    expect(
      (
        (await (
          await Runtime.start(Letters, undefined, { tenant: fx.tenant, consume: false })
        ).readState()) as S
      ).dead,
    ).toHaveLength(2);
  });

  test('requeueing everything keeps dead-lettering order; a failing @OnDeadLetter does not wedge the queue', async () => {
    const ref = await Runtime.start(BadDeadLetterHandler, undefined, { tenant: fx.tenant, maxAttempts: 1 });
    const failed = firstValueFrom(
      ref.events$.pipe(
        filter(
          (e) =>
            e.type === 'handler-failed' &&
            /dead letters broke/.test(String((e as { error: Error }).error.message)),
        ),
      ),
    );
    await ref.castMany([
      { type: 'item', n: 1 },
      { type: 'item', n: 2 },
    ]);
    await failed;
    await waitFor(async () => (await ref.deadLetters()).length === 2);
    expect(await ref.call('get')).toBe(0);
    await ref.stop();
    const pub = await Runtime.start(BadDeadLetterHandler, undefined, { tenant: fx.tenant, consume: false });
    expect(await pub.requeueDeadLetters()).toBe(2);
    expect(await pub.queueLength()).toBe(2);
    expect(await pub.deadLetters()).toEqual([]);
  });

  test('bad ids are refused with BAD_ARGUMENT; a stopped ref says STOPPED', async () => {
    const ref = await Runtime.start(Letters, undefined, { tenant: fx.tenant });
    await expect(ref.requeueDeadLetters(['not hex'])).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(ref.purgeDeadLetters('abc' as unknown as string[])).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
    await ref.stop();
    await expect(ref.requeueDeadLetters()).rejects.toMatchObject({ code: 'STOPPED' });
    await expect(ref.purgeDeadLetters()).rejects.toMatchObject({ code: 'STOPPED' });
  });
});

test('@OnDeadLetter on something that is not a method, or twice, is a BAD_DEFINITION', () => {
  expect(() => {
    class A {
      @OnDeadLetter() a() {}
      @OnDeadLetter() b() {}
    }
    return A;
  }).toThrow(expect.objectContaining({ code: 'BAD_DEFINITION' }));
});
