/**
 * A child process for the idempotency and rolling-upgrade tests, spoken to as worker.ts is (Workers):
 * `{ type: 'ready' }`, then requests `{ id, op, ... }` answered `{ id, ok, value | code, message }`,
 * and every ref's events as `{ type: 'event', event }`. It runs the `Tally` class at the version in
 * DGEN_CLASS_VERSION (1 or 2, default 1) on DGEN_DB, tenant DGEN_TENANT: a SQLite file, or
 * `postgres://…#schema` (a PostgreSQL schema of the test run, as worker.ts takes it).
 */
import 'reflect-metadata';
import type { Backend } from '../../../src/backend/types';
import { DurableServer, Init, OnCall, OnCast, OnUpgrade } from '../../../src/decorators';
import { noreply, ok, reply } from '../../../src/returns';
import { Runtime } from '../../../src/facade/runtime';
import { openBackend } from '../../../src/backend/open-backend';
import type { ServerRef } from '../../../src/runtime/server-ref';
import { openSqlite } from './sqlite';

export type TallyV1 = { n: number; sum: number; paid: number };
export type TallyV2 = { count: number; sum: number; paid: number; upgradedFrom: number };

/** Version 1: `rec` casts counted and summed; `pay` calls counted (each handling is one payment). */
@DurableServer({ name: 'tally' })
export class TallyV1Server {
  @Init() init() {
    return ok<TallyV1>({ n: 0, sum: 0, paid: 0 });
  }
  @OnCast('rec') rec(m: { i: number }, s: TallyV1) {
    return noreply({ ...s, n: s.n + 1, sum: s.sum + m.i });
  }
  @OnCall('pay') pay(_m: unknown, _f: unknown, s: TallyV1) {
    return reply({ payment: s.paid + 1, pid: process.pid }, { ...s, paid: s.paid + 1 });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: TallyV1) {
    return reply(s, s);
  }
}

/** Version 2: `n` renamed `count`, and the version it was upgraded from kept. */
@DurableServer({ name: 'tally', version: 2 })
export class TallyV2Server {
  @Init() init() {
    return ok<TallyV2>({ count: 0, sum: 0, paid: 0, upgradedFrom: 0 });
  }
  @OnUpgrade() upgrade(old: TallyV1, from: number): TallyV2 {
    return { count: old.n, sum: old.sum, paid: old.paid, upgradedFrom: from };
  }
  @OnCast('rec') rec(m: { i: number }, s: TallyV2) {
    return noreply({ ...s, count: s.count + 1, sum: s.sum + m.i });
  }
  @OnCall('pay') pay(_m: unknown, _f: unknown, s: TallyV2) {
    return reply({ payment: s.paid + 1, pid: process.pid }, { ...s, paid: s.paid + 1 });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: TallyV2) {
    return reply(s, s);
  }
}

type Request = { id: number; op: string } & Record<string, unknown>;
const open = (db: string): Promise<Backend> => {
  const [url, schema] = db.split('#');
  return /^postgres(ql)?:\/\//.test(db)
    ? openBackend(url, { postgres: { schema, poolSize: 4 } })
    : openSqlite(db);
};
const send = (m: unknown) => {
  if (process.connected) process.send!(m);
};
let backend: Promise<Backend> | undefined;
let tally: ServerRef | undefined;

const the = (): ServerRef => {
  if (!tally) throw new Error('start first');
  return tally;
};

async function serve(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'start': {
      backend ??= open(process.env.DGEN_DB!);
      const tenant = await (await backend).openTenant(JSON.parse(process.env.DGEN_TENANT ?? '["mp"]'));
      const cls = process.env.DGEN_CLASS_VERSION === '2' ? TallyV2Server : TallyV1Server;
      tally = await Runtime.start(cls, undefined, { ...(req.opts as object), tenant });
      tally.events$.subscribe((e) =>
        send({ type: 'event', event: e.type === 'handled' ? { type: e.type } : e }),
      );
      void tally.done.then((reason) =>
        send({ type: 'done', code: (reason as { code?: string } | undefined)?.code ?? String(reason) }),
      );
      return tally.tuid;
    }
    case 'call':
      return the().call(req.msg, { timeout: req.timeout as number, idempotencyKey: req.key as string });
    case 'castSeq': {
      const [from, to] = req.range as [number, number];
      for (let i = from; i <= to; i++) await the().cast({ type: 'rec', i });
      return to - from + 1;
    }
    case 'get':
      return the().call('get');
    case 'exit':
      await Runtime.stopAll();
      await (await backend)?.close();
      setImmediate(() => process.exit(0));
      return undefined;
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

process.on('message', (req: Request) => {
  serve(req).then(
    (value) => send({ id: req.id, ok: true, value }),
    (err) => send({ id: req.id, ok: false, code: err?.code, message: String(err?.message ?? err) }),
  );
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', pid: process.pid });
