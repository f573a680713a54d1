/**
 * A worker of the PostgreSQL cluster example (examples/postgres-cluster.ts forks three): an app
 * process, as one replica of a service would be, that serves every shop's Orders server from the
 * shared database. It says `booted`, waits for `{ op: 'start', url }`, says `ready` once it serves,
 * and stops cleanly on `bye`.
 */
import 'reflect-metadata';
import { openBackend, Runtime } from '../src';
import { me, Orders } from './orders';

me.name = process.env.WORKER ?? `worker-${process.pid}`;

async function serve(url: string): Promise<void> {
  // A small pool per process: N replicas × poolSize (+1 for LISTEN) must fit max_connections.
  const backend = await openBackend(url, { postgres: { poolSize: 4 } });
  const tenant = await backend.openTenant(['examples', 'cluster']);
  for (const shop of JSON.parse(process.env.SHOPS ?? '[]') as string[])
    await Runtime.start(Orders, { shop }, { tenant }); // consume: true — this process serves the queue
  process.on('message', async (m: { op: string }) => {
    if (m.op !== 'bye') return;
    await Runtime.stopAll();
    await backend.close();
    process.exit(0);
  });
  process.send?.({ op: 'ready' });
}

async function main(): Promise<void> {
  process.on('disconnect', () => process.exit(0)); // the client went away: never linger
  // The client forks us while PostgreSQL starts, and sends its URL when it is up.
  process.once('message', (m: { op: string; url: string }) => {
    serve(m.url).catch((err) => {
      console.error(err);
      process.exit(1);
    });
  });
  process.send?.({ op: 'booted' });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
