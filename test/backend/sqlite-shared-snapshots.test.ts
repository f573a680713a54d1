/** Snapshot reads of one process that arrive together share a read transaction (SharedSnapshots). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteBackend } from '../../src/backend/sqlite/sqlite-backend';
import type { Tenant } from '../../src/backend/types';
import { sleep } from '../helpers/backend/factories';

let dir: string;
let backend: SqliteBackend;
let tenant: Tenant;
const k = (s: string) => Buffer.from(s);
const text = (v: Buffer | undefined) => v?.toString();

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dgen-shared-snap-'));
  backend = new SqliteBackend(join(dir, 'db.sqlite'), { synchronous: 'normal' });
  tenant = await backend.openTenant(['t']);
  await tenant.transact((tx) => {
    tx.set(k('a'), k('1'));
    tx.set(k('b'), k('1'));
  });
});

afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

test('reads asked for together see one snapshot, even across a commit made while they run', async () => {
  const [first, second] = await Promise.all([
    tenant.read(async (tx) => {
      const a = await tx.get(k('a'));
      await sleep(20); // a commit lands meanwhile
      return [text(a), text(await tx.get(k('b')))];
    }),
    tenant.read(async (tx) => {
      const a = await tx.get(k('a'));
      await tenant.transact((w) => {
        w.set(k('a'), k('2'));
        w.set(k('b'), k('2'));
      });
      return [text(a), text(await tx.get(k('b')))];
    }),
  ]);
  expect(first).toEqual(['1', '1']);
  expect(second).toEqual(['1', '1']);
  expect(await tenant.read(async (tx) => text(await tx.get(k('b'))))).toBe('2');
});

test('a read asked for after a shared snapshot began does not join it: it sees every earlier commit', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const early = tenant.read(async (tx) => {
    const a = text(await tx.get(k('a')));
    await held;
    return a;
  });
  await sleep(5); // the early read's snapshot has begun
  await tenant.transact((w) => w.set(k('a'), k('3')));
  const late = tenant.read(async (tx) => text(await tx.get(k('a'))));
  release();
  expect(await early).toBe('1');
  expect(await late).toBe('3');
});

test('a read that fails fails alone; the reads that shared its snapshot keep it to the end', async () => {
  const results = await Promise.allSettled([
    tenant.read(async () => {
      throw new Error('this read fails');
    }),
    tenant.read(async (tx) => {
      const a = await tx.get(k('a'));
      await sleep(10);
      await tenant.transact((w) => w.set(k('b'), k('4')));
      return [text(a), text(await tx.get(k('b')))];
    }),
  ]);
  expect(results[0]).toMatchObject({ status: 'rejected', reason: { message: 'this read fails' } });
  expect(results[1]).toEqual({ status: 'fulfilled', value: ['1', '1'] });
});

test('close waits for reads under way, and later reads fail with BACKEND_CLOSED', async () => {
  const reading = tenant.read(async (tx) => {
    await sleep(20);
    return text(await tx.get(k('a')));
  });
  await sleep(1);
  await backend.close();
  expect(await reading).toBe('1');
  await expect(tenant.read(async (tx) => tx.get(k('a')))).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
});
