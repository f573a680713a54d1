/**
 * The commit query that takes the commit lock (one simple-protocol query, see
 * StatementPipeline.commitLocked), watched over the client's sockets against the server of the test
 * run (DGEN_TEST_POSTGRES_URL):
 * - it runs its statements as EXECUTE of statements prepared on the connection: PREPAREd in the first
 *   such query of each connection, then executed by name. PREPARE is not transactional, so after a
 *   failed commit query the connection's names are forgotten and fresh ones prepared: a retried body
 *   must not meet "prepared statement already exists";
 * - it flushes its transaction id early with a NOTICE (`flush_reply()`), which the server does not write
 *   to its log at the default log_min_messages: it used a BEGIN inside the transaction, whose WARNING
 *   was a log line per queue push on the user's server. A schema made before the function existed gets
 *   it when opened.
 */
import postgres from 'postgres';
import { openBackend } from '../../src/backend/open-backend';
import { pack, prefixRange, unboundVersionstamp } from '../../src/backend/keys';
import type { Backend, Tenant } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';
import { duringSocketReads, duringSocketWrites, protocolMessages } from '../helpers/postgres/socket-traffic';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;
const b = (s: string) => Buffer.from(s);
const [QUERY, NOTICE, SEVERITY] = [0x51, 0x4e, 0x56]; // 'Q', 'N', and a notice's field 'V'

/** The texts of the locked commit queries (simple-protocol, with LOCK) sent while `fn` runs. */
async function queriesDuring(fn: () => Promise<void>): Promise<string[]> {
  const texts: string[] = [];
  await duringSocketWrites((_, chunks) => {
    for (const chunk of chunks)
      for (const m of protocolMessages(chunk))
        if (m.type === QUERY) texts.push(m.body.toString('utf8', 0, m.body.length - 1));
  }, fn);
  return texts.filter((t) => t.includes('LOCK TABLE'));
}

/** The severities (non-localized, field V) of the NoticeResponses every socket received while `fn` ran. */
async function noticesDuring(fn: () => Promise<void>): Promise<string[]> {
  const severities: string[] = [];
  await duringSocketReads((_, chunk) => {
    for (const m of protocolMessages(chunk)) {
      if (m.type !== NOTICE) continue;
      for (let at = 0; at < m.body.length && m.body[at] !== 0;) {
        const stop = m.body.indexOf(0, at + 1);
        if (m.body[at] === SEVERITY) severities.push(m.body.toString('utf8', at + 1, stop));
        at = stop + 1;
      }
    }
  }, fn);
  return severities;
}

suite('postgres locked commit query', () => {
  const url = URL!;
  const schemas: string[] = [];
  const opened: Backend[] = [];

  async function tenant(schema: string, statementTimeoutMs?: number): Promise<Tenant> {
    if (!schemas.includes(schema)) schemas.push(schema);
    const backend = await openBackend(url, { postgres: { schema, poolSize: 1, statementTimeoutMs } });
    opened.push(backend);
    return backend.openTenant(['t']);
  }

  afterAll(async () => {
    await Promise.all(opened.map((x) => x.close()));
    for (const s of schemas) await dropSchema(url, s);
  });

  const push = (t: Tenant, i: number) =>
    t.transact((tx) => {
      tx.setVersionstampedKey(['q', unboundVersionstamp()], b(String(i)));
      tx.add(pack(['pushed']), 1);
    });

  test('a connection prepares the statements of its first locked commit, then executes them by name', async () => {
    const t = await tenant(freshSchema());
    const sent = await queriesDuring(async () => {
      for (let i = 0; i < 5; i++) await push(t, i);
    });
    expect(sent).toHaveLength(5);
    expect(sent[0]).toMatch(/PREPARE dgen_s\d+ AS INSERT/);
    for (const text of sent.slice(1)) {
      expect(text).not.toContain('PREPARE');
      expect(text).toMatch(/EXECUTE dgen_s\d+\(/);
      expect(text).not.toContain('INSERT'); // no statement text left to parse
    }
    const items = await t.read((tx) => tx.getRange(prefixRange(['q']).start, prefixRange(['q']).end));
    expect(items.map((x) => x.value.toString())).toEqual(['0', '1', '2', '3', '4']);
  });

  test('after a commit query fails (a serialization conflict), the retry prepares again under new names and commits', async () => {
    const schema = freshSchema();
    const [a, c] = await Promise.all([tenant(schema), tenant(schema)]);
    await a.transact((tx) => tx.set(pack(['n']), b('0')));
    // Read-modify-write of one key plus a versionstamp (a locked commit), from two pools of one
    // connection each: every round, the second to commit conflicts after its PREPAREs ran, and the
    // backend re-runs its body on the same connection.
    let runs = 0;
    const bump = (t: Tenant) =>
      t.transact(async (tx) => {
        runs++;
        const n = Number((await tx.get(pack(['n'])))!.toString());
        tx.set(pack(['n']), b(String(n + 1)));
        tx.setVersionstampedKey(['log', unboundVersionstamp()], b(String(n)));
      });
    const sent = await queriesDuring(async () => {
      for (let round = 0; round < 5; round++) await Promise.all([bump(a), bump(c), bump(a), bump(c)]);
    });
    expect(runs).toBeGreaterThan(20); // conflicts happened, and were retried
    const prepared = sent.flatMap((text) => [...text.matchAll(/PREPARE (dgen_s\d+)/g)].map((m) => m[1]));
    expect(new Set(prepared).size).toBe(prepared.length); // no name prepared twice
    expect(sent.filter((text) => text.includes('PREPARE')).length).toBeGreaterThan(2); // forgotten, prepared again
    const [n, log] = await a.read((tx) =>
      Promise.all([tx.get(pack(['n'])), tx.getRange(prefixRange(['log']).start, prefixRange(['log']).end)]),
    );
    expect(n!.toString()).toBe('20');
    expect(log.map((x) => x.value.toString())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  test('after a commit query fails before its PREPAREs ran (its LOCK timed out), the next one prepares them', async () => {
    const schema = freshSchema();
    const t = await tenant(schema, 300);
    await t.transact((tx) => tx.set(pack(['x']), b('1'))); // the schema exists; no locked commit yet
    const admin = postgres(url, { max: 1, onnotice: () => undefined });
    try {
      // Another session holds the commit lock past the statement timeout: the push's LOCK is cancelled,
      // and the PREPAREs after it in the same query never run.
      const held = admin.begin(async (tx) => {
        await tx.unsafe(`LOCK TABLE "${schema}".commit_lock IN EXCLUSIVE MODE`);
        await tx.unsafe('SELECT pg_sleep(0.8)');
      });
      await new Promise((r) => setTimeout(r, 100));
      await expect(push(t, 0)).rejects.toMatchObject({ code: 'TRANSACTION_TIMED_OUT' });
      await held;
      for (let i = 1; i <= 3; i++) await push(t, i); // on the same (only) connection
      const items = await t.read((tx) => tx.getRange(prefixRange(['q']).start, prefixRange(['q']).end));
      expect(items.map((x) => x.value.toString())).toEqual(['1', '2', '3']);
    } finally {
      await admin.end({ timeout: 5 });
    }
  });

  test('each locked commit sends one NOTICE and no WARNING (nothing for the server log)', async () => {
    const t = await tenant(freshSchema());
    const severities = await noticesDuring(async () => {
      for (let i = 0; i < 4; i++) await push(t, i);
    });
    expect(severities).toEqual(['NOTICE', 'NOTICE', 'NOTICE', 'NOTICE']);
  });

  test('a schema made before flush_reply existed gets it when opened', async () => {
    const schema = freshSchema();
    await tenant(schema);
    const admin = postgres(url, { max: 1, onnotice: () => undefined });
    try {
      await admin.unsafe(`DROP FUNCTION "${schema}".flush_reply()`);
      const t = await tenant(schema); // a second instance opens the older schema
      await push(t, 1);
      await push(t, 2);
      const items = await t.read((tx) => tx.getRange(prefixRange(['q']).start, prefixRange(['q']).end));
      expect(items.map((x) => x.value.toString())).toEqual(['1', '2']);
      const [row] = await admin.unsafe(`SELECT to_regprocedure($1) AS f`, [`"${schema}".flush_reply()`]);
      expect(row.f).not.toBeNull();
    } finally {
      await admin.end({ timeout: 5 });
    }
  });
});
