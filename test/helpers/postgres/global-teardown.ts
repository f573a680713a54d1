import { RUN_SERVER } from './global-setup';
import type { PostgresServer } from './server';

/** Stops the server global-setup started (none when DGEN_TEST_POSTGRES_URL was the user's). */
export default async function globalTeardown(): Promise<void> {
  const slot = globalThis as Record<symbol, unknown>;
  const server = slot[RUN_SERVER] as PostgresServer | undefined;
  if (!server) return;
  delete slot[RUN_SERVER];
  delete process.env.DGEN_TEST_POSTGRES_URL;
  await server.destroy();
}
