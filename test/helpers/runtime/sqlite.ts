import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openBackend } from '../../../src/backend/open-backend';
import type { Backend } from '../../../src/backend/types';

/** Opens the SQLite file at `file` the public way: `openBackend('sqlite:' + file)` (default durability). */
export function openSqlite(file: string): Promise<Backend> {
  return openBackend(`sqlite:${file}`);
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
