import 'reflect-metadata';
import { encodeInt64LE } from '../../src/backend/common/int64';
import { pack } from '../../src/backend/keys';
import type { Backend, Tenant, Transaction } from '../../src/backend/types';
import { StateStore } from '../../src/codec/state-codec';
import { listServers, summarize, type ServerSummary } from '../../src/ops/inspect';
import { recordServer, registerTenant, scanIndex } from '../../src/ops/server-index';
import type { Tuid } from '../../src/returns';
import { ServerKeys } from '../../src/runtime/server-keys';
import { encodeWire } from '../../src/runtime/wire';
import { backendFactories } from '../helpers/backend/factories';

jest.setTimeout(300_000);

/** Queues from none to more than a range read's largest chunk (1024), so the scan has to skip them. */
const queueLength = (n: number) => (n % 20 === 1 ? 1100 : n % 5);
const SHORT = 5;
const item = (n: number, q: number) => encodeWire({ kind: 'cast', msg: { q }, at: 5_000 + n * 10 + q });

/** The rest of a long queue, a few hundred items a transaction (PostgreSQL sends each write). */
async function fillQueue(tenant: Tenant, tuid: Tuid, n: number): Promise<void> {
  const keys = new ServerKeys(tuid);
  for (let from = SHORT; from < queueLength(n); from += 250)
    await tenant.transact((tx) => {
      for (let q = from; q < Math.min(queueLength(n), from + 250); q++)
        tx.set(pack(keys.queueItemTuple(q)), item(n, q));
    });
}

/** A server written key by key, with whatever parts `n` selects (so neighbours differ). */
function writeServer(tx: Transaction, tuid: Tuid, n: number): void {
  const keys = new ServerKeys(tuid);
  new StateStore(keys.state).write(tx, undefined, { n, list: Array.from({ length: n % 7 }, (_, i) => i) });
  if (n % 3 === 0) tx.set(keys.lock, encodeWire({ owner: `proc-${n}/1`, leaseUntil: 1_000_000 + n }));
  for (let d = 0; d < n % 4; d++)
    tx.set(pack(keys.deadLetterTuple(d)), encodeWire({ msg: { d }, error: 'x', attempts: 1 }));
  const queued = queueLength(n);
  for (let q = 0; q < Math.min(queued, SHORT); q++) tx.set(pack(keys.queueItemTuple(q)), item(n, q));
  if (queued > 0) {
    tx.set(keys.pushCounter, encodeInt64LE(BigInt(queued + 2)));
    tx.set(keys.popCounter, encodeInt64LE(2n));
  }
  if (n % 2 === 1) tx.set(keys.attempts, encodeWire(1));
  if (n % 4 === 2) tx.set(keys.pendingMarker([9_999_999, `w${n}`]), encodeWire('p')); // after the state
}

/** The per-server reads (three ranges per server): what the page scan must reproduce exactly. */
async function oneByOne(tenant: Tenant, now: number): Promise<ServerSummary[]> {
  const out: ServerSummary[] = [];
  for await (const page of scanIndex(tenant))
    out.push(
      ...(await tenant.read((tx) => Promise.all(page.map((s) => summarize(tx, tenant.path, s, now))))),
    );
  return out;
}

async function listed(backend: Backend, path: string[], pageSize: number): Promise<ServerSummary[]> {
  const out: ServerSummary[] = [];
  for await (const page of listServers(backend, path, pageSize)) out.push(...page);
  return out;
}

/**
 * `got` equals `expected` but for ages, which each page measures from its own clock (read after
 * `expected` was): each is as old as expected plus at most the time since.
 */
function expectSame(got: ServerSummary[], expected: ServerSummary[], since: number): void {
  const noAge = (xs: ServerSummary[]) => xs.map((s) => ({ ...s, oldestAgeMs: s.oldestAgeMs === null }));
  expect(noAge(got)).toEqual(noAge(expected));
  const elapsed = Date.now() - since;
  got.forEach((s, i) => {
    const later = (s.oldestAgeMs ?? 0) - (expected[i].oldestAgeMs ?? 0);
    expect(later).toBeGreaterThanOrEqual(0);
    expect(later).toBeLessThanOrEqual(elapsed);
  });
}

describe.each(backendFactories.filter((f) => !f.skip).map((f) => [f.name, f] as const))(
  'listing servers a page at a time on %s',
  (_name, factory) => {
    let backend: Backend;
    let cleanup: () => Promise<void>;
    beforeAll(async () => ({ backend, cleanup } = await factory.open()));
    afterAll(() => cleanup());

    test('reads the same summaries as three range reads per server: locks, dead letters, long queues, keys between servers, nested tuids', async () => {
      const tenant = await backend.openTenant(['ops', 'pages']);
      await registerTenant(tenant);
      for (let n = 0; n < 60; n++) {
        await tenant.transact(async (tx) => {
          const tuid: Tuid = ['srv', n];
          await recordServer(tx, tuid, n % 2 ? 'Odd' : 'Even', 1);
          writeServer(tx, tuid, n);
          // keys of nobody between servers (an unindexed server's state, other data)
          if (n % 10 === 4) writeServer(tx, ['srv', n, 'zz-unindexed'], n + 1);
          if (n % 10 === 7)
            for (let g = 0; g < 300; g++) tx.set(pack(['srv', n + 0.5, g]), Buffer.from('gap'));
        });
        await fillQueue(tenant, ['srv', n], n);
      }
      await tenant.transact(async (tx) => {
        // a server whose state is never written, and one with only a lock
        await recordServer(tx, ['srv', 'bare'], 'Bare', 1);
        await recordServer(tx, ['srv', 'locked'], 'Bare', 1);
        tx.set(new ServerKeys(['srv', 'locked']).lock, encodeWire({ owner: 'p/2', leaseUntil: 7 }));
      });

      const now = Date.now();
      const expected = await oneByOne(tenant, now);
      expect(expected).toHaveLength(62);
      expect(expected.filter((s) => s.queueLength === 1100 && s.oldestAgeMs !== null)).toHaveLength(3);
      expect(expected.some((s) => s.lock !== null && s.deadLetters > 0)).toBe(true);
      for (const pageSize of [1, 7, 500]) {
        expectSame(await listed(backend, ['ops', 'pages'], pageSize), expected, now);
      }
    });

    test('a tuid that is a prefix of the next one (nested keys) is summarised as before', async () => {
      const tenant = await backend.openTenant(['ops', 'nested']);
      await registerTenant(tenant);
      await tenant.transact(async (tx) => {
        for (const tuid of [['n'], ['n', 'a'], ['n', 'a', 'b'], ['n', 'c']] as Tuid[]) {
          await recordServer(tx, tuid, 'Nested', 1);
          writeServer(tx, tuid, tuid.length + 1);
        }
      });
      const now = Date.now();
      const expected = await oneByOne(tenant, now);
      expectSame(await listed(backend, ['ops', 'nested'], 500), expected, now);
      expect(expected.map((s) => s.tuid)).toEqual([['n'], ['n', 'a'], ['n', 'a', 'b'], ['n', 'c']]);
    });
  },
);
