import 'reflect-metadata';
import { DurableServer, Init, OnCall, OnCast, OnInfo, OnLocked } from '../../src/decorators';
import { OnDeadLetter } from '../../src/ops/on-dead-letter';
import type { DeadLetter } from '../../src/runtime/wire';
import { lock, noreply, ok, reply } from '../../src/returns';
import type { HandlerContext } from '../../src/runtime/context/handler-context';

export interface AlarmState {
  fired: string[];
  timeouts: number;
}

/** Test hooks (a child process sets them to misbehave on purpose). */
export const alarmHooks: {
  beforeFire?: (tag: string) => Promise<void> | void;
  /** When a 'fire' handler starts (before its commit; again if it is re-run), with its message. */
  onHandle?: (m: { tag: string; due?: number }) => void;
  /** After the commit that handled a 'fire' (an action), with its message. */
  onFired?: (m: { tag: string; due?: number }) => void;
  /** Keep the state as it is on 'fire' (benchmarks: only the firing is measured). */
  keepState?: boolean;
  /** In the 'cancel' handlers, after ctx.cancelTimer answered `was` for `key`. */
  afterCancel?: (key: string, was: boolean) => Promise<void> | void;
} = {};

/** ServerRefs a handler may name as outbox targets (a ref itself cannot travel in a message). */
export const refTargets = new Map<string, unknown>();
const targetOf = (to: unknown) => (typeof to === 'string' ? refTargets.get(to) : to);

type Arm = { type: 'arm'; ms: number; tag: string; key?: string };

/** A server whose handlers set and cancel timers, cast to others, and take idle timeouts. */
@DurableServer({ name: 'alarm' })
export class Alarm {
  @Init() init(id?: string) {
    const s: AlarmState = { fired: [], timeouts: 0 };
    return id ? ok(s, ['alarm', id]) : ok(s);
  }
  @OnCall('arm') arm(m: Arm, _f: unknown, s: AlarmState, ctx: HandlerContext) {
    const key = ctx.castAfter(
      m.ms,
      { type: 'fire', tag: m.tag },
      m.key === undefined ? undefined : { key: m.key },
    );
    return reply(key, s);
  }
  /** Arms `dues.length` timers in one transaction: tag `${prefix}${i}` due at dues[i] (ms since the epoch). */
  @OnCall('armMany') armMany(
    m: { prefix: string; dues: number[] },
    _f: unknown,
    s: AlarmState,
    ctx: HandlerContext,
  ) {
    m.dues.forEach((due, i) => {
      const tag = `${m.prefix}${i}`;
      ctx.castAfter(Math.max(0, due - ctx.now()), { type: 'fire', tag, due }, { key: tag });
    });
    return reply(m.dues.length, s);
  }
  @OnCall('disarm') disarm(m: { key: string }, _f: unknown, s: AlarmState, ctx: HandlerContext) {
    ctx.cancelTimer(m.key);
    return reply(true, s);
  }
  /** Cancels timer `key` and answers whether one was pending; `fail`: throws after asking. */
  @OnCall('cancel') async cancel(
    m: { key: string; fail?: boolean },
    _f: unknown,
    s: AlarmState,
    ctx: HandlerContext,
  ) {
    const was = await ctx.cancelTimer(m.key);
    if (alarmHooks.afterCancel) await alarmHooks.afterCancel(m.key, was);
    if (m.fail) throw new Error('refused after cancelling');
    return reply(was, s);
  }
  /** Sets timer `key`, then cancels it twice, in one handling: the answers. */
  @OnCall('setCancel') async setCancel(m: { key: string }, _f: unknown, s: AlarmState, ctx: HandlerContext) {
    ctx.castAfter(60_000, { type: 'fire', tag: m.key }, { key: m.key });
    return reply([await ctx.cancelTimer(m.key), await ctx.cancelTimer(m.key)], s);
  }
  /** Sets timer `key` (a cast: handled in a batch with what follows it in the queue). */
  @OnCast('armCast') armCast(m: { key: string }, s: AlarmState, ctx: HandlerContext) {
    ctx.castAfter(60_000, { type: 'fire', tag: m.key }, { key: m.key });
    return noreply(s);
  }
  /** Cancels timer `key` and records the answer in `fired` as `cancel:<key>:<answer>`. */
  @OnCast('cancel') async cancelCast(m: { key: string }, s: AlarmState, ctx: HandlerContext) {
    const was = await ctx.cancelTimer(m.key);
    return noreply({ ...s, fired: [...s.fired, `cancel:${m.key}:${was}`] });
  }
  /** Takes the lock; its @OnLocked cancels timer `key` and records `locked-cancel:<key>:<answer>`. */
  @OnCast('lockCancel') lockCancel(_m: { key: string }, s: AlarmState) {
    return lock(s);
  }
  @OnLocked('lockCancel') async lockedCancel(
    _ev: unknown,
    m: { key: string },
    s: AlarmState,
    ctx: HandlerContext,
  ) {
    const was = await ctx.cancelTimer(m.key);
    if (alarmHooks.afterCancel) await alarmHooks.afterCancel(m.key, was);
    return noreply({ ...s, fired: [...s.fired, `locked-cancel:${m.key}:${was}`] });
  }
  /** Casts `tag` to `to` (a tuid) as an outbox cast, and records that it did. */
  @OnCall('tell') tell(
    m: { to: unknown; tag: string; fail?: boolean },
    _f: unknown,
    s: AlarmState,
    ctx: HandlerContext,
  ) {
    ctx.cast(targetOf(m.to), { type: 'fire', tag: m.tag });
    ctx.castAfter(10, { type: 'fire', tag: `later:${m.tag}` });
    if (m.fail) throw new Error('refused after asking');
    return reply('told', { ...s, fired: [...s.fired, `told:${m.tag}`] });
  }
  @OnCast('tell') tellCast(m: { to: unknown; tag: string }, s: AlarmState, ctx: HandlerContext) {
    ctx.cast(targetOf(m.to), { type: 'fire', tag: m.tag });
    ctx.castAfter(10, { type: 'fire', tag: `later:${m.tag}` });
    return noreply({ ...s, fired: [...s.fired, `told:${m.tag}`] });
  }
  @OnCast('fire') async fire(m: { tag: string; due?: number }, s: AlarmState) {
    alarmHooks.onHandle?.(m);
    if (alarmHooks.beforeFire) await alarmHooks.beforeFire(m.tag);
    const onFired = alarmHooks.onFired;
    const next = alarmHooks.keepState ? s : { ...s, fired: [...s.fired, m.tag] };
    return noreply(next, onFired ? [() => onFired(m)] : []);
  }
  /** Answers and asks for an idle timeout of `ms`. */
  @OnCall('touch') touch(m: { ms: number }, _f: unknown, s: AlarmState) {
    return reply('ok', s, [], { timeout: m.ms });
  }
  @OnInfo('timeout') timeout(_m: unknown, s: AlarmState) {
    return noreply({ ...s, timeouts: s.timeouts + 1 });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: AlarmState) {
    return reply(s, s);
  }
}

/** Its @OnLocked and @OnDeadLetter handlers use their ctx: a timer, and an outbox cast to Alarm 'watcher'. */
@DurableServer({ name: 'ctx-everywhere' })
export class CtxEverywhere {
  @Init() init() {
    return ok({ letters: 0 });
  }
  @OnCast('slow') slow(_m: unknown, s: { letters: number }) {
    return lock(s);
  }
  @OnLocked('slow') async slowWork(_ev: unknown, _m: unknown, s: { letters: number }, ctx: HandlerContext) {
    ctx.castAfter(0, { type: 'fire', tag: 'self' }, { key: 'from-locked' });
    ctx.cast(['alarm', 'watcher'], { type: 'fire', tag: 'from-locked' });
    return noreply(s);
  }
  @OnCast('fire') fire(_m: unknown, s: { letters: number }) {
    return noreply(s);
  }
  @OnDeadLetter() dead(letter: DeadLetter, s: { letters: number }, ctx: HandlerContext) {
    ctx.cast(['alarm', 'watcher'], {
      type: 'fire',
      tag: `dead:${String((letter.msg as { type: string }).type)}`,
    });
    return noreply({ letters: s.letters + 1 });
  }
}
