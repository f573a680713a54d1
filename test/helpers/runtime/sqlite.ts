import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openBackend } from '../../../src/backend/open-backend';
import type { Backend } from '../../../src/backend/types';

/**
 * Opens the SQLite file at `file` the public way: `openBackend('sqlite:' + file)`. Tests choose
 * `synchronous: 'normal'` (no fsync per commit: nothing here survives a power cut anyway); the benchmarks
 * pass the default, `'full'`, or set DGEN_SYNCHRONOUS for their child processes.
 */
export function openSqlite(
  file: string,
  synchronous: 'normal' | 'full' = (process.env.DGEN_SYNCHRONOUS as 'normal' | 'full' | undefined) ??
    'normal',
): Promise<Backend> {
  return openBackend(`sqlite:${file}`, { sqlite: { synchronous } });
}

/** A fresh directory for one test file's SQLite files; `dispose()` removes it. */
export function tempDir(prefix = 'dgen-mp-'): {
  dir: string;
  file: (name: string) => string;
  dispose: () => void;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file: (name) => path.join(dir, name),
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
