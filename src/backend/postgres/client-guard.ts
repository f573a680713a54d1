import type { Sql } from 'postgres';

/** The client's query text that fetches the array types of each new connection (postgres 3.4.9). */
const TYPE_FETCH = "a.typcategory = 'A'";
const GUARDED = Symbol.for('dgen.postgres.typeFetchGuard');

interface QueryInternals {
  strings: readonly string[];
  args: readonly unknown[];
  resolve: (rows: unknown[]) => void;
  reject: (err: unknown) => void;
  handle: () => Promise<void>;
}

/**
 * postgres 3.4.9 fetches the array types on every new connection (`fetch_types`, which the backend
 * needs: see PostgresBackend.open) from an internal async function whose promise nobody awaits. If the
 * connection closes while that query runs (the server stops or restarts just as a pool connection
 * (re)connects), the rejection is unhandled and Node ends the whole process. Until the client handles
 * it, such a failed fetch resolves with no rows instead: the pool then knows no array types for now
 * (the backend reads none) and fetches them again with its next connection. Installed once per
 * process, on the client's Query class (reached through a query that is never run).
 */
export function guardTypeFetch(sql: Sql): void {
  const proto = Object.getPrototypeOf(sql.unsafe('SELECT 1')) as QueryInternals & { [GUARDED]?: true };
  if (proto[GUARDED] || typeof proto.handle !== 'function') return;
  const handle = proto.handle;
  proto.handle = function (this: QueryInternals) {
    if (this.args.length === 0 && this.strings.length === 1 && this.strings[0].includes(TYPE_FETCH)) {
      const resolve = this.resolve;
      this.reject = () => resolve([]);
    }
    return handle.call(this);
  };
  proto[GUARDED] = true;
}
