import type { Statements } from './schema';
import type { Stmt } from './write-buffer';

type Row = Record<string, unknown>;

/** The tail of an unlocked commit: what commitTail sends before COMMIT. */
export interface CommitTail {
  /** Whether to return the transaction id (the transaction wrote). */
  xid: boolean;
  /** The writes not sent yet, in order (after mergeWrites). */
  writes: Stmt[];
  /** Keys whose values as committed are the watches' baselines. */
  watched: Buffer[];
  /** NOTIFY (st.notify or st.notifyComputed), if the commit wrote. */
  notify?: Stmt;
  /** Whether the commit defers its flush (st.asyncCommit). */
  async: boolean;
}

/** Most writes a one-statement tail takes: each number and kind of writes is its own prepared text. */
const MAX_WRITES = 6;
/** Most distinct one-statement texts made (per process): past that, tails go statement by statement. */
const MAX_TEXTS = 200;
const texts = new Map<string, string>();

/**
 * The tail of an unlocked commit batch, to send before COMMIT: the transaction id, the writes in
 * order, the watched keys' values, NOTIFY and the flush setting, as ONE statement when it can be — its
 * writes as data-modifying WITH queries, the rest in its one row — else (see `oneStatement`) one
 * statement each, the id first. Sent one by one, each statement cost the client a message to build and
 * a reply (ReadyForQuery) to parse, and the server a protocol round and a flush of its output (a
 * wake-up of the client): for a consumer's commit, 6 statements became 1. `rows` reads the tail's
 * replies (settled, in order) as rows: the id's, then `{ w, value }` per watched key (w: 1-based).
 */
export function commitTail(
  st: Statements,
  tail: CommitTail,
  xidStmt: Stmt,
): { stmts: Stmt[]; rows: (settled: Array<PromiseSettledResult<unknown>>) => Row[] } {
  const rowsOf = (s: PromiseSettledResult<unknown> | undefined): Row[] =>
    s?.status === 'fulfilled' ? (s.value as Row[]) : [];
  // (A transaction that wants its versionstamp goes one by one: its id's statement draws the stamp.)
  const one = xidStmt.text === st.xid ? oneStatement(st, tail) : undefined;
  if (one) return { stmts: [one], rows: (settled) => rowsOf(settled[0]) };
  const stmts: Stmt[] = tail.xid ? [xidStmt, ...tail.writes] : [...tail.writes];
  const baselineAt = stmts.length;
  for (const key of tail.watched) stmts.push({ text: st.get, params: [key] });
  if (tail.notify) stmts.push(tail.notify);
  if (tail.async) stmts.push({ text: st.asyncCommit, params: [] });
  return {
    stmts,
    rows: (settled) => {
      const rows: Row[] = tail.xid ? [rowsOf(settled[0])[0] ?? {}] : [];
      tail.watched.forEach((_, i) => {
        const s = settled[baselineAt + i];
        if (s.status === 'fulfilled') rows.push({ w: i + 1, value: rowsOf(s)[0]?.value ?? null });
      });
      return rows;
    },
  };
}

/**
 * The tail as one statement, or undefined when the statements of one WITH could disagree with the
 * same statements in order: all of a WITH's parts see the snapshot from before it, so no two writes
 * may touch one key (and no range is cleared beside other writes), no watched key may be written, and
 * only plain writes and adds are taken (versionstamped ones go in the locked commit). Also undefined
 * past MAX_WRITES writes, or with nothing to do. Each write is the schema's own text, its parameters
 * renumbered. The id comes back with the writes' reply rather than before them; that matters only for
 * a commit that ran, and the server sends this statement's reply before it runs COMMIT, as it did the
 * id's.
 */
function oneStatement(st: Statements, tail: CommitTail): Stmt | undefined {
  const { writes, watched, notify } = tail;
  if (writes.length > MAX_WRITES || (!tail.xid && writes.length === 0 && watched.length === 0)) return;
  const keys = new Set<string>();
  const distinct = (hex: string): boolean => !keys.has(hex) && (keys.add(hex), true);
  const parts: string[] = [];
  const params: unknown[] = [];
  const $ = (value: unknown, type: string): string => (params.push(value), `$${params.length}::${type}`);
  /** `text` with its parameters $1, $2, … renumbered after those taken so far. */
  const shifted = ({ text, params: p }: Stmt): string => {
    const base = params.length;
    params.push(...p);
    return text.replace(/\$(\d+)/g, (_, n: string) => `$${base + Number(n)}`);
  };
  // An add's NOTIFY setting name → its WITH query, whose `kept` (the value set_config returns) is the
  // add's NOTIFY entry: read from the query itself, not the setting, which this statement may not
  // have set yet where NOTIFY runs.
  const kept = new Map<string, string>();
  for (const [i, stmt] of writes.entries()) {
    const { text, params: p } = stmt;
    if (text === st.set || text === st.clear || text === st.add) {
      if (!distinct((p[0] as Buffer).toString('hex'))) return;
      if (text === st.add) kept.set(p[2] as string, `w${i}`); // [key, delta, setting name, key hex, key hash]
    } else if (text === st.setMany || text === st.clearMany) {
      if (!(p[0] as string).split(',').every(distinct)) return;
    } else if (text !== st.clearRange || writes.length > 1 || watched.length > 0) return;
    parts.push(`w${i} AS (${shifted(stmt)})`);
  }
  if (!watched.every((k) => !keys.has(k.toString('hex')))) return;
  // The one row: the id, NOTIFY (its computed entries from the adds' `kept`, or from settings kept by
  // adds sent before), the flush setting; then one row per watched key.
  const effects: string[] = [];
  if (notify) {
    const p = notify.params as string[];
    const entries = [`NULLIF(${$(p[1], 'text')}, '')`];
    for (let i = 2; i < p.length; i += 2) {
      const w = kept.get(p[i]);
      entries.push(
        w
          ? `(SELECT kept FROM ${w})`
          : `coalesce(current_setting(${$(p[i], 'text')}, true), ${$(p[i + 1], 'text')})`,
      );
    }
    effects.push(`pg_notify(${$(p[0], 'text')}, concat_ws(',', ${entries.join(', ')}))::text`);
  }
  if (tail.async) effects.push(`set_config('synchronous_commit', 'off', true)`);
  const id = tail.xid
    ? `pg_current_xact_id()::text AS xid, ${st.boot} AS boot`
    : 'NULL::text AS xid, NULL::text AS boot';
  const fx = effects.length > 0 ? `concat(${effects.join(', ')})` : 'NULL::text';
  const rows = [`SELECT ${id}, NULL::int AS w, NULL::bytea AS value, ${fx} AS fx`];
  watched.forEach((k, i) =>
    rows.push(`SELECT NULL, NULL, ${i + 1}, (${shifted({ text: st.get, params: [k] })}), NULL`),
  );
  const text = `${parts.length > 0 ? `WITH ${parts.join(', ')} ` : ''}${rows.join(' UNION ALL ')}`;
  // The same string object for the same text: the client's and PreparedStatements' lookups stay cheap.
  let same = texts.get(text);
  if (same === undefined) {
    if (texts.size >= MAX_TEXTS) return;
    texts.set(text, (same = text));
  }
  return { text: same, params };
}
