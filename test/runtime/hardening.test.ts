/**
 * What a new user and an attacker found (issue #11): each case failed before its fix.
 */
import 'reflect-metadata';
import { firstValueFrom, filter, take, toArray } from 'rxjs';
import { DurableServer, Init, OnCall, OnCast, OnLocked } from '../../src/decorators';
import { DgenError, SerializationError, StoppedError } from '../../src/errors';
import { lock, noreply, ok, reply, stop } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import type { StartOptions } from '../../src/runtime/options';
import { freshTenantEachTest, runtimeBackends, waitFor } from './backends';

/** Replies with values the wire cannot carry; `get` shows the queue still moves. */
@DurableServer({ name: 'unencodable' })
class Unencodable {
  @Init() init() {
    return ok({ n: 0 });
  }
  @OnCall('symbol') symbol(_m: unknown, _f: unknown, s: { n: number }) {
    return reply(Symbol('r'), s);
  }
  @OnCall('fn') fn(_m: unknown, _f: unknown, s: { n: number }) {
    return reply({ cb: () => 1 }, s);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: { n: number }) {
    return reply(s.n, s);
  }
  @OnCall('quit') quit(_m: unknown, _f: unknown, s: { n: number }) {
    return stop('normal', s);
  }
  @OnCast('incr') incr(_m: unknown, s: { n: number }) {
    return noreply({ n: s.n + 1 });
  }
  @OnCall('set') set(m: { value: unknown }, _f: unknown, s: { n: number }) {
    return reply('ok', { ...s, value: m.value });
  }
  @OnCall('echo') echo(m: unknown, _f: unknown, s: { n: number }) {
    return reply(m, s);
  }
  @OnCast('hold') hold(_m: unknown, s: { n: number }) {
    return lock(s);
  }
  @OnLocked('hold') async held(_ev: unknown, _m: unknown, s: { n: number }) {
    gate.entered++;
    await gate.wait;
    return noreply(s);
  }
}
const gate = { entered: 0, wait: Promise.resolve() };

const codeOf = async (p: Promise<unknown> | (() => unknown)): Promise<string | undefined> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(DgenError);
    return (err as DgenError).code;
  }
  return undefined;
};

describe.each(runtimeBackends)('hardening on %s', (_name, make) => {
  const fx = freshTenantEachTest(make, 'hard');

  test.each(['symbol', 'fn'])(
    'a queued call whose reply cannot be encoded (%s) is dead-lettered and the queue moves on',
    async (tag) => {
      const consumer = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, maxAttempts: 2 });
      const caller = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, consume: false });
      const errors = firstValueFrom(
        consumer.events$.pipe(
          filter((e) => e.type === 'consumer-error'),
          take(3),
          toArray(),
        ),
      ).then(() => 'wedged');
      const bad = caller.call(tag, { timeout: 4000 });
      await caller.cast('incr');
      expect(await codeOf(bad)).toBe('NOT_SERIALIZABLE');
      expect(await caller.call('get', { timeout: 4000 })).toBe(1);
      const letters = await consumer.deadLetters();
      expect(letters).toHaveLength(1);
      expect(letters[0].attempts).toBe(2);
      expect(await Promise.race([errors, Promise.resolve('fine')])).toBe('fine');
    },
  );

  test('lone surrogates are rejected at the write, never changed', async () => {
    const ref = await Runtime.start(Unencodable, 0, { tenant: fx.tenant });
    for (const value of ['\uD800', 'a\uDC00b', { '\uD800': 1 }, [{ id: '\uDFFF' }], new Map([['\uD800', 1]])])
      expect(await codeOf(ref.call({ type: 'set', value }))).toBe('NOT_SERIALIZABLE');
    // Well-formed text, surrogate pairs included, is stored as it is.
    await ref.call({ type: 'set', value: { '\uFFFD': 'x\uD83D\uDE00y' } });
    expect(await ref.readState()).toEqual({ n: 0, value: { '\uFFFD': 'x\uD83D\uDE00y' } });
    // Messages too: a cast of a lone surrogate is refused before it is queued.
    expect(await codeOf(ref.cast({ type: 'incr', note: '\uD800' }))).toBe('NOT_SERIALIZABLE');
    expect(await ref.queueLength()).toBe(0);
  });

  test('tenant paths with lone surrogates are refused, not merged', async () => {
    for (const p of [['\uD800'], ['\uDC00'], ['ok', 'x\uDBFF']])
      expect(await codeOf(fx.backend.openTenant(p))).toBe('BAD_ARGUMENT');
    await expect(fx.backend.openTenant(['\uFFFD'])).resolves.toBeDefined();
  });

  test('a message with an own __proto__ key is refused, not renamed', async () => {
    const ref = await Runtime.start(Unencodable, 0, { tenant: fx.tenant });
    const msg = JSON.parse('{"type":"echo","__proto__":{"x":1}}') as unknown;
    expect(await codeOf(ref.cast(msg))).toBe('NOT_SERIALIZABLE');
    const caller = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, consume: false });
    expect(await codeOf(caller.call(msg))).toBe('NOT_SERIALIZABLE');
    expect(await ref.queueLength()).toBe(0);
  });

  test('casting a function or a symbol is NOT_SERIALIZABLE', async () => {
    const ref = await Runtime.start(Unencodable, 0, { tenant: fx.tenant });
    expect(await codeOf(ref.cast(() => 1))).toBe('NOT_SERIALIZABLE');
    expect(await codeOf(ref.castMany([Symbol('x')]))).toBe('NOT_SERIALIZABLE');
    expect(await ref.queueLength()).toBe(0);
  });

  test('a message over the 100 000-byte value limit is VALUE_TOO_LARGE at cast and call, enqueuing nothing', async () => {
    const ref = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, consume: false });
    const big = { type: 'incr', pad: 'x'.repeat(1_000_000) };
    expect(await codeOf(ref.cast(big))).toBe('VALUE_TOO_LARGE');
    expect(await codeOf(ref.castMany(['incr', big]))).toBe('VALUE_TOO_LARGE');
    expect(await codeOf(ref.call(big, { timeout: 1000 }))).toBe('VALUE_TOO_LARGE');
    expect(await ref.queueLength()).toBe(0);
  });

  test('a queued call fails with the class its code is thrown as in this process (instanceof works)', async () => {
    const consumer = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, maxAttempts: 1 });
    const caller = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, consume: false });
    const unencodable = await caller.call('symbol', { timeout: 4000 }).catch((e: unknown) => e);
    expect(unencodable).toBeInstanceOf(SerializationError);
    expect(unencodable).toMatchObject({ code: 'NOT_SERIALIZABLE' });
    // as the inline path throws StoppedError for a call whose handler stopped the server
    const stopped = await caller.call('quit', { timeout: 4000 }).catch((e: unknown) => e);
    expect(stopped).toBeInstanceOf(StoppedError);
    expect(await consumer.done).toBe('normal');
  });

  test('castMany([]) on a stopped ref rejects STOPPED', async () => {
    const ref = await Runtime.start(Unencodable, 0, { tenant: fx.tenant });
    await ref.stop();
    expect(await codeOf(ref.castMany([]))).toBe('STOPPED');
  });

  test('bad tenant path elements are BAD_ARGUMENT, not TypeError', async () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    for (const p of [[10n], cyclic, [Symbol('s')], 'app', [{}]])
      expect(await codeOf(fx.backend.openTenant(p as never))).toBe('BAD_ARGUMENT');
  });

  test('a call waiting on a locked server says it is locked, by whom and until when', async () => {
    const holder = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, lockLeaseMs: 60_000 });
    const caller = await Runtime.start(Unencodable, 0, { tenant: fx.tenant, consume: false });
    let release = () => {};
    gate.wait = new Promise<void>((r) => (release = r));
    gate.entered = 0; // the same module's gate served the backends before this one
    await caller.cast('hold');
    await waitFor(() => gate.entered > 0);
    const err = await caller.call('get', { timeout: 300 }).catch((e: unknown) => e);
    release();
    expect(err).toBeInstanceOf(DgenError);
    expect((err as DgenError).code).toBe('CALL_TIMEOUT');
    expect((err as Error).message).toMatch(/locked by .+ until \d{4}-\d\d-\d\dT/);
    expect((err as Error).message).not.toMatch(/is a consumer running/);
    await waitFor(async () => (await holder.queueLength()) === 0);
  });

  test('unknown start options are BAD_ARGUMENT, naming the option', async () => {
    const opts = { tenant: fx.tenant, tennant: fx.tenant } as unknown as StartOptions;
    const err = await Runtime.start(Unencodable, 0, opts).catch((e: unknown) => e);
    expect((err as DgenError).code).toBe('BAD_ARGUMENT');
    expect((err as Error).message).toContain('tennant');
  });
});
