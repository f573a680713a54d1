import 'reflect-metadata';
import type { Backend, Tenant } from '../../src/backend/types';
import { DurableServer, Init, OnCall, OnCast } from '../../src/decorators';
import { noreply, ok, reply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import type { ServerRef } from '../../src/runtime/server-ref';
import { Counter } from './fixtures';
import { runtimeBackends, waitFor } from './backends';

/** Counts naps begun (a test hook: real handlers have no side effects). */
let napsBegun = 0;

/** A server whose handler takes seconds (slow work done inside a handler rather than in @OnLocked). */
@DurableServer({ name: 'sloth' })
class Sloth {
  @Init() init() {
    return ok(0);
  }
  @OnCast('nap') async nap(m: { ms: number }, n: number) {
    napsBegun++;
    await new Promise((r) => setTimeout(r, m.ms));
    return noreply(n + 1);
  }
  @OnCall('nap') async napCall(m: { ms: number }, _f: unknown, n: number) {
    napsBegun++;
    await new Promise((r) => setTimeout(r, m.ms));
    return reply('rested', n + 1);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
}

/** How long each of `ref`'s calls took (ms), calling one after another for `ms`. */
async function callTimes(ref: Pick<ServerRef, 'call'>, ms: number): Promise<number[]> {
  const started = Date.now();
  const times: number[] = [];
  while (Date.now() - started < ms) {
    const t0 = Date.now();
    await ref.call({ type: 'incr' });
    times.push(Date.now() - t0);
  }
  return times;
}

/**
 * Handlers run outside the backend's write lock (the consumer reads a snapshot, runs them, then
 * validates and commits), so one server's slow handler does not hold up the others on that backend.
 */
describe.each(runtimeBackends)('a slow handler on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['slow']);
    napsBegun = 0;
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  test('another server’s queued calls stay fast while one server’s handler runs for 3 s', async () => {
    const sloth = await Runtime.start(Sloth, undefined, { tenant });
    await Runtime.start(Counter, {}, { tenant }); // the fast server's consumer
    const caller = await Runtime.start(Counter, {}, { tenant, consume: false }); // calls go through the queue
    await sloth.cast({ type: 'nap', ms: 3000 });
    await waitFor(() => napsBegun === 1);
    const times = await callTimes(caller, 2000);
    expect(napsBegun).toBe(1);
    expect(await sloth.readState()).toBe(0); // the nap was still running all along
    expect(times.length).toBeGreaterThan(5);
    expect(Math.max(...times)).toBeLessThan(1000);
    await waitFor(async () => (await sloth.readState()) === 1, 10_000);
    expect(napsBegun).toBe(1); // nothing conflicted: it ran once
  }, 30_000);

  test('so do they while a queued call’s slow handler runs, and it runs once (begun in a fused step, finished outside it)', async () => {
    const sloth = await Runtime.start(Sloth, undefined, { tenant });
    await Runtime.start(Counter, {}, { tenant });
    const slothCaller = await Runtime.start(Sloth, undefined, { tenant, consume: false });
    const caller = await Runtime.start(Counter, {}, { tenant, consume: false });
    // A queued call first: where steps fuse after a call (SQLite) the nap's step is fused too, and its
    // handler, waiting on a timer, must finish outside the transaction rather than hold the write lock.
    expect(await slothCaller.call('get')).toBe(0);
    const napping = slothCaller.call({ type: 'nap', ms: 2000 }, { timeout: 10_000 });
    await waitFor(() => napsBegun === 1);
    const times = await callTimes(caller, 1000);
    expect(times.length).toBeGreaterThan(5);
    expect(Math.max(...times)).toBeLessThan(500);
    expect(await napping).toBe('rested');
    expect(await sloth.readState()).toBe(1);
    expect(napsBegun).toBe(1);
  }, 30_000);

  test('so do they while a slow handler runs inline (a call on a consuming ref) and as a priority cast', async () => {
    const sloth = await Runtime.start(Sloth, undefined, { tenant });
    const fast = await Runtime.start(Counter, {}, { tenant });
    const inline = sloth.call({ type: 'nap', ms: 2000 }, { timeout: 10_000 }); // the queue is empty: inline
    const priority = sloth.priorityCast({ type: 'nap', ms: 2000 });
    await waitFor(() => napsBegun === 2);
    const times = await callTimes(fast, 1000); // inline too, on another server
    expect(Math.max(...times)).toBeLessThan(500);
    expect(await inline).toBe('rested');
    await priority;
    // Both naps read state 0; the second to commit found it changed and ran again on the new state.
    expect(await sloth.readState()).toBe(2);
    expect(napsBegun).toBe(3);
  }, 30_000);
});
