import 'reflect-metadata';
import { DurableServer, Init, OnCall, OnCast, OnLocked } from '../../../src/decorators';
import { lock, noreply, ok, reply } from '../../../src/returns';

/**
 * The durable server the multi-process tests share. It lives in a module of its own so the Jest
 * process and every worker process load the very same class (same name, same stored identity).
 */
export interface LedgerState {
  /** How many `rec` casts and `add` calls were handled. */
  count: number;
  /** Sum of what was added. */
  total: number;
  /** Per producer, the sequence numbers of its `rec` messages in the order they were handled. */
  log: Record<string, number[]>;
}

export type RecMsg = { type: 'rec'; p: string; i: number; by?: number };

/**
 * Test hooks a worker installs to make its copy of the server misbehave on purpose (stall inside the
 * handler's transaction, hang inside @OnLocked). Unset in the Jest process: the server behaves.
 * They are side effects inside a handler, which real servers must not have; here they are the point.
 */
export const hooks: {
  beforeRec?: (m: RecMsg) => Promise<void> | void;
  inLocked?: () => Promise<void> | void;
} = {};

@DurableServer({ name: 'mp-ledger' })
export class Ledger {
  @Init() init(_arg: unknown) {
    return ok<LedgerState>({ count: 0, total: 0, log: {} });
  }

  @OnCast('rec') async rec(m: RecMsg, s: LedgerState) {
    if (hooks.beforeRec) await hooks.beforeRec(m);
    const log = { ...s.log, [m.p]: [...(s.log[m.p] ?? []), m.i] };
    return noreply<LedgerState>({ count: s.count + 1, total: s.total + (m.by ?? 1), log });
  }

  @OnCall('add') add(m: { type: 'add'; by: number }, _from: unknown, s: LedgerState) {
    const next = { ...s, count: s.count + 1, total: s.total + m.by };
    return reply(next.total, next);
  }

  @OnCall('get') get(_m: unknown, _from: unknown, s: LedgerState) {
    return reply(s, s);
  }

  /** Takes the lock; @OnLocked('slow') then runs outside any transaction. */
  @OnCast('slow') slow(_m: unknown, s: LedgerState) {
    return lock(s);
  }

  @OnLocked('slow') async slowWork(_ev: unknown, _m: unknown, s: LedgerState) {
    if (hooks.inLocked) await hooks.inLocked();
    return noreply<LedgerState>({ ...s, count: s.count + 1 });
  }
}

/** A cheap counter for servers started by the thousand (benchmarks) and simple sums. */
@DurableServer({ name: 'mp-counter' })
export class Counter {
  @Init() init(arg: { id?: string | number } | undefined) {
    return arg?.id === undefined ? ok(0) : ok(0, ['c', arg.id]);
  }
  @OnCast('add') add(m: { type: 'add'; by: number }, n: number) {
    return noreply(n + m.by);
  }
  @OnCall('get') get(_m: unknown, _from: unknown, n: number) {
    return reply(n, n);
  }
}

/** A state with thousands of ids (an id-list), as a catalogue: costly to read whole after a cache miss. */
export interface CatalogState {
  count: number;
  items: Array<{ id: string; n: number }>;
}

@DurableServer({ name: 'mp-catalog' })
export class Catalog {
  @Init() init(arg: { ids?: number } | undefined) {
    const items = Array.from({ length: arg?.ids ?? 3500 }, (_, i) => ({ id: `item-${i}`, n: 0 }));
    return ok<CatalogState>({ count: 0, items });
  }
  @OnCast('bump') bump(_m: unknown, s: CatalogState) {
    return noreply<CatalogState>({ ...s, count: s.count + 1 });
  }
  @OnCall('count') countOf(_m: unknown, _from: unknown, s: CatalogState) {
    return reply(s.count, s);
  }
}

/** A server whose cast handler takes `ms` (slow work in a handler, as a neighbour that hogs nothing). */
@DurableServer({ name: 'mp-sloth' })
export class Sloth {
  @Init() init() {
    return ok(0);
  }
  @OnCast('nap') async nap(m: { type: 'nap'; ms: number }, n: number) {
    await new Promise((r) => setTimeout(r, m.ms));
    return noreply(n + 1);
  }
  /** Computes for `ms` without awaiting anything (a CPU-bound handler). */
  @OnCall('spin') spin(m: { type: 'spin'; ms: number }, _from: unknown, n: number) {
    const until = Date.now() + m.ms;
    while (Date.now() < until);
    return reply('spun', n + 1);
  }
}

export const SERVERS = { Ledger, Counter, Catalog, Sloth } as const;
export type ServerName = keyof typeof SERVERS;
