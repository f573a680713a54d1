import 'reflect-metadata';
import { DurableServer, Init, OnCall, OnCast, OnLocked } from '../../../src/decorators';
import { lock, noreply, ok, reply } from '../../../src/returns';

/**
 * The durable server of the fault test, in a module of its own so the Jest process and every worker
 * process load the very same class. Each of its instances (tuid ['fault', id]) records, per
 * producer, the sequence numbers of the casts and calls it applied, in the order it applied them:
 * the test checks them against what the producers saw acknowledged.
 */
export interface TallyState {
  casts: Record<string, number[]>;
  calls: Record<string, number[]>;
  /** @OnLocked runs that completed. */
  slow: number;
}

export type TallyMsg = { type: 'rec' | 'add'; p: string; i: number };

/**
 * Hooks a worker installs to misbehave on purpose: stall inside a handler's transaction, hang inside
 * @OnLocked, so the parent can kill -9 it there. Side effects in a handler are wrong in real servers;
 * here they are the point.
 */
export const faultHooks: {
  inTransaction?: (m: TallyMsg) => Promise<void> | void;
  inLocked?: () => Promise<void> | void;
} = {};

const append = (log: Record<string, number[]>, m: TallyMsg) => ({
  ...log,
  [m.p]: [...(log[m.p] ?? []), m.i],
});

@DurableServer({ name: 'fault-tally' })
export class Tally {
  @Init() init(arg: { id: number }) {
    return ok<TallyState>({ casts: {}, calls: {}, slow: 0 }, ['fault', arg.id]);
  }

  @OnCast('rec') async rec(m: TallyMsg, s: TallyState) {
    if (faultHooks.inTransaction) await faultHooks.inTransaction(m);
    return noreply<TallyState>({ ...s, casts: append(s.casts, m) });
  }

  @OnCall('add') async add(m: TallyMsg, _from: unknown, s: TallyState) {
    if (faultHooks.inTransaction) await faultHooks.inTransaction(m);
    const calls = append(s.calls, m);
    return reply(calls[m.p].length, { ...s, calls });
  }

  @OnCall('get') get(_m: unknown, _from: unknown, s: TallyState) {
    return reply(s, s);
  }

  /** Takes the lock; @OnLocked('slow') then runs outside any transaction, under a lease. */
  @OnCast('slow') slow(_m: unknown, s: TallyState) {
    return lock(s);
  }

  @OnLocked('slow') async slowWork(_ev: unknown, _m: unknown, s: TallyState) {
    if (faultHooks.inLocked) await faultHooks.inLocked();
    return noreply<TallyState>({ ...s, slow: s.slow + 1 });
  }
}
