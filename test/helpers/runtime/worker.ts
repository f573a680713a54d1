/**
 * A child process for the multi-process tests and benchmarks, run as
 *   node -r ts-node/register/transpile-only test/helpers/runtime/worker.ts
 * It says `{ type: 'ready' }` over IPC, then serves requests `{ id, op, ... }` from the parent,
 * answering `{ id, ok: true, value }` or `{ id, ok: false, code, message }`. Every ref it starts
 * reports its events as `{ type: 'event', ref, event }` (unless the `start` request says `quiet`).
 *
 * Which SQLite file (or `postgres://…#schema`) and tenant: a `start` request's `db` and `tenant`, else
 * DGEN_DB and DGEN_TENANT (JSON) from the environment; each is opened once. `reset` stops every ref and closes every
 * backend, so one worker can serve several tests in turn.
 *
 * Misbehaviour on purpose (see `hooks` in servers.ts):
 * - DGEN_STALL_FROM=n: the first `rec` cast with i >= n this process handles says `{ type: 'stalling', i }`
 *   and then waits inside its handler (its batch not yet committed) so the parent can kill -9 it there.
 * - DGEN_HANG_LOCKED=1: @OnLocked says `{ type: 'locked' }` and never returns (until killed).
 * DGEN_COUNT_COMMITS=1 wraps its backends in a CountingBackend; `commits` answers their counts.
 */
import 'reflect-metadata';
import type { Backend, Tenant } from '../../../src/backend/types';
import { Runtime } from '../../../src/facade/runtime';
import type { ServerRef } from '../../../src/runtime/server-ref';
import { countingBackend, type CommitCounts } from './counting-backend';
import { hooks, SERVERS, type ServerName } from './servers';
import { openSqlite } from './sqlite';
import { openBackend } from '../../../src/backend/open-backend';

type Request = { id: number; op: string } & Record<string, unknown>;

const send = (m: unknown) => {
  if (process.connected) process.send!(m);
};
const refs = new Map<string, ServerRef>();
const backends = new Map<string, Promise<Backend>>();

async function tenantOf(req: Request): Promise<Tenant> {
  const db = (req.db as string | undefined) ?? process.env.DGEN_DB;
  if (!db) throw new Error('no SQLite file: pass db in the request or DGEN_DB in the environment');
  let backend = backends.get(db);
  if (!backend) {
    // `postgres://…#schema` (a PostgreSQL schema of the test run), else a SQLite file.
    const [url, schema] = db.split('#');
    const opened = /^postgres(ql)?:\/\//.test(db)
      ? openBackend(url, { postgres: { schema, poolSize: Number(process.env.DGEN_PG_POOL ?? 4) } })
      : openSqlite(db);
    backend = process.env.DGEN_COUNT_COMMITS === '1' ? opened.then(countingBackend) : opened;
    backends.set(db, backend);
  }
  const path = (req.tenant as string[] | undefined) ?? JSON.parse(process.env.DGEN_TENANT ?? '["mp"]');
  return (await backend).openTenant(path);
}

async function closeAll(): Promise<void> {
  await Runtime.stopAll();
  refs.clear();
  const all = [...backends.values()];
  backends.clear();
  await Promise.all(all.map(async (b) => (await b).close()));
}

const stallFrom = process.env.DGEN_STALL_FROM === undefined ? undefined : Number(process.env.DGEN_STALL_FROM);
if (stallFrom !== undefined) {
  let stalled = false;
  hooks.beforeRec = async (m) => {
    if (stalled || m.i < stallFrom) return;
    stalled = true;
    send({ type: 'stalling', i: m.i, p: m.p });
    await new Promise((r) => setTimeout(r, 4000)); // below the 5 s transaction limit; we are killed long before
  };
}
if (process.env.DGEN_HANG_LOCKED === '1') {
  hooks.inLocked = () => {
    send({ type: 'locked' });
    return new Promise<void>(() => undefined);
  };
}

function ref(name: unknown): ServerRef {
  const r = refs.get(String(name));
  if (!r) throw new Error(`worker ${process.pid} has no ref ${String(name)}`);
  return r;
}

async function serve(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'start': {
      const cls = SERVERS[req.server as ServerName];
      const r = await Runtime.start(cls, req.arg, { ...(req.opts as object), tenant: await tenantOf(req) });
      const name = String(req.ref);
      refs.set(name, r);
      // `quiet`: no events over IPC (benchmarks: the parent would wake to parse one per message).
      if (!req.quiet)
        r.events$.subscribe((e) =>
          send({ type: 'event', ref: name, event: { type: e.type, kind: 'kind' in e ? e.kind : undefined } }),
        );
      return r.tuid;
    }
    case 'startMany': {
      // `count` Counter servers, each its own tuid ['c', i]; they stay in this process, idle.
      const count = Number(req.count);
      const opts = (req.opts as object) ?? {};
      const tenant = await tenantOf(req);
      for (let i = 0; i < count; i++) await Runtime.start(SERVERS.Counter, { id: i }, { ...opts, tenant });
      return count;
    }
    case 'cast':
      return ref(req.ref).cast(req.msg);
    case 'castMany':
      return ref(req.ref).castMany(req.msgs as unknown[]);
    case 'castSeq': {
      // One cast after another, each awaited: a producer sending in its own order.
      for (const m of req.msgs as unknown[]) await ref(req.ref).cast(m);
      return (req.msgs as unknown[]).length;
    }
    case 'call':
      return ref(req.ref).call(req.msg, { timeout: req.timeout as number | undefined });
    case 'callTimes': {
      // `n` calls one after another; the round-trip times in ms.
      const times: number[] = [];
      for (let i = 0; i < Number(req.n); i++) {
        const t0 = process.hrtime.bigint();
        await ref(req.ref).call(req.msg, { timeout: req.timeout as number | undefined });
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return times;
    }
    case 'castRate': {
      // Casts per second (enqueue + handle) of one busy Counter in this process, for about `ms`.
      const busy = await Runtime.start(SERVERS.Counter, { id: 'busy' }, { tenant: await tenantOf(req) });
      let handled = 0;
      busy.events$.subscribe((e) => void (e.type === 'handled' && handled++));
      const t0 = performance.now();
      let sent = 0;
      while (performance.now() - t0 < Number(req.ms)) {
        await busy.cast({ type: 'add', by: 1 });
        sent++;
      }
      while (handled < sent) await new Promise((r) => setTimeout(r, 1));
      const rate = (sent * 1000) / (performance.now() - t0);
      await busy.stop();
      return rate;
    }
    case 'readState':
      return ref(req.ref).readState();
    case 'queueLength':
      return ref(req.ref).queueLength();
    case 'stop':
      await ref(req.ref).stop();
      refs.delete(String(req.ref));
      return undefined;
    case 'commits': {
      // With DGEN_COUNT_COMMITS=1: the commits of every backend this worker opened, summed.
      const sum: CommitCounts = { writes: 0, readOnly: 0, deferred: 0, reads: 0 };
      for (const b of backends.values()) {
        const counts = ((await b) as Partial<{ counts: CommitCounts }>).counts;
        if (!counts) continue;
        sum.writes += counts.writes;
        sum.readOnly += counts.readOnly;
        sum.deferred += counts.deferred;
        sum.reads += counts.reads;
      }
      return sum;
    }
    case 'cpu': // µs of CPU this process has used, user + system
      return (({ user, system }) => user + system)(process.cpuUsage());
    case 'rss':
      if (global.gc) global.gc();
      return process.memoryUsage().rss;
    case 'reset':
      return closeAll();
    case 'exit':
      await closeAll();
      setImmediate(() => process.exit(0));
      return undefined;
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

async function main(): Promise<void> {
  if (process.env.DGEN_DB) await tenantOf({ id: 0, op: 'open' }); // fail early on a bad file
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
