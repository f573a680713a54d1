/**
 * Timers across real processes on one SQLite file: a timer that falls due while every process is
 * down fires at the next start, in due order; a process killed with -9 after moving a due timer into
 * the queue (its handler was running) loses nothing; two consuming processes fire each timer once.
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { Backend, Tenant } from '../../src/backend/types';
import { Runtime } from '../../src/facade/runtime';
import { waitFor } from '../runtime/backends';
import { openSqlite, tempDir } from '../helpers/runtime/sqlite';
import { Alarm, type AlarmState } from './fixtures';

const ROOT = path.resolve(__dirname, '../..');
const tmp = tempDir('dgen-timers-');
const children: ChildProcess[] = [];
let backend: Backend | undefined;

type Msg = { type: string };

function child(
  db: string,
  env: Record<string, string>,
): { proc: ChildProcess; seen: Msg[]; next: (t: string) => Promise<void> } {
  const proc = fork(path.join(__dirname, 'timer-child.ts'), [], {
    cwd: ROOT,
    execArgv: ['-r', 'ts-node/register/transpile-only'],
    env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'), TIMER_DB: db, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(proc);
  const seen: Msg[] = [];
  proc.on('message', (m: Msg) => seen.push(m));
  const next = (t: string) => waitFor(() => seen.some((m) => m.type === t), 90_000);
  return { proc, seen, next };
}

const exited = (p: ChildProcess) =>
  new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

afterAll(async () => {
  await Runtime.stopAll();
  await backend?.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  tmp.dispose();
});

let tenant: Tenant;
const db = tmp.file('timers.sqlite');
beforeAll(async () => {
  backend = await openSqlite(db);
  tenant = await backend.openTenant(['timers-mp']);
});

const fired = async (ref: { readState(): Promise<unknown> }) => ((await ref.readState()) as AlarmState).fired;

test('timers that fell due while every process was down fire at the next start, in due order', async () => {
  const c = child(db, { TIMER_MODE: 'arm-and-leave' });
  await c.next('left');
  await exited(c.proc);
  await new Promise((r) => setTimeout(r, 500)); // all three fall due with no process running
  const ref = await Runtime.start(Alarm, 'down', { tenant });
  await waitFor(async () => (await fired(ref)).length === 3, 30_000);
  expect(await fired(ref)).toEqual(['c', 'b', 'a']);
  expect(await ref.timers()).toEqual([]);
  await ref.stop();
}, 180_000);

/**
 * Alarm `id` consumed by a child process (with `env`, see timer-child.ts); this process sets its
 * timer 'k' (tag 'stall', due in 1 s) and kill -9s the child once the timer's handler runs there
 * (uncommitted). Returns the non-consuming ref that set the timer.
 */
async function killWhileTimerHandled(id: string, env: Record<string, string> = {}) {
  const setter = await Runtime.start(Alarm, id, { tenant, consume: false });
  const c = child(db, { TIMER_MODE: 'consume', TIMER_ID: id, ...env });
  await c.next('ready');
  await setter.castAfter(1000, { type: 'fire', tag: 'stall' }, { key: 'k' });
  await c.next('stalling');
  c.proc.kill('SIGKILL');
  await exited(c.proc);
  return setter;
}

/** Consumes Alarm `id` here until `count` messages were handled, and a moment more (a second handling would show). */
async function consumeUntilFired(id: string, count: number) {
  const ref = await Runtime.start(Alarm, id, { tenant });
  await waitFor(async () => (await fired(ref)).length === count, 30_000);
  await new Promise((r) => setTimeout(r, 200));
  return ref;
}

test('kill -9 while the fired message is being handled: the message is still handled, once', async () => {
  // The handler fails on the timer's first run (offered to the idle consumer), which sends the timer
  // through the queue: the kill then comes while it is handled from there.
  const setter = await killWhileTimerHandled('stall', { TIMER_FAIL_FIRST: '1' });
  expect(await setter.timers()).toEqual([]); // no longer a timer: it is a queued message
  expect(await setter.queueLength()).toBe(1);
  const ref = await consumeUntilFired('stall', 1);
  expect(await fired(ref)).toEqual(['stall']);
  expect(await ref.queueLength()).toBe(0);
  await ref.stop();
  await setter.stop();
}, 180_000);

test('kill -9 while an idle consumer handles a due timer straight from the index: it stays pending, then is handled once', async () => {
  // Offered to the idle consumer: its handler runs, nothing committed yet.
  const setter = await killWhileTimerHandled('stall2');
  expect((await setter.timers()).map((t) => t.key)).toEqual(['k']); // still a pending timer
  expect(await setter.queueLength()).toBe(0);
  const ref = await consumeUntilFired('stall2', 1);
  expect(await fired(ref)).toEqual(['stall']);
  expect(await ref.timers()).toEqual([]);
  expect(await ref.queueLength()).toBe(0);
  await ref.stop();
  await setter.stop();
}, 180_000);

test('two consuming processes: 200 timers set from a third fire once each', async () => {
  const a = child(db, { TIMER_MODE: 'consume', TIMER_ID: 'shared' });
  const b = child(db, { TIMER_MODE: 'consume', TIMER_ID: 'shared' });
  await Promise.all([a.next('ready'), b.next('ready')]);
  const setter = await Runtime.start(Alarm, 'shared', { tenant, consume: false });
  for (let i = 0; i < 200; i++) await setter.castAfter(200 + (i % 50) * 10, { type: 'fire', tag: String(i) });
  await waitFor(async () => (await fired(setter)).length >= 200, 60_000);
  await new Promise((r) => setTimeout(r, 500));
  const got = await fired(setter);
  expect(got.length).toBe(200);
  expect(new Set(got).size).toBe(200);
  expect(await setter.timers()).toEqual([]);
  await setter.stop();
}, 180_000);
