/**
 * A SQLite consumer woken after a call may run quick handlers inside its write transaction (a fused
 * step, see fusesStep); a handler that computes for long without awaiting anything would then hold the
 * file's write lock while it runs. After one such handling, the consumer's next steps go the usual way
 * (handlers between two transactions): other processes' writes are not held up by them.
 */
import 'reflect-metadata';
import type { Backend } from '../../../src/backend/types';
import { Runtime } from '../../../src/facade/runtime';
import { Sloth } from '../../helpers/runtime/servers';
import { openSqlite, tempDir } from '../../helpers/runtime/sqlite';
import { Workers } from '../../helpers/runtime/workers';

const tmp = tempDir();
const workers = new Workers();
let backend: Backend | undefined;

afterAll(async () => {
  await Runtime.stopAll();
  await backend?.close();
  await workers.killAll();
  tmp.dispose();
});

test('a CPU-bound call handler in another process holds up this process’s writes at most once', async () => {
  const db = tmp.file('cpu-bound.sqlite');
  backend = await openSqlite(db);
  const tenant = await backend.openTenant(['mp']);
  const consumer = await workers.spawn({ db });
  await consumer.rpc('start', { ref: 's', server: 'Sloth', opts: {} });
  const caller = await Runtime.start(Sloth, undefined, { tenant, consume: false });
  const key = Buffer.from('probe');
  /** How long a write of this process takes while the other process computes in a handler (ms). */
  const writeDuringSpin = async (): Promise<number> => {
    const spun = caller.call({ type: 'spin', ms: 1500 }, { timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 300)); // the handler has begun computing
    const t0 = performance.now();
    await tenant.transact((tx) => tx.set(key, Buffer.from(String(t0))));
    const ms = performance.now() - t0;
    expect(await spun).toBe('spun');
    return ms;
  };
  expect(await caller.call({ type: 'spin', ms: 0 }, { timeout: 10_000 })).toBe('spun'); // warm: a call handled
  await writeDuringSpin(); // may be held up: a quick call came last, so this one's step is fused
  // The last handling computed for long: this one runs between two transactions, holding no lock.
  expect(await writeDuringSpin()).toBeLessThan(600);
  expect(await writeDuringSpin()).toBeLessThan(600);
}, 60_000);
