import { BadArgumentError } from '../errors';
import type { Tenant } from '../backend/types';
import { isSeq, type Seq } from './change-row';

export type FeedKind = 'continuous' | 'longpoll';

/** Where a follower keeps its last handled seq and state between runs. */
export interface CheckpointOptions {
  /** The backend tenant that holds the checkpoint. */
  readonly tenant: Tenant;
  /** Names this follower's checkpoint within the tenant (default: the class's name). */
  readonly key?: string;
}

/** A `_changes` query parameter passed through as given. */
export type QueryValue = string | number | boolean;

/**
 * The third argument of `follow(db, state, options)`. Known options are checked; any other key is a
 * `_changes` query parameter passed through unchanged (`style: 'all_docs'`, `conflicts: true`,
 * `limit: 100`, …).
 */
export interface FollowOptions {
  /** `continuous` (default): one long response of rows; `longpoll`: one JSON answer per request. */
  readonly feed?: FeedKind;
  /** Milliseconds between the server's heartbeat newlines (sent in the query; default 60 000). No byte
   * for twice this long means the connection is dead: it is dropped and opened again. */
  readonly heartbeat?: number;
  /** Sent in the query (default 7 200 000 ms), as ICouch does. CouchDB ends a quiet feed after it only
   * when no heartbeat is set ("heartbeat overrides any timeout"), and the follower always sets one. */
  readonly timeout?: number;
  /** Start after this seq (`'now'` for only new changes); a checkpoint, when there is one, wins. */
  readonly since?: Seq;
  readonly includeDocs?: boolean;
  /** A filter function `ddoc/name` (or a built-in such as `_design`). Ignored with `docIds`. */
  readonly filter?: string;
  /** Follow only these documents (a POST with `filter=_doc_ids`; overrides `filter`). */
  readonly docIds?: readonly string[];
  /** Store the last handled seq and the state in a backend after each batch; resume there on restart. */
  readonly checkpoint?: CheckpointOptions;
  /** Upper bound of the random delay added before reconnecting (default 500 ms, as ICouch). */
  readonly jitterMs?: number;
  /** The longest feed line (continuous) or answer (longpoll) read, in bytes (default 64 MiB); a
   * longer one is a `protocol` feed failure, so a hostile server cannot fill memory. */
  readonly maxLineBytes?: number;
  readonly [param: string]: unknown;
}

/** Options after validation, with defaults filled in. */
export interface ResolvedOptions {
  readonly feed: FeedKind;
  readonly heartbeat: number;
  readonly timeout: number;
  readonly since?: Seq;
  readonly includeDocs: boolean;
  readonly filter?: string;
  readonly docIds?: readonly string[];
  readonly checkpoint?: CheckpointOptions;
  readonly jitterMs: number;
  readonly maxLineBytes: number;
  /** Pass-through query parameters, already stringified. */
  readonly extra: ReadonlyArray<readonly [string, string]>;
}

export const DEFAULT_HEARTBEAT_MS = 60_000;
export const DEFAULT_TIMEOUT_MS = 7_200_000;
export const DEFAULT_JITTER_MS = 500;
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

const KNOWN = new Set([
  'feed',
  'heartbeat',
  'timeout',
  'since',
  'includeDocs',
  'filter',
  'docIds',
  'checkpoint',
  'jitterMs',
  'maxLineBytes',
]);
/** Query parameters the follower sets itself; passing them raw would fight the known options. */
const RESERVED = new Map([
  ['include_docs', 'includeDocs'],
  ['doc_ids', 'docIds'],
  ['jitter_ms', 'jitterMs'],
  ['max_line_bytes', 'maxLineBytes'],
]);

const bad = (what: string) => new BadArgumentError('BAD_ARGUMENT', `follow(db, state, options): ${what}`);

function positiveInt(name: string, value: unknown, fallback: number, unit = 'milliseconds'): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw bad(`options.${name} must be a positive whole number of ${unit} (got ${String(value)})`);
  return value;
}

/** Checks `follow`'s options and fills in the defaults. */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw bad(`options must be an object (got ${Array.isArray(options) ? 'an array' : typeof options})`);
  const o = options as Record<string, unknown>;

  const feed = o.feed ?? 'continuous';
  if (feed !== 'continuous' && feed !== 'longpoll')
    throw bad(`options.feed must be 'continuous' or 'longpoll' (got ${JSON.stringify(feed)})`);
  const heartbeat = positiveInt('heartbeat', o.heartbeat, DEFAULT_HEARTBEAT_MS);
  const timeout = positiveInt('timeout', o.timeout, DEFAULT_TIMEOUT_MS);
  if (o.since !== undefined && !isSeq(o.since))
    throw bad(
      `options.since must be a seq (a non-empty string such as 'now', or a number); got ${JSON.stringify(o.since)}`,
    );
  if (o.includeDocs !== undefined && typeof o.includeDocs !== 'boolean')
    throw bad('options.includeDocs must be a boolean');
  if (o.filter !== undefined && (typeof o.filter !== 'string' || o.filter.length === 0))
    throw bad('options.filter must be a non-empty string such as "ddoc/name"');
  let docIds: readonly string[] | undefined;
  if (o.docIds !== undefined) {
    if (!Array.isArray(o.docIds) || !o.docIds.every((id) => typeof id === 'string'))
      throw bad('options.docIds must be an array of document id strings');
    docIds = Object.freeze([...(o.docIds as string[])]);
  }
  let checkpoint: CheckpointOptions | undefined;
  if (o.checkpoint !== undefined) {
    const c = o.checkpoint as { tenant?: unknown; key?: unknown };
    if (typeof c !== 'object' || c === null) throw bad('options.checkpoint must be { tenant, key? }');
    const t = c.tenant as Partial<Tenant> | undefined;
    if (
      typeof t !== 'object' ||
      t === null ||
      typeof t.transact !== 'function' ||
      typeof t.read !== 'function'
    )
      throw bad('options.checkpoint.tenant must be a backend tenant (from backend.openTenant([...]))');
    if (c.key !== undefined && (typeof c.key !== 'string' || c.key.length === 0))
      throw bad('options.checkpoint.key must be a non-empty string');
    checkpoint = { tenant: t as Tenant, key: c.key as string | undefined };
  }
  const jitterMs = o.jitterMs ?? DEFAULT_JITTER_MS;
  if (typeof jitterMs !== 'number' || !Number.isFinite(jitterMs) || jitterMs < 0)
    throw bad(`options.jitterMs must be a non-negative number (got ${String(o.jitterMs)})`);
  const maxLineBytes = positiveInt('maxLineBytes', o.maxLineBytes, DEFAULT_MAX_LINE_BYTES, 'bytes');

  const extra: Array<readonly [string, string]> = [];
  for (const [key, value] of Object.entries(o)) {
    if (KNOWN.has(key) || value === undefined) continue;
    const known = RESERVED.get(key);
    if (known !== undefined) throw bad(`use options.${known} instead of the raw query parameter ${key}`);
    if (key === 'seq_interval')
      throw bad(
        'seq_interval is not supported: CouchDB then sends rows with seq null, which cannot be resumed from',
      );
    // `constructor`, `toString`, `__proto__`, …: most likely a mistake, and no _changes parameter
    if (key in Object.prototype)
      throw bad(`options.${key} is neither a follow option nor a _changes query parameter`);
    if (typeof value === 'string') extra.push([key, value]);
    else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean')
      extra.push([key, String(value)]);
    else
      throw bad(
        `query parameter ${key} must be a string, a finite number or a boolean (got ${typeof value})`,
      );
  }

  return Object.freeze({
    feed,
    heartbeat,
    timeout,
    since: o.since as Seq | undefined,
    includeDocs: o.includeDocs === true,
    filter: o.filter as string | undefined,
    docIds,
    checkpoint,
    jitterMs,
    maxLineBytes,
    extra: Object.freeze(extra),
  });
}
