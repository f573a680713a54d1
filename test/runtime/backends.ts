import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../../src/backend/open-backend';
import type { Backend } from '../../src/backend/types';

/** The backends every runtime test runs on: in memory, and a real SQLite file. */
export const runtimeBackends: Array<[string, () => Promise<{ backend: Backend; cleanup: () => Promise<void> }>]> = [
  [
    'memory',
    async () => {
      const backend = await openBackend('memory:');
      return { backend, cleanup: () => backend.close() };
    },
  ],
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'dgen-rt-'));
      const backend = await openBackend(`sqlite:${join(dir, 'db.sqlite')}`);
      return {
        backend,
        cleanup: async () => {
          await backend.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
];

export const waitFor = async (cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};
