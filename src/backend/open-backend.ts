import { BadArgumentError } from '../errors';
import { FdbBackend } from './fdb/fdb-backend';
import { MemoryBackend } from './memory/memory-backend';
import { SqliteBackend, type SqliteBackendOptions } from './sqlite/sqlite-backend';
import type { Backend } from './types';

const ACCEPTED = "'memory:', 'sqlite:PATH' (e.g. 'sqlite:./data/dgen.sqlite'), 'fdb:' or 'fdb:CLUSTER_FILE'";

export interface OpenBackendOptions {
  /** Options for a `sqlite:` backend (durability mode, lock timeout). */
  sqlite?: SqliteBackendOptions;
}

/**
 * Opens a backend from a spec string:
 * - `memory:` — in this process only (tests);
 * - `sqlite:PATH` — one SQLite file (created with its parent directories if missing), shared by the
 *   processes of one machine;
 * - `fdb:` or `fdb:CLUSTER_FILE` — FoundationDB (the default cluster file, or the one given).
 */
export async function openBackend(spec: string, options: OpenBackendOptions = {}): Promise<Backend> {
  if (typeof spec !== 'string')
    throw new BadArgumentError('BAD_BACKEND_SPEC', `openBackend takes a string; accepted forms: ${ACCEPTED}`);
  if (spec === 'memory:') return new MemoryBackend();
  if (spec.startsWith('sqlite:')) {
    const file = spec.slice('sqlite:'.length);
    if (file === '' || file === ':memory:' || file.includes('\0'))
      throw new BadArgumentError(
        'BAD_BACKEND_SPEC',
        `a sqlite: spec needs a file path, e.g. 'sqlite:./data/dgen.sqlite' (got ${JSON.stringify(spec)}); accepted forms: ${ACCEPTED}`,
      );
    return new SqliteBackend(file, options.sqlite);
  }
  if (spec === 'fdb:' || spec.startsWith('fdb:'))
    return FdbBackend.open(spec.slice('fdb:'.length) || undefined);
  throw new BadArgumentError(
    'BAD_BACKEND_SPEC',
    `unknown backend spec ${JSON.stringify(spec)}; accepted forms: ${ACCEPTED}`,
  );
}
