import { BackendError } from '../../errors';
import type { Stmt } from './write-buffer';

/**
 * A parameter as an SQL literal, for statements sent in a simple-protocol query (which takes no
 * parameters): bytes as hex through decode() and text as an E'' string, both read the same whatever
 * standard_conforming_strings says; integers as digits.
 */
export function literal(value: unknown): string {
  if (value === null) return 'NULL';
  if (Buffer.isBuffer(value)) return `decode('${value.toString('hex')}', 'hex')`;
  if (typeof value === 'string') return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new BackendError('BAD_ARGUMENT', `no SQL literal for a parameter of type ${typeof value}`);
}

/** The statement's text with its parameters ($1, $2, …) written in as literals. */
export function inline(stmt: Stmt): string {
  return stmt.text.replace(/\$(\d+)/g, (_, n: string) => literal(stmt.params[Number(n) - 1]));
}

/**
 * `EXECUTE name(…)` of a statement prepared with SQL `PREPARE` on the connection, its parameters written
 * in as literals: in a simple-protocol query, the server plans the statement once per connection
 * instead of parsing and planning its text every time (see PreparedStatements.nameOf).
 */
export function execute(name: string, stmt: Stmt): string {
  return stmt.params.length === 0
    ? `EXECUTE ${name}`
    : `EXECUTE ${name}(${stmt.params.map(literal).join(', ')})`;
}
