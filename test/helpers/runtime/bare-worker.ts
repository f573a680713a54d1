/**
 * A worker as a user writes one: open a backend, start a server, nothing else (no IPC, no timers of
 * its own). Run as `node -r ts-node/register/transpile-only bare-worker.ts DB_FILE consume|call-only`.
 * It prints `ready` once started; with `consume` the runtime must keep it alive until stopped.
 */
import 'reflect-metadata';
import { openBackend } from '../../../src/backend/open-backend';
import { Runtime } from '../../../src/facade/runtime';
import { Counter } from '../../runtime/fixtures';

async function main(): Promise<void> {
  const [file, mode] = process.argv.slice(2);
  const backend = await openBackend(`sqlite:${file}`);
  const tenant = await backend.openTenant(['bare']);
  const ref = await Runtime.start(Counter, {}, { tenant, consume: mode === 'consume' });
  if (mode !== 'consume') await ref.call('get').catch(() => undefined);
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void Runtime.stopAll().then(() => backend.close()));
}

void main();
