/**
 * `npm start`: a tour of durable servers on the embedded SQLite backend, in a few seconds.
 *
 *   1. State that outlives the process: a run counter kept by a durable bank server in ./data.
 *   2. A process killed with kill -9 loses nothing: a new process sees the same account.
 *   3. Two consumer processes serve one server: deposits cast into its durable queue are each handled
 *      exactly once, by the teller holding the server's consumer lease (the other stands by).
 *
 * Delete ./data to start from scratch.
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { openBackend, Runtime } from '../src';
import { Bank, me, type BankState } from './bank';

/** Where the demo keeps its file: ./data, or DGEN_DATA_DIR (the example test points it at a temp dir). */
const DB = path.join(process.env.DGEN_DATA_DIR ?? path.resolve(__dirname, '..', 'data'), 'dgen.sqlite');
const started = Date.now();
const line = (s = '') => console.log(s);

/** A teller process (examples/teller.ts) and a way to ask it things. */
interface Teller {
  name: string;
  child: ChildProcess;
  ask<T = unknown>(op: string, args?: object): Promise<T>;
  gone: Promise<void>;
}

function forkTeller(name: string): Promise<Teller> {
  const child = fork(path.join(__dirname, 'teller.ts'), [], {
    execArgv: ['-r', 'ts-node/register/transpile-only'],
    env: { ...process.env, TELLER: name, DEMO_DB: DB },
  });
  const waiting = new Map<string, (m: { value?: unknown; error?: string }) => void>();
  child.on('message', (m: { op: string; value?: unknown; error?: string }) => waiting.get(m.op)?.(m));
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const teller: Teller = {
    name,
    child,
    gone,
    ask: <T>(op: string, args: object = {}) =>
      new Promise<T>((resolve, reject) => {
        waiting.set(op, (m) => (m.error ? reject(new Error(`${name}: ${m.error}`)) : resolve(m.value as T)));
        child.send({ op, ...args });
      }),
  };
  return new Promise((resolve, reject) => {
    waiting.set('ready', () => resolve(teller));
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)));
  });
}

async function main(): Promise<void> {
  me.name = 'main';
  // The tellers take a second to boot (TypeScript); start them now, they wait until asked.
  const booting = Promise.all([forkTeller('teller-A'), forkTeller('teller-B')]);
  booting.catch(() => undefined);

  line('dgen-ts: durable servers whose state and message queue live in a database, not in a process.');
  line(`Everything below is stored in ${path.relative(process.cwd(), DB)} (SQLite).`);
  line();

  const backend = await openBackend(`sqlite:${DB}`);
  const tenant = await backend.openTenant(['examples', 'bank']);
  const bank = await Runtime.start<BankState>(Bank, null, { tenant });

  // 1 ----------------------------------------------------------------------------------------------
  line('1. State that outlives the process');
  const run = await bank.call<number>('new-run');
  line(`   This is run #${run} of \`npm start\` here. The count is part of the bank server's state, written`);
  line(
    `   to disk in the same transaction that handled the call. Run \`npm start\` again and it says #${run + 1}.`,
  );
  line();

  // 2 ----------------------------------------------------------------------------------------------
  line('2. A crash loses nothing');
  const [firstA, tellerB] = await booting;
  let tellerA = firstA;
  const after = await tellerA.ask<number>('deposit', { who: 'alice', amount: 10 });
  line(
    `   [${tellerA.name}] process ${tellerA.child.pid} deposited $10 for alice; her balance is $${after}.`,
  );
  process.kill(tellerA.child.pid!, 'SIGKILL');
  await tellerA.gone;
  line(`   [main] killed ${tellerA.name} (process ${tellerA.child.pid}) with kill -9: no clean-up code ran.`);
  const restarting = forkTeller('teller-A');
  restarting.catch(() => undefined);
  const seen = await tellerB.ask<number>('balance', { who: 'alice' });
  line(`   [${tellerB.name}] process ${tellerB.child.pid} starts the same bank: alice has $${seen}.`);
  tellerA = await restarting;
  const again = await tellerA.ask<number>('balance', { who: 'alice' });
  line(
    `   [${tellerA.name}] restarted as process ${tellerA.child.pid}: alice has $${again}, nothing was lost.`,
  );
  line('   (A deposit is committed before its call returns; a process dying afterwards cannot undo it.)');
  line();

  // 3 ----------------------------------------------------------------------------------------------
  line('3. Two consumer processes serve one server');
  await bank.stop(); // from now on this process only sends; the two tellers do the work
  const sender = await Runtime.start<BankState>(Bank, null, { tenant, consume: false });
  await Promise.all([tellerA.ask('serve'), tellerB.ask('serve')]);
  const before = await sender.call<number>({ type: 'balance', who: 'bob' });
  line(
    `   ${tellerA.name} and ${tellerB.name} both consume the bank's durable queue; this process only sends.`,
  );
  line('   Casting 8 deposits for bob (a cast returns once the message is safely stored in the queue):');
  let total = 0;
  for (let i = 1; i <= 8; i++) {
    await sender.cast({ type: 'deposit', who: 'bob', amount: i });
    total += i;
    await new Promise((r) => setTimeout(r, 40)); // one at a time, so each line shows who handled it
  }
  const bob = await sender.call<number>({ type: 'balance', who: 'bob' });
  await new Promise((r) => setTimeout(r, 50)); // let the tellers' last lines reach the terminal first
  line(
    `   [main] bob's balance went from $${before} to $${bob} (+$${total}): every deposit handled exactly once,`,
  );
  line('   by the teller holding the consumer lease; the other stands by and takes over if that one dies.');
  line(`   The queue is now empty: ${await sender.queueLength()} messages waiting.`);
  line();

  await Promise.all([tellerA, tellerB].map(async (t) => (await t.ask('bye'), await t.gone)));
  await Runtime.stopAll();
  await backend.close();
  line(
    `Done in ${((Date.now() - started) / 1000).toFixed(1)} s. Run \`npm start\` again to see run #${run + 1}; delete ./data to start over.`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
