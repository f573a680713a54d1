/**
 * The commit query that takes the commit lock (one simple-protocol query, see
 * StatementPipeline.commitLocked) runs its statements as EXECUTE of statements prepared on the
 * connection: PREPAREd in the first such query of each connection, then executed by name. PREPARE is
 * not transactional, so after a failed commit query the connection's names are forgotten and fresh
 * ones prepared: a retried body must not meet "prepared statement already exists". Against the server
 * of the test run (DGEN_TEST_POSTGRES_URL), watching what goes over the client's sockets.
 */
import * as net from 'node:net';
import postgres from 'postgres';
import { openBackend } from '../../src/backend/open-backend';
import { pack, prefixRange, unboundVersionstamp } from '../../src/backend/keys';
import type { Backend, Tenant } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;
const b = (s: string) => Buffer.from(s);

/**
 * The simple-protocol query texts sent to any socket while `fn` runs: caught where a socket hands its
 * data to the system (a corked socket's writes go out together, as one writev).
 */
async function queriesDuring(fn: () => Promise<void>): Promise<string[]> {
  const texts: string[] = [];
  type Generic = (this: net.Socket, writev: boolean, data: unknown, ...rest: unknown[]) => unknown;
  const proto = net.Socket.prototype as unknown as { _writeGeneric: Generic };
  const writeGeneric = proto._writeGeneric;
  proto._writeGeneric = function (this: net.Socket, writev, data, ...rest) {
    const chunks = writev ? (data as Array<{ chunk: unknown }>).map((d) => d.chunk) : [data];
    for (const chunk of chunks)
      if (Buffer.isBuffer(chunk))
        for (let i = 0; i + 5 <= chunk.length; i += 1 + chunk.readInt32BE(i + 1))
          if (chunk[i] === 0x51) texts.push(chunk.toString('utf8', i + 5, i + chunk.readInt32BE(i + 1)));
    return writeGeneric.call(this, writev, data, ...rest);
  };
  try {
    await fn();
  } finally {
    proto._writeGeneric = writeGeneric;
  }
  return texts.filter((t) => t.includes('LOCK TABLE'));
}

suite('postgres prepared commit query', () => {
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
});
