import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
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
    name: 'postgres',
    skip: process.env.DGEN_TEST_POSTGRES_URL
      ? undefined
      : 'DGEN_TEST_POSTGRES_URL not set (Jest globalSetup sets it)',
    async open() {
      const url = process.env.DGEN_TEST_POSTGRES_URL!;
      const schema = freshSchema();
      const backend = await openBackend(url, { postgres: { schema, poolSize: 4 } });
      return {
        backend,
        cleanup: async () => {
          await backend.close();
          await dropSchema(url, schema);
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

/** A schema name no other test, worker or run uses (each postgres backend of the tests has its own). */
export const freshSchema = (): string =>
  `t_${process.pid}_${Date.now().toString(36)}_${counter++}_${Math.random().toString(36).slice(2, 6)}`;

/** Drops a test schema and everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
