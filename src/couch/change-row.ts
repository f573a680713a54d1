/**
 * A CouchDB update sequence: an opaque string on CouchDB 2+ (`"12-g1AAAA…"`), a number on
 * CouchDB 1.x and PouchDB. Only ever sent back to the server as `since`; never compared.
 */
export type Seq = string | number;

/** One row of a `_changes` feed, exactly as the server sent it. */
export interface ChangeRow<Doc = Record<string, unknown>> {
  readonly seq: Seq;
  readonly id: string;
  readonly changes: ReadonlyArray<{ readonly rev: string }>;
  readonly deleted?: boolean;
  /** Present with `includeDocs: true`. */
  readonly doc?: Doc;
}

/** True for a value the server may use as a sequence. */
export function isSeq(value: unknown): value is Seq {
  return (
    (typeof value === 'string' && value.length > 0) || (typeof value === 'number' && Number.isFinite(value))
  );
}
