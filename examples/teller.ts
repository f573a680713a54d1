/**
 * A teller: a separate OS process of the `npm start` demo (examples/start.ts forks it). It opens the
 * same SQLite file, then does what the parent asks over IPC:
 *   { op: 'deposit', who, amount }  start the bank here and make one deposit (a call)
 *   { op: 'balance', who }          start the bank here and read a balance (a call)
 *   { op: 'serve' }                 start the bank here as a consumer: handle what is in its queue
 *   { op: 'bye' }                   stop cleanly and exit
 * and answers { op, value } or { op, error }.
 */
import 'reflect-metadata';
import { openBackend, Runtime, type ServerRef, type Tenant } from '../src';
import { Bank, me, type BankState } from './bank';

me.name = process.env.TELLER ?? `teller-${process.pid}`;

async function main(): Promise<void> {
  const backend = await openBackend(`sqlite:${process.env.DEMO_DB}`);
  const tenant: Tenant = await backend.openTenant(['examples', 'bank']);
  let bank: ServerRef<BankState> | undefined;
  const theBank = async () => (bank ??= await Runtime.start<BankState>(Bank, null, { tenant }));

  const handle = async (m: { op: string; who?: string; amount?: number }): Promise<unknown> => {
    switch (m.op) {
      case 'deposit':
        return (await theBank()).call({ type: 'deposit', who: m.who, amount: m.amount });
      case 'balance':
        return (await theBank()).call({ type: 'balance', who: m.who });
      case 'serve':
        await theBank();
        return process.pid;
      case 'bye':
        await Runtime.stopAll();
        await backend.close();
        setImmediate(() => process.exit(0));
        return undefined;
      default:
        throw new Error(`unknown op ${m.op}`);
    }
  };
  process.on('message', (m: { op: string }) =>
    handle(m).then(
      (value) => process.send?.({ op: m.op, value }),
      (err: Error) => process.send?.({ op: m.op, error: err.message }),
    ),
  );
  process.on('disconnect', () => process.exit(0)); // the demo ended or died: never linger
  process.send?.({ op: 'ready', value: process.pid });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
