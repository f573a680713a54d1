/**
 * @OnTerminate(reason, state), as gen_server's terminate/2: called once when this process's part of a
 * durable server or a follower stops, with the exit reason — not on kill (the state is gone). What it
 * throws is reported and does not change the exit reason.
 */
import 'reflect-metadata';
import { createServer, type Server } from 'node:net';
import { firstValueFrom, filter } from 'rxjs';
import type { Backend, Tenant } from '../../src/backend/types';
import { ChangesFollower, follow, OnChange, OnError } from '../../src/couch';
import { DurableServer, Init, OnCall, OnCast, OnTerminate } from '../../src/decorators';
import { noreply, ok, reply, stop } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import { runtimeBackends } from './backends';

const calls: Array<[unknown, unknown]> = [];
let throwIn = false;

@DurableServer({ name: 'terminating' })
class Terminating {
  @Init() init() {
    return ok({ n: 0 });
  }
  @OnCast('incr') incr(_m: unknown, s: { n: number }) {
    return noreply({ n: s.n + 1 });
  }
  @OnCall('quit') quit(_m: unknown, _f: unknown, s: { n: number }) {
    return stop('quitting', { n: s.n + 100 });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: { n: number }) {
    return reply(s.n, s);
  }
  @OnTerminate() terminate(reason: unknown, s: { n: number }) {
    calls.push([reason, s]);
    if (throwIn) throw new Error('terminate boom');
  }
}

describe.each(runtimeBackends)('@OnTerminate of a durable server on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;
  let n = 0;
  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['terminate', String(++n)]);
    calls.length = 0;
    throwIn = false;
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  test('ref.stop(): once, with the reason and the last state, however often stop is called', async () => {
    const ref = await Runtime.start(Terminating, undefined, { tenant });
    await ref.cast('incr');
    expect(await ref.call('get')).toBe(1);
    await Promise.all([ref.stop('bye'), ref.stop('again')]);
    await ref.stop();
    expect(calls).toEqual([['bye', { n: 1 }]]);
    expect(await ref.done).toBe('bye');
  });

  test('a stop(...) return: the reason and the state it committed', async () => {
    const ref = await Runtime.start(Terminating, undefined, { tenant });
    await expect(ref.call('quit')).rejects.toMatchObject({ code: 'STOPPED' });
    expect(await ref.done).toBe('quitting');
    expect(calls).toEqual([['quitting', { n: 100 }]]);
  });

  test('Runtime.stopAll() and a closed backend call it too', async () => {
    const a = await Runtime.start(Terminating, undefined, { tenant });
    await Runtime.stopAll();
    expect(calls).toEqual([['normal', { n: 0 }]]);
    const b = await Runtime.start(Terminating, undefined, { tenant });
    await backend.close();
    await b.cast('x').catch(() => undefined);
    const reason = await b.done;
    expect(reason).toMatchObject({ code: 'BACKEND_CLOSED' });
    expect(calls).toEqual([
      ['normal', { n: 0 }],
      [reason, { n: 0 }],
    ]);
    void a;
  });

  test('not on kill: the state is gone', async () => {
    const ref = await Runtime.start(Terminating, undefined, { tenant });
    await ref.kill('gone');
    expect(await ref.done).toBe('gone');
    expect(calls).toEqual([]);
  });

  test('a throwing @OnTerminate is reported and leaves the exit reason as it was', async () => {
    throwIn = true;
    const ref = await Runtime.start(Terminating, undefined, { tenant });
    const failed = firstValueFrom(ref.events$.pipe(filter((e) => e.type === 'terminate-failed')));
    await ref.stop('planned');
    expect(await ref.done).toBe('planned');
    expect(await failed).toMatchObject({ error: expect.objectContaining({ message: 'terminate boom' }) });
  });
});

describe('@OnTerminate of a changes follower', () => {
  let closed: Server;
  let url: string;
  beforeAll(async () => {
    // a port that accepts and closes at once: every connection fails
    closed = createServer((s) => s.destroy());
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(closed.address() as { port: number }).port}/db`;
  });
  afterAll(() => new Promise<void>((r) => closed.close(() => r())));

  @ChangesFollower()
  class Watcher {
    @Init() init(mode: string) {
      return follow(url, { mode, seen: 0 }, { heartbeat: 1000 });
    }
    @OnChange() change(_r: unknown, s: { mode: string; seen: number }) {
      return ok({ ...s, seen: s.seen + 1 });
    }
    @OnError() failed(_e: unknown, s: { mode: string; seen: number }) {
      return s.mode === 'stop-on-error' ? stop('feed down', s) : ({ state: s, waitMs: Infinity } as never);
    }
    @OnTerminate() terminate(reason: unknown, s: unknown) {
      calls.push([reason, s]);
      if (throwIn) throw new Error('follower terminate boom');
    }
  }

  beforeEach(() => {
    calls.length = 0;
    throwIn = false;
  });

  test('stop(...) from @OnError: once, with the reason and the state', async () => {
    const ref = await Runtime.start(Watcher, 'stop-on-error');
    expect(await ref.done).toBe('feed down');
    await ref.stop().catch(() => undefined);
    expect(calls).toEqual([['feed down', { mode: 'stop-on-error', seen: 0 }]]);
  });

  test('a throwing @OnTerminate is an error event during terminate; the reason stays', async () => {
    throwIn = true;
    const ref = await Runtime.start(Watcher, 'stop-on-error');
    const failed = firstValueFrom(ref.events$.pipe(filter((e) => e.type === 'terminate-failed')));
    expect(await ref.done).toBe('feed down');
    expect(await failed).toMatchObject({
      error: expect.objectContaining({ message: 'follower terminate boom' }),
    });
  });
});
