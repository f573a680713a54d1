import { startPostgres, type PostgresServer } from './server';

/** The server this Jest run started, for global-teardown (both run in Jest's main process). */
export const RUN_SERVER = Symbol.for('dgen.test.postgres');

/**
 * Starts ONE PostgreSQL for the whole Jest run and hands its URL to every test worker through
 * DGEN_TEST_POSTGRES_URL (workers inherit the environment). A URL the user set already is used as
 * it is and nothing is started.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.DGEN_TEST_POSTGRES_URL) return;
  const server: PostgresServer = await startPostgres({ maxConnections: 300 });
  (globalThis as Record<symbol, unknown>)[RUN_SERVER] = server;
  process.env.DGEN_TEST_POSTGRES_URL = server.url;
}
