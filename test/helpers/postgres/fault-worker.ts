/**
 * One app process of the fault test, run as
 *   node -r ts-node/register/transpile-only test/helpers/postgres/fault-worker.ts
 * (forked by test/helpers/runtime/workers.ts). It opens DGEN_BACKEND (with the JSON options in
 * DGEN_BACKEND_OPTIONS), consumes DGEN_SERVERS Tally servers under load plus one without (the
 * lock server, id DGEN_SERVERS), says `{ type: 'ready' }`, then serves
 * requests `{ id, op }` from the parent and answers `{ id, ok, value | code, message }`.
 *
 * Load (`load`): for each server, one producer casting `rec` and one caller calling `add`, each
 * sending its sequence numbers 1, 2, 3, … one at a time. It never re-sends a failed message (so a
 * duplicate can only come from below). Every 50 ms it reports what was acknowledged and what failed:
 * `{ type: 'acks', acks: [kind, p, i, t][], fails: [kind, p, i, code, t][] }`.
 *
 * Faults on request: `armTxStall` makes the next message this process handles say `stalling` and
 * wait inside its transaction; `armLockHang` makes @OnLocked say `locked` and never return.
 * The parent kills us there with kill -9.
 */
import 'reflect-metadata';
import { openBackend } from '../../../src/backend/open-backend';
import type { Backend } from '../../../src/backend/types';
import { postgresCounters } from '../../../src/backend/postgres/counters';
import { Runtime } from '../../../src/facade/runtime';
import type { ServerRef } from '../../../src/runtime/server-ref';
import { faultHooks, Tally, type TallyState } from './fault-servers';

type Request = { id: number; op: string } & Record<string, unknown>;
type Ack = [kind: 'cast' | 'call', p: string, i: number, t: number];
type Fail = [kind: 'cast' | 'call', p: string, i: number, code: string, t: number];

const NAME = process.env.DGEN_NAME ?? `w${process.pid}`;
const SERVERS = Number(process.env.DGEN_SERVERS ?? 3);
const send = (m: unknown) => {
  if (process.connected) process.send!(m);
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let backend: Backend;
const refs: ServerRef<TallyState>[] = [];
const acks: Ack[] = [];
const fails: Fail[] = [];
const loops: Promise<void>[] = [];
let loading = false;
/** Messages being sent now: producer → [kind, i, since]. */
const inFlight = new Map<string, [kind: 'cast' | 'call', i: number, since: number]>();
let consumerErrors = 0;
let handled = 0;

const pendingNow = () =>
  [...inFlight].map(([p, [kind, i, since]]) => `${kind} ${p}#${i} pending for ${Date.now() - since} ms`);

function flush(): void {
  if (acks.length === 0 && fails.length === 0) return;
  send({ type: 'acks', acks: acks.splice(0), fails: fails.splice(0) });
}

/** Sends `kind` messages 1, 2, 3, … to `ref`, each awaited, until the load stops. */
async function produce(ref: ServerRef<TallyState>, kind: 'cast' | 'call', p: string, pauseMs: number) {
  for (let i = 1; loading; i++) {
    inFlight.set(p, [kind, i, Date.now()]);
    try {
      if (kind === 'cast') await ref.cast({ type: 'rec', p, i });
      else await ref.call({ type: 'add', p, i }, { timeout: 4000 });
      inFlight.delete(p);
      acks.push([kind, p, i, Date.now()]);
      if (pauseMs > 0) await sleep(pauseMs);
    } catch (e) {
      inFlight.delete(p);
      fails.push([kind, p, i, String((e as { code?: string }).code ?? (e as Error).message), Date.now()]);
      await sleep(100);
    }
  }
}

async function serve(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'load': {
      if (loading) return false;
      loading = true;
      const pauseMs = Number(req.pauseMs ?? 0);
      refs.slice(0, SERVERS).forEach((ref, s) => {
        loops.push(produce(ref, 'cast', `${NAME}/s${s}/cast`, pauseMs));
        loops.push(produce(ref, 'call', `${NAME}/s${s}/call`, pauseMs));
      });
      return true;
    }
    case 'stopLoad': {
      // Every producer ends after the message it is sending; one that never settles is reported.
      loading = false;
      const all = Promise.all(loops.splice(0));
      const done = await Promise.race([
        all.then(() => true),
        sleep(Number(req.withinMs ?? 15_000)).then(() => false),
      ]);
      flush();
      return done
        ? []
        : [...inFlight].map(
            ([p, [kind, i, since]]) => `${kind} ${p}#${i} pending for ${Date.now() - since} ms`,
          );
    }
    case 'armTxStall': {
      let fired = false;
      faultHooks.inTransaction = async (m) => {
        if (fired) return;
        fired = true;
        send({ type: 'stalling', p: m.p, i: m.i });
        await sleep(4000); // below the 5 s transaction limit; we are killed long before
      };
      return true;
    }
    case 'armLockHang':
      faultHooks.inLocked = () => {
        send({ type: 'locked' });
        return new Promise<void>(() => undefined);
      };
      return true;
    case 'disarm':
      faultHooks.inTransaction = undefined;
      faultHooks.inLocked = undefined;
      return true;
    case 'slow':
      return refs[Number(req.server)].cast('slow');
    case 'get':
      return refs[Number(req.server)].call('get', { timeout: Number(req.timeout ?? 5000) });
    case 'stats':
      return { consumerErrors, handled, pending: pendingNow(), pg: { ...postgresCounters } };
    case 'exit':
      loading = false;
      await Promise.all(loops.splice(0));
      flush();
      await Runtime.stopAll();
      await backend.close();
      setImmediate(() => process.exit(0));
      return true;
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

async function main(): Promise<void> {
  const spec = process.env.DGEN_BACKEND;
  if (!spec) throw new Error('DGEN_BACKEND is not set');
  backend = await openBackend(spec, JSON.parse(process.env.DGEN_BACKEND_OPTIONS ?? '{}'));
  const tenant = await backend.openTenant(['fault']);
  const lockLeaseMs = Number(process.env.DGEN_LEASE_MS ?? 2000);
  for (let id = 0; id <= SERVERS; id++) {
    const ref = await Runtime.start<TallyState>(Tally, { id }, { tenant, lockLeaseMs, callTimeout: 4000 });
    ref.events$.subscribe((e) => {
      if (e.type === 'consumer-error') consumerErrors++;
      else if (e.type === 'handled') handled++;
    });
    refs.push(ref);
  }
  setInterval(flush, 50).unref();
  process.on('message', (req: Request) => {
    serve(req).then(
      (value) => send({ id: req.id, ok: true, value }),
      (err) => send({ id: req.id, ok: false, code: err?.code, message: String(err?.message ?? err) }),
    );
  });
  // The parent went away (or killed us): leave too, never linger.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', pid: process.pid });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
