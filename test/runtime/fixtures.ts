import 'reflect-metadata';
import { DurableServer, Init, OnCall, OnCast, OnInfo, OnLocked } from '../../src/decorators';
import { lock, noreply, ok, reply, stop, type Action } from '../../src/returns';

/** A counter, as upstream's DCounter. Its tuid can be chosen so one test can run several. */
@DurableServer({ name: 'counter' })
export class Counter {
  @Init() init(arg?: { start?: number; id?: string }) {
    return arg?.id ? ok(arg.start ?? 0, ['counter', arg.id]) : ok(arg?.start ?? 0);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
  @OnCall('blob') blob(m: { size: number }, _f: unknown, n: number) {
    return reply(Buffer.alloc(m.size, 7), n);
  }
  @OnCall('incr') incrCall(_m: unknown, _f: unknown, n: number) {
    return reply(n + 1, n + 1);
  }
  @OnCall('silent') silent(_m: unknown, _f: unknown, n: number) {
    return noreply(n);
  }
  @OnCast('incr') incr(_m: unknown, n: number) {
    return noreply(n + 1);
  }
  @OnCast('add') add(m: { by: number }, n: number) {
    return noreply(n + m.by);
  }
}

/** Runs actions and reports them to a sink the test holds. */
export const actionLog: Array<[string, unknown]> = [];
const record =
  (what: string): Action<number> =>
  (s) => {
    actionLog.push([what, s]);
  };

@DurableServer({ name: 'echo' })
export class ActionEcho {
  @Init() init() {
    return ok(0);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n, [record('call')]);
  }
  @OnCast('incr') incr(_m: unknown, n: number) {
    return noreply(n + 1, [record('cast')]);
  }
  @OnCast('halting') halting(_m: unknown, n: number) {
    return noreply(n, [record('first'), () => 'halt', record('never')]);
  }
  @OnCast('throwing') throwing(_m: unknown, n: number) {
    return noreply(n, [
      () => {
        throw new Error('action boom');
      },
      record('never'),
    ]);
  }
  @OnInfo('tick') tick(_m: unknown, n: number) {
    return noreply(n + 1, [record('info')]);
  }
  @OnCall('stop') stopCall(_m: unknown, _f: unknown, n: number) {
    return stop('normal', n + 5, [record('stop')]);
  }
  @OnCast('stop') stopCast(_m: unknown, n: number) {
    return stop('bye', n + 5, [record('stop')]);
  }
  @OnInfo('stop') stopInfo(_m: unknown, n: number) {
    return stop('normal', n, [record('stop')]);
  }
}

/** Locks, as upstream's DLocker: slow work runs in @OnLocked, outside any transaction. */
export const lockGate = { entered: 0, release: Promise.resolve() as Promise<void>, open: () => {} };
export function closeGate(): void {
  lockGate.release = new Promise((r) => (lockGate.open = r));
}

@DurableServer({ name: 'locker' })
export class Locker {
  @Init() init() {
    return ok(0);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
  @OnCast('incr') incr(_m: unknown, n: number) {
    return noreply(n + 1);
  }
  @OnCast('lock_incr') lockIncr(_m: unknown, n: number) {
    return lock(n);
  }
  @OnCall('lock_get') lockGet(_m: unknown, _f: unknown, n: number) {
    return lock(n);
  }
  @OnCast('lock_boom') lockBoom(_m: unknown, n: number) {
    return lock(n);
  }
  @OnLocked('lock_incr') async lockedIncr(ev: { kind: string }, _m: unknown, n: number) {
    lockGate.entered++;
    await lockGate.release;
    return noreply(n + 100);
  }
  @OnLocked('lock_get') async lockedGet(ev: { kind: string }, _m: unknown, n: number) {
    lockGate.entered++;
    await lockGate.release;
    return reply({ was: n, kind: ev.kind }, n + 100);
  }
  @OnLocked('lock_boom') async lockedBoom() {
    throw new Error('locked boom');
  }
}

/** A poison message: its handler always throws. */
@DurableServer({ name: 'poison' })
export class Poison {
  @Init() init() {
    return ok({ handled: [] as number[] });
  }
  @OnCast('item') item(m: { n: number; poison?: boolean }, s: { handled: number[] }) {
    if (m.poison) throw new Error(`cannot handle ${m.n}`);
    return noreply({ handled: [...s.handled, m.n] });
  }
  @OnCall('bad') bad(m: { n: number }) {
    if (m.n >= 0) throw new Error('call boom');
    return reply(0, 0);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: unknown) {
    return reply(s, s);
  }
  @OnCall('wrong') wrong() {
    return 42 as never;
  }
  @OnCast('mutate') mutate(_m: unknown, s: { handled: number[] }) {
    s.handled.push(99);
    return noreply(s);
  }
}
