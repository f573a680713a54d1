import type { Backend, Tenant } from '../../src/backend/types';
import { Runtime } from '../../src/facade/runtime';
import { backendFactories } from '../helpers/backend/factories';

/** The backends every runtime test runs on: the conformance suite's, less those that cannot run here. */
export const runtimeBackends: Array<
  [string, () => Promise<{ backend: Backend; cleanup: () => Promise<void> }>]
> = backendFactories.filter((f) => !f.skip).map((f) => [f.name, () => f.open()]);

export const waitFor = async (cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

/**
 * For each test of a `describe.each(runtimeBackends)` block: a fresh tenant `[name, n]` of the backend
 * `make` opens; after the test every server stops and the backend is cleaned up. Read `backend` and
 * `tenant` inside tests (they change per test).
 */
export function freshTenantEachTest(
  make: () => Promise<{ backend: Backend; cleanup: () => Promise<void> }>,
  name: string,
): { readonly backend: Backend; readonly tenant: Tenant } {
  const fx = {} as { backend: Backend; tenant: Tenant };
  let cleanup: () => Promise<void> = async () => undefined;
  let n = 0;
  beforeEach(async () => {
    ({ backend: fx.backend, cleanup } = await make());
    fx.tenant = await fx.backend.openTenant([name, String(++n)]);
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });
  return fx;
}
