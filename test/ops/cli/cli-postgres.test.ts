import 'reflect-metadata';
import * as net from 'node:net';
import postgres from 'postgres';
import { openBackend } from '../../../src/backend/open-backend';
import { Runtime } from '../../../src/facade/runtime';
import { Inspected, populate } from './populate';
import { runCli } from './run-cli';

jest.setTimeout(600_000);

/**
 * The CLI against PostgreSQL: the run's embedded server (DGEN_TEST_POSTGRES_URL, from Jest's
 * globalSetup), a database of this file's own (a spec names a database and dgen-ts uses its default
 * schema there, so a fresh database keeps the other suites' data out of the listing), and the real
 * `dgen-ts` as child processes.
 */
const base = process.env.DGEN_TEST_POSTGRES_URL!;
const database = `dgen_cli_${process.pid}_${Date.now().toString(36)}`;
const spec = (() => {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
})();

async function admin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(base, { max: 1, onnotice: () => undefined });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

beforeAll(async () => {
  await admin((sql) => sql.unsafe(`CREATE DATABASE ${database}`));
  await populate(spec);
});
afterAll(async () => {
  await Runtime.stopAll();
  await admin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
});

const lines = (s: string) => s.trimEnd().split('\n');

/** A port on 127.0.0.1 that nothing listens on (taken, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('dgen-ts CLI on PostgreSQL (real child processes, the embedded server)', () => {
  test('servers: --json for every tenant, a table for one', async () => {
    const [json, table] = await Promise.all([
      runCli(['servers', spec, '--json']),
      runCli(['servers', spec, '--tenant', 'app/a']),
    ]);
    expect(json).toMatchObject({ status: 0, stderr: '' });
    const servers = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(servers.map((s) => [s.tenant, s.tuid, s.className, s.queueLength, s.deadLetters])).toEqual([
      [['app', 'a'], ['inspected', 'x'], 'Inspected', 0, 2],
      [['app', 'a'], ['inspected', 'y'], 'Inspected', 3, 0],
      [['app', 'b'], ['inspected', 'z'], 'Inspected', 0, 0],
    ]);
    expect(servers[1].oldestAgeMs).toEqual(expect.any(Number));
    for (const s of servers) expect(s.stateVersion).toMatch(/^[0-9a-f]{20}$/);

    expect(table).toMatchObject({ status: 0, stderr: '' });
    const [head, , ...rows] = lines(table.stdout);
    expect(head.split(/\s{2,}/)[0]).toBe('TENANT');
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatch(
      /^app\/a\s+\["inspected","y"\]\s+Inspected\s+3\s+\S+\s+-\s+-\s+0\s+\d+\s+\d+\s+1$/,
    );
  });

  test('state prints the decoded state faithfully', async () => {
    const r = await runCli(['state', spec, 'app/a', '["inspected","x"]', '--json']);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual({
      tenant: ['app', 'a'],
      tuid: ['inspected', 'x'],
      version: expect.stringMatching(/^[0-9a-f]{20}$/),
      state: {
        n: 5,
        tags: { $set: ['a', 'b'] },
        byName: { $map: [['big', { $bigint: '12345678901234567890' }]] },
        when: { $date: '2026-01-02T03:04:05.000Z' },
        raw: { $bytes: 'AQID', type: 'Buffer' },
      },
    });
  });

  test('dead-letters: list, --requeue one by id (to the end of the queue), --purge --all', async () => {
    const list = await runCli(['dead-letters', spec, 'app/a', 'inspected/x', '--json']);
    expect(list.status).toBe(0);
    const letters = JSON.parse(list.stdout) as Array<{ id: string; msg: unknown }>;
    expect(letters.map((l) => l.msg)).toEqual([
      { type: 'fail', n: 1 },
      { type: 'fail', n: 2 },
    ]);

    const requeue = await runCli(['dead-letters', spec, 'app/a', 'inspected/x', '--requeue', letters[0].id]);
    expect(requeue).toMatchObject({
      status: 0,
      stderr: '',
      stdout: 'requeued 1 dead letter of ["inspected","x"] in app/a (now at the end of its queue)\n',
    });
    const backend = await openBackend(spec);
    try {
      const x = await Runtime.start(Inspected, 'x', {
        tenant: await backend.openTenant(['app', 'a']),
        consume: false,
      });
      expect(await x.queueLength()).toBe(1);
      expect((await x.deadLetters()).map((l) => l.id)).toEqual([letters[1].id]);
      await x.stop();
    } finally {
      await backend.close();
    }

    const purge = await runCli(['dead-letters', spec, 'app/a', 'inspected/x', '--purge', '--all']);
    expect(purge).toMatchObject({
      status: 0,
      stdout: 'purged 1 dead letter of ["inspected","x"] in app/a\n',
    });
    const after = await runCli(['servers', spec, '--tenant', 'app/a', '--json']);
    const x = (JSON.parse(after.stdout) as Array<Record<string, unknown>>)[0];
    expect(x).toMatchObject({ tuid: ['inspected', 'x'], deadLetters: 0, queueLength: 1 });
  });

  test('exit codes: 1 and one line for a missing server or an unreachable server, 2 for a bad argument', async () => {
    const port = await closedPort();
    const unreachable = new URL(spec);
    unreachable.port = String(port);
    const cases: Array<[string[], number, RegExp]> = [
      [
        ['state', spec, 'app/a', 'inspected/nobody'],
        1,
        /^dgen-ts: NOT_FOUND: no server \["inspected","nobody"\]/,
      ],
      [['servers', unreachable.toString()], 1, /^dgen-ts: BACKEND_UNAVAILABLE: /],
      [['dead-letters', spec, 'app/a', 'inspected/x', '--purge', 'zz'], 2, /^dgen-ts: BAD_ARGUMENT: /],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      const [args, status, message] = cases[i];
      expect({ args, status: r.status, lines: lines(r.stderr).length }).toEqual({ args, status, lines: 1 });
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain(new URL(base).password || '\u0000'); // never the password
      expect(r.stdout).toBe('');
    });
  });
});
