/**
 * A process that only consumes stays up (issue #11): nothing else in the script holds Node's event
 * loop, so the runtime must, while a consuming ref runs, and must not for a ref that only calls.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openBackend } from '../../src/backend/open-backend';
import type { Backend } from '../../src/backend/types';
import { Runtime } from '../../src/facade/runtime';
import { waitFor } from './backends';
import { Counter } from './fixtures';

const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(__dirname, '../helpers/runtime/bare-worker.ts');

function spawnBare(
  file: string,
  mode: 'consume' | 'call-only',
): { child: ChildProcess; ready: Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', SCRIPT, file, mode], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, ready, exited };
}

describe('a worker process that only consumes', () => {
  let dir: string;
  let backend: Backend;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'dgen-bare-'));
    backend = await openBackend(`sqlite:${path.join(dir, 'db.sqlite')}`);
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('stays up and handles casts sent from another process, then exits when stopped', async () => {
    const w = spawnBare(path.join(dir, 'db.sqlite'), 'consume');
    try {
      await w.ready;
      await new Promise((r) => setTimeout(r, 500)); // it used to exit ~16 ms after starting
      expect(w.child.exitCode).toBeNull();
      const tenant = await backend.openTenant(['bare']);
      const ref = await Runtime.start(Counter, {}, { tenant, consume: false });
      for (let i = 0; i < 3; i++) await ref.cast('incr');
      await waitFor(async () => (await ref.readState()) === 3, 10_000);
      expect(await ref.queueLength()).toBe(0);
      w.child.kill('SIGTERM'); // the worker stops its refs and closes its backend: then it may exit
      expect(await w.exited).toBe(0);
    } finally {
      if (w.child.exitCode === null) w.child.kill('SIGKILL');
    }
  }, 30_000);

  test('a process whose refs only call exits by itself when its work is done', async () => {
    const w = spawnBare(path.join(dir, 'db.sqlite'), 'call-only');
    try {
      await w.ready;
      const code = await Promise.race([
        w.exited,
        new Promise((r) => setTimeout(() => r('still running'), 10_000)),
      ]);
      expect(code).toBe(0);
    } finally {
      if (w.child.exitCode === null) w.child.kill('SIGKILL');
    }
  }, 30_000);
});
