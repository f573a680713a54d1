import 'reflect-metadata';
import type { KeyTuple, Tenant, Transaction } from '../../src/backend/types';
import { DurableServer, Init, OnCall, OnCast } from '../../src/decorators';
import { noreply, ok, reply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import { freshTenantEachTest, runtimeBackends, waitFor } from './backends';

let napping = false;

@DurableServer({ name: 'call-push-napper' })
class Napper {
  @Init() init() {
    return ok(0);
  }
  @OnCast('nap') async nap(m: { ms: number }, n: number) {
    napping = true;
    await new Promise((r) => setTimeout(r, m.ms));
    return noreply(n + 1);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
}

/** A tenant whose transactions report, per committed run, whether they read and whether they pushed. */
function noting(inner: Tenant, runs: Array<{ read: boolean; pushed: boolean }>): Tenant {
  return {
    ...inner,
    path: inner.path,
    backend: inner.backend,
    read: (fn) => inner.read(fn),
    watch: (key) => inner.watch(key),
    transact: async (fn, options) => {
      let run = { read: false, pushed: false };
      const out = await inner.transact((tx) => {
        run = { read: false, pushed: false };
        const noted: Transaction = {
          ...tx,
          get: (k) => ((run.read = true), tx.get(k)),
          getRange: (s, e, o) => ((run.read = true), tx.getRange(s, e, o)),
          set: (k, v) => tx.set(k, v),
          clear: (k) => tx.clear(k),
          clearRange: (s, e) => tx.clearRange(s, e),
          add: (k, d) => tx.add(k, d),
          setVersionstampedKey: (t: KeyTuple, v) => ((run.pushed = true), tx.setVersionstampedKey(t, v)),
          setVersionstampedValue: (k, p, s) => tx.setVersionstampedValue(k, p, s),
          getVersionstamp: () => tx.getVersionstamp(),
          watch: (k) => tx.watch(k),
        };
        return fn(noted);
      }, options);
      runs.push(run);
      return out;
    },
  };
}

/**
 * A call on a consuming ref is handled inline while the queue is empty; when a snapshot shows it is
 * not, the call is pushed in a transaction that reads nothing, as a non-consuming ref's: on PostgreSQL
 * a serializable read of the queue's counters there made every such push conflict with the consumer's
 * batches (it writes the pop counter), and under load the consumer failed as the pivot again and again.
 */
describe.each(runtimeBackends)('a call on a consuming ref on %s', (_name, make) => {
  const fx = freshTenantEachTest(make, 'call-push');

  test('is pushed without a read in its transaction while the queue is not empty', async () => {
    napping = false;
    const runs: Array<{ read: boolean; pushed: boolean }> = [];
    const ref = await Runtime.start(Napper, undefined, { tenant: noting(fx.tenant, runs) });
    await ref.cast({ type: 'nap', ms: 800 }); // handled, so still queued, while the call is pushed
    await waitFor(() => napping);
    runs.length = 0;
    expect(await ref.call('get', { timeout: 5000 })).toBe(1); // after the nap: FIFO
    const pushes = runs.filter((r) => r.pushed);
    expect(pushes).toHaveLength(1);
    expect(pushes[0].read).toBe(false);
  });
});
