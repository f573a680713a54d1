import type { Sql } from 'postgres';
import { VALUE_BYTES } from './notify-payload';

/** The layout version this code writes; a database with a newer one is refused. */
export const SCHEMA_VERSION = 1;

/**
 * The server's incarnation: when its postmaster started, and when its shared statistics were last
 * reset (which a crash restart without a new postmaster also does). A transaction id handed out but
 * never written to the WAL before a crash is handed out again after it (see unknown-commit.ts).
 */
const BOOT = `pg_postmaster_start_time()::text || ' ' || coalesce(pg_stat_get_bgwriter_stat_reset_time()::text, '')`;

/**
 * A write's RETURNING that keeps, in the transaction's setting named `$name`, the key's NOTIFY entry
 * (see TouchedKeys): `$hex=<value>`, or `$hash` for a value too long to carry.
 */
const KEEP = (name: string, hex: string, hash: string, value: string) =>
  `set_config(${name}::text, CASE WHEN length(${value}) <= ${VALUE_BYTES} THEN ${hex}::text || '=' || encode(${value}, 'hex') ELSE ${hash}::text END, true) AS kept`;

/** Every SQL text the backend sends, for one schema (names quoted once here). */
export function statements(schema: string) {
  const s = `"${schema}"`;
  const kv = `${s}.kv`;
  // The texts made per number of keys, made once (one per commit otherwise, and the same string
  // object each time keeps the client's and PreparedStatements' lookups of it cheap).
  const watchValueTexts: string[] = [];
  const notifyTexts: string[] = [];
  return {
    kv,
    /** The server's incarnation, for texts made elsewhere (see commit-batch.ts). */
    boot: BOOT,
    begin: 'BEGIN ISOLATION LEVEL SERIALIZABLE',
    beginRead: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    commit: 'COMMIT',
    /**
     * A transaction that defers its flush (TransactOptions.deferFlush) commits asynchronously: PostgreSQL
     * acknowledges its COMMIT before the WAL record is on disk, and the WAL writer flushes it within
     * `wal_writer_delay` (200 ms) — or the next synchronous commit does, which flushes the WAL up to its
     * own record, past every earlier one. A crash of the server may lose it, never a synchronous commit
     * after it. Sent after BEGIN, or in the commit batch when decided there.
     */
    asyncCommit: 'SET LOCAL synchronous_commit = off',
    rollback: 'ROLLBACK',
    /**
     * Taken at the head of the commit batch of a transaction that adds or uses a versionstamp. A table
     * lock (unlike an advisory lock, which is a function call in a SELECT) does not fix the
     * transaction's snapshot, so a transaction that read nothing before sees every commit of the
     * previous holder.
     */
    commitLock: `LOCK TABLE ${s}.commit_lock IN EXCLUSIVE MODE`,
    get: `SELECT value FROM ${kv} WHERE key = $1`,
    /** Several gets (see GetBatch): $1 the keys as comma-separated hex; an index scan, as `get`'s. */
    getMany: `SELECT key, value FROM ${kv} WHERE key = ANY (ARRAY(SELECT decode(k, 'hex') FROM unnest(string_to_array($1::text, ',')) AS k))`,
    range: `SELECT key, value FROM ${kv} WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3`,
    rangeReverse: `SELECT key, value FROM ${kv} WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3`,
    set: `INSERT INTO ${kv} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    clear: `DELETE FROM ${kv} WHERE key = $1`,
    /** Several sets (see mergeWrites): $1 the keys, $2 the values, as comma-separated hex (keys distinct). */
    setMany: `INSERT INTO ${kv} (key, value) SELECT decode(k, 'hex'), decode(v, 'hex') FROM unnest(string_to_array($1::text, ','), string_to_array($2::text, ',')) AS w(k, v) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    /** Several clears: $1 the keys as comma-separated hex. */
    clearMany: `DELETE FROM ${kv} WHERE key = ANY (ARRAY(SELECT decode(k, 'hex') FROM unnest(string_to_array($1::text, ',')) AS k))`,
    clearRange: `DELETE FROM ${kv} WHERE key >= $1 AND key < $2`,
    /** $3-$5: where the key's NOTIFY entry is kept, the key (hex), its hash (see KEEP, notifyComputed). */
    add: `INSERT INTO ${kv} AS t (key, value) VALUES ($1, ${s}.add_le(NULL, $2::bigint)) ON CONFLICT (key) DO UPDATE SET value = ${s}.add_le(t.value, $2::bigint) RETURNING ${KEEP('$3', '$4', '$5', 't.value')}`,
    /** $1: the key with a placeholder, $2: the 1-based offset of the 10-byte stamp in it. */
    setStampedKey: `INSERT INTO ${kv} (key, value) VALUES (overlay($1::bytea placing ${s}.stamp() from $2::int for 10), $3) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    /** $4-$6: as add's $3-$5. */
    setStampedValue: `INSERT INTO ${kv} AS t (key, value) VALUES ($1, $2::bytea || ${s}.stamp() || $3::bytea) ON CONFLICT (key) DO UPDATE SET value = excluded.value RETURNING ${KEEP('$4', '$5', '$6', 't.value')}`,
    /** The transaction id, to learn the outcome of a commit whose reply was lost. */
    xid: `SELECT pg_current_xact_id()::text AS xid, ${BOOT} AS boot`,
    /**
     * The id and this transaction's versionstamp (drawn under the commit lock) in one reply: a commit
     * whose outcome is looked up by its id always has its stamp known too.
     */
    xidStamp: `SELECT pg_current_xact_id()::text AS xid, ${BOOT} AS boot, ${s}.stamp() AS stamp`,
    xactStatus: `SELECT pg_xact_status($1::xid8) AS status, ${BOOT} AS boot`,
    /**
     * In the commit query (see StatementPipeline.commitLocked) right after the transaction id and stamp:
     * the server flushes its output with every notice, so their reply reaches the client while the rest
     * of the commit runs (else it would come only with COMMIT's, and a commit cut while waiting on a row
     * lock could not be looked up). A NOTICE, which the server does not log by default: a BEGIN inside
     * the transaction did the same with a WARNING, and wrote a line to the server's log per commit.
     */
    flush: `SELECT ${s}.flush_reply()`,
    /** The values of `n` keys ($1…$n) as rows (w: 1…n, value: null when missing). */
    watchValues: (n: number) =>
      (watchValueTexts[n] ??=
        `SELECT w.i::int AS w, t.value FROM unnest(ARRAY[${Array.from({ length: n }, (_, i) => `$${i + 1}::bytea`).join(', ')}]) WITH ORDINALITY AS w(key, i) LEFT JOIN ${kv} t ON t.key = w.key`),
    notify: `SELECT pg_notify($1, $2)`,
    /**
     * NOTIFY with the entries $2, then the entries kept by the writes (see KEEP) whose values the server
     * computed, in the settings named $3, $5, … (a key's hash, $4, $6, …, should one be missing). Kept by
     * the writes rather than read back here: a read would take SERIALIZABLE predicate locks, and make
     * concurrent pushers conflict. One text per number of such keys, so no set-returning function to plan.
     */
    notifyComputed: (n: number) =>
      (notifyTexts[n] ??=
        `SELECT pg_notify($1, concat_ws(',', NULLIF($2::text, ''), ${Array.from({ length: n }, (_, i) => `coalesce(current_setting($${3 + 2 * i}::text, true), $${4 + 2 * i}::text)`).join(', ')}))`),
  };
}

export type Statements = ReturnType<typeof statements>;

/** The LISTEN/NOTIFY channel of a schema. */
export const channelOf = (schema: string): string => `dgen_${schema}`;

/** The DDL of layout version 1. Idempotent; run under an advisory lock so concurrent openers queue. */
function ddl(schema: string): string {
  const s = `"${schema}"`;
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.meta (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS ${s}.kv (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE IF NOT EXISTS ${s}.commit_lock ();
CREATE SEQUENCE IF NOT EXISTS ${s}.commit_version;
-- FoundationDB's ADD: little-endian int64, a missing or short value padded with zeros, wraps at 64 bits.
CREATE OR REPLACE FUNCTION ${s}.add_le(v bytea, d bigint) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE
  n numeric := 0;
  r bytea := '\\x0000000000000000'::bytea;
BEGIN
  FOR i IN REVERSE 7..0 LOOP
    n := n * 256 + CASE WHEN v IS NOT NULL AND i < length(v) THEN get_byte(v, i) ELSE 0 END;
  END LOOP;
  n := mod(n + d + 18446744073709551616, 18446744073709551616);
  FOR i IN 0..7 LOOP
    r := set_byte(r, i, mod(n, 256)::int);
    n := div(n, 256);
  END LOOP;
  RETURN r;
END $f$;
-- This transaction's 10-byte versionstamp: a commit version drawn once per transaction (under the
-- commit lock, so versions increase in commit order) and 2 zero bytes.
CREATE OR REPLACE FUNCTION ${s}.stamp() RETURNS bytea
LANGUAGE plpgsql VOLATILE AS $f$
DECLARE
  v text := current_setting('dgen.stamp', true);
BEGIN
  IF v IS NULL OR v = '' THEN
    v := nextval('${s}.commit_version')::text;
    PERFORM set_config('dgen.stamp', v, true);
  END IF;
  RETURN int8send(v::bigint) || '\\x0000'::bytea;
END $f$;
${flushReplyDdl(schema)}
INSERT INTO ${s}.meta (name, value) VALUES ('layout_version', '${SCHEMA_VERSION}') ON CONFLICT (name) DO NOTHING;
`;
}

/**
 * The flush of the commit query (see `flush` above): a NOTICE, sent to the client at once. Added to
 * layout 1 after its release: `ensureSchema` creates it in a schema made before (no data changes).
 */
function flushReplyDdl(schema: string): string {
  return `CREATE OR REPLACE FUNCTION "${schema}".flush_reply() RETURNS void
LANGUAGE plpgsql VOLATILE AS $f$ BEGIN RAISE NOTICE 'dgen: transaction id sent'; END $f$;`;
}

/** A fixed advisory lock key for dgen's DDL (any schema): concurrent openers create it one at a time. */
const DDL_LOCK = 0x64_67_65_6e; // 'dgen'

/**
 * Creates the schema if needed and checks its layout version. Safe when several processes open the
 * same database at once: the DDL runs in one transaction under an advisory lock, and `IF NOT EXISTS`
 * makes the later ones no-ops.
 */
export async function ensureSchema(sql: Sql, schema: string): Promise<number> {
  const found = await readVersion(sql, schema);
  if (found !== undefined) {
    if (found === SCHEMA_VERSION) await ensureFlushReply(sql, schema);
    return found;
  }
  await sql.begin(async (tx) => {
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${DDL_LOCK})`);
    await tx.unsafe(ddl(schema)).simple();
  });
  return (await readVersion(sql, schema)) ?? SCHEMA_VERSION;
}

/** A layout-1 schema made before `flush_reply` existed gets it (under the DDL lock, like the DDL). */
async function ensureFlushReply(sql: Sql, schema: string): Promise<void> {
  const [row] = await sql.unsafe<Array<{ f: string | null }>>(`SELECT to_regprocedure($1) AS f`, [
    `"${schema}".flush_reply()`,
  ]);
  if (row && row.f !== null) return;
  await sql.begin(async (tx) => {
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${DDL_LOCK})`);
    await tx.unsafe(flushReplyDdl(schema)).simple();
  });
}

async function readVersion(sql: Sql, schema: string): Promise<number | undefined> {
  const [row] = await sql.unsafe<Array<{ t: string | null }>>(`SELECT to_regclass($1) AS t`, [
    `"${schema}".meta`,
  ]);
  if (!row || row.t === null) return undefined;
  const [v] = await sql.unsafe<Array<{ value: string }>>(
    `SELECT value FROM "${schema}".meta WHERE name = 'layout_version'`,
  );
  return v ? Number(v.value) : undefined;
}
