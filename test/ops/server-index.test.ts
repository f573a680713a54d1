import 'reflect-metadata';
import type { Backend } from '../../src/backend/types';
import { listTenantPaths, scanIndex, type IndexedServer } from '../../src/ops/server-index';
import { Runtime } from '../../src/facade/runtime';
import { Counter } from '../runtime/fixtures';
import { runtimeBackends } from '../runtime/backends';
import type { Tenant } from '../../src/backend/types';

async function all(tenant: Tenant, pageSize?: number): Promise<IndexedServer[]> {
  const out: IndexedServer[] = [];
  for await (const page of scanIndex(tenant, pageSize)) out.push(...page);
  return out;
}

describe.each(runtimeBackends)('server index on %s', (_name, make) => {
  let backend: Backend;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ backend, cleanup } = await make()));
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  test('init records each server once (in its tenant, tenants in the registry); kill removes it', async () => {
    const before = Date.now();
    const a = await backend.openTenant(['idx', 'a']);
    const b = await backend.openTenant(['idx', 'b']);
    const refs = [];
    for (let i = 0; i < 5; i++) refs.push(await Runtime.start(Counter, { id: `c${i}` }, { tenant: a }));
    await Runtime.start(Counter, { id: 'c0' }, { tenant: a }); // a second process of c0: still one record
    const other = await Runtime.start(Counter, {}, { tenant: b });
    const inA = await all(a, 2); // pages of 2: the scan continues across pages
    expect(inA.map((s) => s.tuid)).toEqual([0, 1, 2, 3, 4].map((i) => ['counter', `c${i}`]));
    expect(inA[0]).toEqual({
      tuid: ['counter', 'c0'],
      className: 'Counter',
      version: 1,
      createdAt: expect.any(Number),
    });
    expect(inA[0].createdAt).toBeGreaterThanOrEqual(before);
    expect((await all(b)).map((s) => s.tuid)).toEqual([['dgen_server', 'counter']]);
    expect(await listTenantPaths(backend)).toEqual([
      ['idx', 'a'],
      ['idx', 'b'],
    ]);

    await refs[2].kill();
    await other.kill();
    expect((await all(a)).map((s) => s.tuid[1])).toEqual(['c0', 'c1', 'c3', 'c4']);
    expect(await all(b)).toEqual([]);
    // restarting a killed server indexes it again
    await Runtime.start(Counter, { id: 'c2' }, { tenant: a });
    expect((await all(a)).map((s) => s.tuid[1])).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
  });
});
