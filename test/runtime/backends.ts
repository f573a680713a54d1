import type { Backend } from '../../src/backend/types';
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
