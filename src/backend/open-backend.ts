import { BadArgumentError } from '../errors';
import { FdbBackend } from './fdb/fdb-backend';
import { MemoryBackend } from './memory/memory-backend';
import { PostgresBackend } from './postgres/postgres-backend';
import type { PostgresBackendOptions } from './postgres/postgres-options';
import { SqliteBackend, type SqliteBackendOptions } from './sqlite/sqlite-backend';
import type { Backend } from './types';

const ACCEPTED =
  "'memory:', 'sqlite:PATH' (e.g. 'sqlite:./data/dgen.sqlite'), 'postgres://USER:PASSWORD@HOST:PORT/DATABASE' (or postgresql://), 'fdb:' or 'fdb:CLUSTER_FILE'";

export interface OpenBackendOptions {
  /** Options for a `sqlite:` backend (durability mode, lock timeout). */
  sqlite?: SqliteBackendOptions;
  /** Options for a `postgres://` backend (pool size, schema, connect and statement timeouts). */
  postgres?: PostgresBackendOptions;
}

/**
 * Opens a backend from a spec string:
 * - `memory:` — in this process only (tests);
 * - `sqlite:PATH` — one SQLite file (created with its parent directories if missing), shared by the
 *   processes of one machine;
 * - `postgres://user:password@host:port/database` (or `postgresql://`) — PostgreSQL, shared by
 *   processes on any number of hosts;
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
  if (/^postgres(ql)?:/i.test(spec))
    return PostgresBackend.open(spec, options.postgres).catch((err: unknown) => {
      if (err instanceof BadArgumentError && err.code === 'BAD_BACKEND_SPEC')
        throw new BadArgumentError('BAD_BACKEND_SPEC', `${err.message}; accepted forms: ${ACCEPTED}`);
      throw err;
    });
  if (spec === 'fdb:' || spec.startsWith('fdb:'))
    return FdbBackend.open(spec.slice('fdb:'.length) || undefined);
  throw new BadArgumentError(
    'BAD_BACKEND_SPEC',
    `unknown backend spec ${JSON.stringify(spec)}; accepted forms: ${ACCEPTED}`,
  );
}
