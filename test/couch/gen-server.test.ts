import 'reflect-metadata';
import {
  ChangesFollower,
  OnChange,
  OnError,
  follow,
  retry,
  type CallFrom,
  type ChangeRow,
  type DbTarget,
} from '../../src/couch';
import { DurableServer, Init, OnCall, OnCast, OnInfo } from '../../src/decorators';
import { defineClass } from '../../src/registry/class-definition';
import { startFollower } from '../../src/couch/start-follower';
import { noreply, ok, reply, stop } from '../../src/returns';
import { whereis } from '../../src/kernel/local-registry';
import { Runtime } from '../../src/facade/runtime';
import { describeTargets } from '../helpers/couch/targets';
import { sleep, startRecorded, waitFor, writeDocs } from '../helpers/couch/follower-kit';

interface GenState {
  log: string[];
  n: number;
}
interface GenArg {
  db: DbTarget;
  delayMs?: number;
}
const actionsRan: number[] = [];

@ChangesFollower()
class GenProbe {
  private delayMs = 0;

  @Init() init(arg: GenArg) {
    this.delayMs = arg.delayMs ?? 0;
    return follow(arg.db, { log: [], n: 0 } as GenState, { heartbeat: 300 });
  }
  @OnChange() async change(row: ChangeRow, s: GenState) {
    const started = [...s.log, `start:${row.id}`];
    if (this.delayMs) await sleep(this.delayMs);
    return ok({ ...s, log: [...started, `end:${row.id}`] });
  }
  @OnCall('get') get(_m: unknown, _f: CallFrom, s: GenState) {
    return reply(s.n, { ...s, log: [...s.log, 'call'] });
  }
  @OnCall('later') later(_m: unknown, from: CallFrom, s: GenState) {
    setTimeout(() => from.reply('late answer'), 30);
    return noreply(s);
  }
  @OnCall('boom') boom(): never {
    throw new Error('call handler failed');
  }
  @OnCall('bad') bad() {
    return 42;
  }
  @OnCall('halt') halt(_m: unknown, _f: CallFrom, s: GenState) {
    return stop('asked to stop', s);
  }
  @OnCast('add') add(m: { type: 'add'; by: number }, s: GenState) {
    return noreply({ ...s, n: s.n + m.by });
  }
  @OnCast('boom') castBoom(): never {
    throw new Error('cast handler failed');
  }
  @OnInfo('ping') ping(_m: unknown, s: GenState) {
    return noreply({ ...s, log: [...s.log, 'info'] }, [
      (st) => void actionsRan.push(st.n),
      () => 'halt',
      () => void actionsRan.push(-1),
    ]);
  }
}

@ChangesFollower()
class Typed {
  @Init() init(db: DbTarget) {
    return follow(
      db,
      { users: [] as string[], orders: [] as string[], other: [] as string[] },
      { includeDocs: true, heartbeat: 300 },
    );
  }
  @OnChange('user') user(row: ChangeRow, s: { users: string[] }) {
    return ok({ ...s, users: [...s.users, row.id] });
  }
  @OnChange('order') order(row: ChangeRow, s: { orders: string[] }) {
    return ok({ ...s, orders: [...s.orders, row.id] });
  }
}

@ChangesFollower()
class BadChange {
  @Init() init(db: DbTarget) {
    return follow(db, {}, { heartbeat: 300 });
  }
  @OnChange() change() {
    return { not: 'branded' };
  }
}

describeTargets('follower as an in-memory gen_server', (target) => {
  it('serves call, cast and send; actions run in order until halt', async () => {
    const t = target();
    const db = await t.createDb('gen');
    const { ref, events } = await startRecorded<GenState>(GenProbe, { db: t.dbTarget(db) });
    await ref.cast({ type: 'add', by: 2 });
    await ref.cast({ type: 'add', by: 3 });
    expect(await ref.call('get')).toBe(5);
    ref.send('ping');
    await waitFor(() => actionsRan.length > 0, 'the action');
    expect(actionsRan).toEqual([5]);
    expect(await ref.call('later')).toBe('late answer');
    expect(events.count('handler-failed') + events.count('action-failed')).toBe(0);
    await ref.stop();
  });

  it('unknown calls reject NO_HANDLER, unknown casts and infos are dropped; the follower keeps working', async () => {
    const t = target();
    const db = await t.createDb('nohandler');
    const { ref, events } = await startRecorded<GenState>(GenProbe, { db: t.dbTarget(db) });
    await expect(ref.call({ type: 'nope' })).rejects.toMatchObject({ code: 'NO_HANDLER' });
    await ref.cast('nope');
    ref.send({ type: 'nope' });
    await waitFor(() => events.count('dropped') === 2, 'two drops');
    expect(events.of('dropped').map((e) => [e.kind, e.msg])).toEqual([
      ['cast', 'nope'],
      ['info', { type: 'nope' }],
    ]);
    expect(await ref.call('get')).toBe(0);
    await ref.stop();
  });

  it('a throwing or badly returning call handler rejects that call (HANDLER_FAILED / BAD_RETURN); a throwing cast is reported', async () => {
    const t = target();
    const db = await t.createDb('callfail');
    const { ref, events } = await startRecorded<GenState>(GenProbe, { db: t.dbTarget(db) });
    await expect(ref.call('boom')).rejects.toMatchObject({
      code: 'HANDLER_FAILED',
      message: expect.stringContaining('call handler failed'),
    });
    await expect(ref.call('bad')).rejects.toMatchObject({ code: 'BAD_RETURN' });
    await ref.cast('boom');
    await waitFor(() => events.of('handler-failed').some((e) => e.kind === 'cast'), 'the cast error');
    expect(await ref.call('get')).toBe(0);
    await ref.stop();
  });

  it('handles calls between changes, never during one; a call can time out behind a slow change (CALL_TIMEOUT)', async () => {
    const t = target();
    const db = await t.createDb('serial');
    await writeDocs(t.nano.use(db), 'a', 4);
    const { ref, events } = await startRecorded<GenState>(GenProbe, { db: t.dbTarget(db), delayMs: 80 });
    await events.waitCount('connected', 1);
    await expect(ref.call('get', { timeout: 20 })).rejects.toMatchObject({ code: 'CALL_TIMEOUT' });
    const calls = await Promise.all([
      ref.call('get'),
      sleep(100).then(() => ref.call('get')),
      sleep(200).then(() => ref.call('get')),
    ]);
    expect(calls).toEqual([0, 0, 0]);
    await events.waitCount('change', 4);
    const log = (await ref.readState()).log;
    for (let i = 0; i < log.length; i++)
      if (log[i].startsWith('start:')) expect(log[i + 1]).toBe(`end:${log[i].slice(6)}`);
    expect(log.filter((l) => l === 'call').length).toBe(4); // the timed-out call still ran, as gen_server
    await ref.stop();
  });

  it('stop: done gives the reason as given; every method of a stopped follower is STOPPED', async () => {
    const t = target();
    const db = await t.createDb('stop');
    const a = await startRecorded<GenState>(GenProbe, { db: t.dbTarget(db) });
    await a.ref.stop();
    expect(await a.ref.done).toBe('normal');
    const b = await startRecorded<GenState>(GenProbe, { db: t.dbTarget(db) });
    const pending = b.ref.call('later');
    await b.ref.stop({ why: 'bye' });
    expect(await b.ref.done).toEqual({ why: 'bye' });
    await expect(pending).rejects.toMatchObject({ code: 'STOPPED' });
    expect(b.events.of('stopped')).toEqual([{ type: 'stopped', reason: { why: 'bye' } }]);
    await expect(b.ref.call('get')).rejects.toMatchObject({ code: 'STOPPED' });
    await expect(b.ref.cast('x')).rejects.toMatchObject({ code: 'STOPPED' });
    await expect(b.ref.stop()).resolves.toBeUndefined(); // stop is idempotent, as a durable server's
    await expect(b.ref.readState()).rejects.toMatchObject({ code: 'STOPPED' });
    expect(() => b.ref.send('x')).toThrow(expect.objectContaining({ code: 'STOPPED' }));
    expect(() => b.ref.retryNow()).toThrow(expect.objectContaining({ code: 'STOPPED' }));

    const c = await startRecorded<GenState>(GenProbe, { db: t.dbTarget(db) });
    await expect(c.ref.call('halt')).rejects.toMatchObject({ code: 'STOPPED' });
    expect(await c.ref.done).toBe('asked to stop');
  });

  it('Runtime.start starts a follower class (no tenant) and Runtime.whereis finds it', async () => {
    const t = target();
    const db = await t.createDb('runtime');
    await writeDocs(t.nano.use(db), 'a', 2);
    const ref = await Runtime.start<GenState>(GenProbe, { db: t.dbTarget(db) }, { name: 'via-runtime' });
    expect(Runtime.whereis('via-runtime')).toBe(ref);
    await waitFor(async () => (await ref.readState()).log.length === 4, 'two changes');
    await ref.cast({ type: 'add', by: 1 });
    expect(await ref.call('get')).toBe(1);
    await ref.stop();
    expect(Runtime.whereis('via-runtime')).toBeUndefined();
  });

  it('registers by name (whereis) until it stops; a taken name is ALREADY_REGISTERED', async () => {
    const t = target();
    const db = await t.createDb('named');
    const a = await startRecorded(GenProbe, { db: t.dbTarget(db) }, { name: 'indexer' });
    expect(whereis('indexer')).toBe(a.ref);
    await expect(
      startFollower(defineClass(GenProbe), { db: t.dbTarget(db) }, { name: 'indexer' }),
    ).rejects.toMatchObject({
      code: 'ALREADY_REGISTERED',
    });
    await a.ref.stop();
    expect(whereis('indexer')).toBeUndefined();
  });

  it('@OnChange(tag) takes rows whose doc.type is the tag; rows nobody takes are skipped and reported', async () => {
    const t = target();
    const db = await t.createDb('typed');
    const d = t.nano.use<Record<string, unknown>>(db);
    await d.insert({ _id: 'u1', type: 'user' });
    await d.insert({ _id: 'o1', type: 'order' });
    await d.insert({ _id: 'x1', type: 'misc' });
    await d.insert({ _id: 'u2', type: 'user' });
    const { ref, events } = await startRecorded<{ users: string[]; orders: string[] }>(Typed, t.dbTarget(db));
    await waitFor(() => events.count('change') + events.count('dropped') === 4, 'four rows');
    expect(await ref.readState()).toMatchObject({ users: ['u1', 'u2'], orders: ['o1'] });
    expect(events.of('dropped').map((e) => (e.msg as ChangeRow).id)).toEqual(['x1']);
    expect(ref.lastSeq).toBeDefined();
    await ref.stop();
  });

  it('an @OnChange that returns something unbranded stops the follower with BAD_RETURN', async () => {
    const t = target();
    const db = await t.createDb('badchange');
    await writeDocs(t.nano.use(db), 'a', 1);
    const { ref } = await startRecorded(BadChange, t.dbTarget(db));
    expect(await ref.done).toMatchObject({ code: 'BAD_RETURN' });
  });
});

describe('startFollower checks its input', () => {
  const url = 'http://127.0.0.1:1/db';

  @DurableServer()
  class NotAFollower {
    @Init() init() {
      return ok(0);
    }
  }
  @ChangesFollower()
  class NoInit {
    @OnChange() c(_r: unknown, s: unknown) {
      return ok(s);
    }
  }
  @ChangesFollower()
  class NoChange {
    @Init() init() {
      return follow(url, 0);
    }
  }
  @ChangesFollower()
  class InitReturns {
    @Init() init(what: string) {
      if (what === 'ok') return ok(1);
      if (what === 'throw') throw new Error('init exploded');
      if (what === 'stop') return stop('not today', 1);
      if (what === 'bad-url') return follow('not a url', 1);
      return follow(url, 1, { heartbeat: 1 });
    }
    @OnChange() c(_r: unknown, s: unknown) {
      return ok(s);
    }
    @OnError() e(_e: unknown, s: unknown) {
      return stop('no server here', s);
    }
  }

  it.each([
    [NotAFollower, 'not a @ChangesFollower'],
    [NoInit, 'needs an @Init'],
    [NoChange, 'needs at least one @OnChange'],
  ])('%p → BAD_DEFINITION', async (Class, text) => {
    await expect(startFollower(defineClass(Class), undefined)).rejects.toMatchObject({
      code: 'BAD_DEFINITION',
      message: expect.stringContaining(text),
    });
  });

  it('Runtime.start rejects what is not a decorated class', async () => {
    await expect(Runtime.start({} as never, undefined)).rejects.toMatchObject({ code: 'BAD_DEFINITION' });
  });

  it.each([
    ['ok', 'BAD_RETURN'],
    ['throw', 'HANDLER_FAILED'],
    ['stop', 'STOPPED'],
    ['bad-url', 'BAD_ARGUMENT'],
  ])('@Init %s → %s', async (what, code) => {
    await expect(startFollower(defineClass(InitReturns), what)).rejects.toMatchObject({ code });
  });

  it('rejects bad start options', async () => {
    await expect(startFollower(defineClass(InitReturns), 'go', { name: '' })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
    await expect(startFollower(defineClass(InitReturns), 'go', { callTimeout: -1 })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
    // a tenant (a durable server's option) or a misspelling names the option
    for (const opts of [{ tenant: {} }, { nmae: 'x' }]) {
      const err = await startFollower(defineClass(InitReturns), 'go', opts as never).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'BAD_ARGUMENT' });
      expect((err as Error).message).toContain(Object.keys(opts)[0]);
    }
  });

  it('a feed failure with nothing listening is handled by @OnError (here: stop)', async () => {
    const ref = await startFollower(defineClass(InitReturns), 'go');
    expect(await ref.done).toBe('no server here');
  });

  it('retry and follow check their arguments', () => {
    expect(() => retry(0, -1)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => retry(0, Number.NaN)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => retry(0, Infinity)).not.toThrow();
    expect(() => follow(url, 0, { feed: 'eventsource' as never })).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    );
    expect(() => ChangesFollower({ name: '' })).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => OnChange('')).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });

  it('call checks its timeout', async () => {
    const ref = await startFollower(defineClass(InitReturns), 'go');
    await ref.done;
    const live = await startFollower(defineClass(GenProbe), { db: url });
    await expect(live.call('get', { timeout: 0 })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await live.stop();
  });
});
