/**
 * LockFairness (src/backend/sqlite/lock-fairness.ts): a process that keeps SQLite's write lock busy
 * lets a waiting process in, and stops yielding once that waiter has been served. Separate instances
 * on one file stand for separate processes (each knows only its own announcements); a fresh holder is
 * used for each look, as a holder looks at most every 10 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockFairness } from '../../src/backend/sqlite/lock-fairness';
import { sleep } from '../helpers/backend/factories';

const dir = mkdtempSync(join(tmpdir(), 'dgen-fairness-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshFile = () => join(dir, `db-${++n}.sqlite`);
const holderYields = (file: string) => new LockFairness(file).shouldYield();

test('a holder yields to a waiter that announced itself, and not to its own announcements', () => {
  const file = freshFile();
  expect(holderYields(file)).toBe(false); // nobody has ever waited
  const waiter = new LockFairness(file);
  waiter.announce();
  expect(holderYields(file)).toBe(true);
  expect(waiter.shouldYield()).toBe(false); // the waiter, once holding, does not yield to itself
});

test('a waiter that got the lock withdraws its announcement: holders stop yielding at once', () => {
  const file = freshFile();
  const waiter = new LockFairness(file);
  waiter.announce();
  expect(holderYields(file)).toBe(true);
  waiter.served();
  expect(holderYields(file)).toBe(false); // it would count for 50 ms otherwise
  waiter.served(); // twice is harmless
  expect(holderYields(file)).toBe(false);
});

test('a served waiter does not withdraw a later announcement of another waiter', async () => {
  const file = freshFile();
  const first = new LockFairness(file);
  const second = new LockFairness(file);
  first.announce();
  await sleep(5);
  second.announce(); // the file's time is now the second waiter's
  first.served();
  expect(holderYields(file)).toBe(true);
  second.served();
  expect(holderYields(file)).toBe(false);
});
