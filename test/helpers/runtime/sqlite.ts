import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openBackend } from '../../../src/backend/open-backend';
import type { Backend } from '../../../src/backend/types';

/** Opens the SQLite file at `file` the public way: `openBackend('sqlite:' + file)`. */
export async function openSqlite(file: string): Promise<Backend> {
  try {
    return await openBackend(`sqlite:${file}`);
  } catch (err) {
    // TEMPORARY until openBackend knows 'sqlite:' (the backend is being wired in right now).
    if ((err as { code?: string }).code !== 'BAD_BACKEND_SPEC') throw err;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { SqliteBackend } = require('../../../src/backend/sqlite/sqlite-backend');
    return new SqliteBackend(file) as Backend;
  }
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
