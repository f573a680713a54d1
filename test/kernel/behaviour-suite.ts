import { filter, firstValueFrom, toArray, type Observable } from 'rxjs';
import { OnCall, OnCast, OnInfo, OnTerminate } from '../../src/decorators';
import { StoppedError } from '../../src/errors';
import type { CallFrom } from '../../src/couch';
import { noreply, reply, stop } from '../../src/returns';

/** The state every gen_server of this suite starts with. */
export interface BehaviourState {
  readonly n: number;
  readonly seen: readonly string[];
}
export const INITIAL: BehaviourState = { n: 0, seen: [] };

/** What the suite needs of a started gen_server, whatever its kind. */
export interface UnderTest {
  call<R = unknown>(msg: unknown, options?: { timeout?: number }): Promise<R>;
  cast(msg: unknown): Promise<void>;
  send(msg: unknown): void;
  stop(reason?: unknown): Promise<void>;
  readState(): Promise<unknown>;
  readonly events$: Observable<{ readonly type: string }>;
  readonly done: Promise<unknown>;
}

/** What a kind of gen_server provides the suite: a class with these handlers, decorated and started. */
export interface Kind {
  /** Starts `Behaviour`'s handlers as this kind of gen_server, with INITIAL as its state. */
  start(): Promise<UnderTest>;
}

/** Side effects the handlers record (actions and terminate run outside the state). */
export const sideEffects: string[] = [];

/**
 * The handlers of the suite, on a base class without a class decorator: each kind's adapter
 * subclasses it with `@DurableServer` or `@ChangesFollower` and its `@Init`.
 */
export class Behaviour {
  @OnCall('get') get(_m: unknown, _f: CallFrom, s: BehaviourState) {
    return reply(s, s);
  }
  @OnCall('inc') inc(m: { by: number }, _f: CallFrom, s: BehaviourState) {
    return reply(s.n + m.by, { ...s, n: s.n + m.by });
  }
  @OnCall() anyCall(m: unknown, _f: CallFrom, s: BehaviourState) {
    return reply({ fallback: m }, s);
  }
  @OnCall('bad') bad() {
    return 42;
  }
  @OnCall('boom') boom(): never {
    throw new Error('boom in a call');
  }
  @OnCall('mutate') mutate(_m: unknown, _f: CallFrom, s: BehaviourState) {
    (s as { n: number }).n += 1; // the state is frozen: this throws
    return reply('changed in place', s);
  }
  @OnCall('stop') stopCall(m: { reason: unknown }, _f: CallFrom, s: BehaviourState) {
    return stop(m.reason, { ...s, seen: [...s.seen, 'stop'] });
  }
  @OnCast('note') note(m: { text: string }, s: BehaviourState) {
    return noreply({ ...s, seen: [...s.seen, m.text] });
  }
  @OnCast('actions') actions(_m: unknown, s: BehaviourState) {
    const next = { ...s, seen: [...s.seen, 'actions'] };
    return noreply(next, [
      (st: BehaviourState) => void sideEffects.push(`first saw ${st.seen.length}`),
      () => 'halt' as const,
      () => void sideEffects.push('after halt'),
    ]);
  }
  @OnCast('failing-action') failingAction(_m: unknown, s: BehaviourState) {
    return noreply(s, [
      () => {
        throw new Error('action failed');
      },
      () => void sideEffects.push('after a failed action'),
    ]);
  }
  @OnCast() anyCast(m: { type?: string }, s: BehaviourState) {
    return noreply({ ...s, seen: [...s.seen, `cast:${m.type ?? '?'}`] });
  }
  @OnInfo('ping') ping(_m: unknown, s: BehaviourState) {
    return noreply({ ...s, seen: [...s.seen, 'ping'] });
  }
  @OnTerminate() terminate(reason: unknown, s: BehaviourState) {
    sideEffects.push(`terminate ${String(reason)} with n=${s.n}`);
  }
}

const until = async (cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/**
 * The gen_server semantics, written once and run against every kind (as abstract-level runs one
 * suite against every store): dispatch by tag with untagged fallbacks, return validation, frozen
 * state, actions and 'halt', stop and done, the shared events.
 */
export function behaviourSuite(kindName: string, kind: () => Kind): void {
  describe(`gen_server behaviour — ${kindName}`, () => {
    let ref: UnderTest | undefined;
    beforeEach(() => {
      sideEffects.length = 0;
    });
    afterEach(async () => {
      await ref?.stop().catch(() => undefined);
      ref = undefined;
    });
    const start = async () => (ref = await kind().start());

    it('dispatches calls by tag, with the untagged handler as fallback', async () => {
      const r = await start();
      expect(await r.call({ type: 'inc', by: 2 })).toBe(2);
      expect(await r.call('get')).toEqual({ n: 2, seen: [] }); // a string message is its own tag
      expect(await r.call({ type: 'unknown-tag', x: 1 })).toEqual({
        fallback: { type: 'unknown-tag', x: 1 },
      });
      expect(await r.call({ type: 'get' })).toEqual({ n: 2, seen: [] });
    });

    it('dispatches casts by tag and fallback, in order', async () => {
      const r = await start();
      await r.cast({ type: 'note', text: 'a' });
      await r.cast({ type: 'other' });
      await r.cast({ type: 'note', text: 'b' });
      expect(await r.call({ type: 'get' })).toMatchObject({ seen: ['a', 'cast:other', 'b'] });
    });

    it('delivers infos to @OnInfo, and reports one no handler takes as dropped', async () => {
      const r = await start();
      const dropped = firstValueFrom(r.events$.pipe(filter((e) => e.type === 'dropped')));
      r.send({ type: 'ping' });
      r.send({ type: 'nobody' });
      expect(await dropped).toEqual({ type: 'dropped', kind: 'info', msg: { type: 'nobody' } });
      await until(
        async () => (await r.call<BehaviourState>({ type: 'get' })).seen.includes('ping'),
        'the ping',
      );
    });

    it('a handler that returns the wrong thing is BAD_RETURN naming it; one that throws is HANDLER_FAILED with the cause', async () => {
      const r = await start();
      const failed = firstValueFrom(r.events$.pipe(filter((e) => e.type === 'handler-failed')));
      await expect(r.call({ type: 'bad' })).rejects.toMatchObject({
        code: 'BAD_RETURN',
        message: expect.stringContaining('bad returned number 42'),
      });
      expect(await failed).toMatchObject({
        type: 'handler-failed',
        kind: 'call',
        error: { code: 'BAD_RETURN' },
      });
      await expect(r.call({ type: 'boom' }, { timeout: 20_000 })).rejects.toMatchObject({
        code: 'HANDLER_FAILED',
        message: expect.stringContaining('boom in a call'),
      });
      expect(await r.call({ type: 'get' })).toEqual(INITIAL); // nothing changed, still serving
    });

    it('the state handed to handlers is frozen: changing it in place fails the handler and changes nothing', async () => {
      const r = await start();
      await expect(r.call({ type: 'mutate' }, { timeout: 20_000 })).rejects.toMatchObject({
        code: 'HANDLER_FAILED',
        message: expect.stringContaining('frozen'),
      });
      expect(await r.readState()).toEqual(INITIAL);
    });

    it('runs actions in order after the new state, stopping at halt', async () => {
      const r = await start();
      await r.cast({ type: 'actions' });
      await until(async () => sideEffects.length > 0, 'the first action');
      await r.call({ type: 'get' });
      await new Promise((res) => setTimeout(res, 50));
      expect(sideEffects).toEqual(['first saw 1']);
    });

    it('a throwing action is reported as action-failed and ends the actions after it', async () => {
      const r = await start();
      const failed = firstValueFrom(r.events$.pipe(filter((e) => e.type === 'action-failed')));
      await r.cast({ type: 'failing-action' });
      expect(await failed).toMatchObject({ type: 'action-failed', error: { message: 'action failed' } });
      await r.call({ type: 'get' });
      expect(sideEffects).not.toContain('after a failed action');
    });

    it('stop(reason, state) from a handler ends it: done gives the reason, terminate runs once, events end with stopped', async () => {
      const r = await start();
      const events = firstValueFrom(r.events$.pipe(toArray()));
      await r.call({ type: 'inc', by: 3 });
      r.call({ type: 'stop', reason: 'finished' }).catch(() => undefined);
      expect(await r.done).toBe('finished');
      const all = await events;
      expect(all[all.length - 1]).toEqual({ type: 'stopped', reason: 'finished' });
      expect(sideEffects.filter((e) => e.startsWith('terminate'))).toEqual(['terminate finished with n=3']);
    });

    it('ref.stop() is idempotent, and a stopped gen_server refuses work with StoppedError', async () => {
      const r = await start();
      await Promise.all([r.stop('bye'), r.stop('again')]);
      await r.stop();
      expect(await r.done).toBe('bye');
      await expect(r.call({ type: 'get' })).rejects.toBeInstanceOf(StoppedError);
      await expect(r.call({ type: 'get' })).rejects.toMatchObject({ code: 'STOPPED' });
      expect(sideEffects.filter((e) => e.startsWith('terminate'))).toEqual(['terminate bye with n=0']);
    });

    it('a call timeout must be positive: BAD_ARGUMENT', async () => {
      const r = await start();
      await expect(r.call({ type: 'get' }, { timeout: 0 })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      await expect(r.call({ type: 'get' }, { timeout: Number.NaN })).rejects.toMatchObject({
        code: 'BAD_ARGUMENT',
      });
    });
  });
}
