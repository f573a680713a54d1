import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../../../src/backend/open-backend';
import type { Backend } from '../../../src/backend/types';

export interface BackendFactory {
  name: string;
  /** Why this backend cannot run here (the suite reports it as skipped under this name). */
  skip?: string;
  open(): Promise<{ backend: Backend; cleanup: () => Promise<void> }>;
}

/** Every backend the conformance suite holds to the contract. */
export const backendFactories: BackendFactory[] = [
  {
    name: 'memory',
    async open() {
      const backend = await openBackend('memory:');
      return { backend, cleanup: () => backend.close() };
    },
  },
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'dgen-backend-'));
      const backend = await openBackend(`sqlite:${join(dir, 'db.sqlite')}`);
      return {
        backend,
        cleanup: async () => {
          await backend.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'fdb',
    skip: process.env.FDB_CLUSTER_FILE ? undefined : 'FDB_CLUSTER_FILE not set',
    async open() {
      const backend = await openBackend(`fdb:${process.env.FDB_CLUSTER_FILE}`);
      return { backend, cleanup: () => backend.close() };
    },
  },
];

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A tenant path no other test (or earlier run, on a shared FoundationDB) uses. */
let counter = 0;
export const uniquePath = (name: string): string[] => [
  'dgen-test',
  `${process.pid}-${Date.now().toString(36)}-${counter++}`,
  name,
];
