import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../../../src/backend/open-backend';
import { Runtime } from '../../../src/facade/runtime';
import { Inspected, populate } from './populate';
import { runCli, spawnCli } from './run-cli';

jest.setTimeout(600_000);

let dir: string;
let spec: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dgen-cli-'));
  spec = `sqlite:${join(dir, 'db.sqlite')}`;
  await populate(spec);
});
afterAll(async () => {
  await Runtime.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (s: string) => s.trimEnd().split('\n');

describe('dgen-ts CLI (a real child process on a real SQLite file)', () => {
  test('servers --json lists every server of every tenant with its queue, age, dead letters and state size', async () => {
    const r = await runCli(['servers', spec, '--json']);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    const servers = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(servers.map((s) => [s.tenant, s.tuid, s.className])).toEqual([
      [['app', 'a'], ['inspected', 'x'], 'Inspected'],
      [['app', 'a'], ['inspected', 'y'], 'Inspected'],
      [['app', 'b'], ['inspected', 'z'], 'Inspected'],
    ]);
    const [x, y, z] = servers;
    expect(x).toMatchObject({ queueLength: 0, oldestAgeMs: null, deadLetters: 2, lock: null, version: 1 });
    expect(y).toMatchObject({ queueLength: 3, deadLetters: 0 });
    expect(y.oldestAgeMs).toEqual(expect.any(Number));
    expect(y.oldestAgeMs as number).toBeGreaterThanOrEqual(0);
    expect(z).toMatchObject({ queueLength: 0, deadLetters: 0 });
    for (const s of servers) {
      expect(s.stateKeys as number).toBeGreaterThan(1);
      expect(s.stateBytes as number).toBeGreaterThan(s.stateKeys as number);
      expect(s.stateVersion).toMatch(/^[0-9a-f]{20}$/);
    }
  });

  test('servers --tenant prints a human table of that tenant only', async () => {
    const r = await runCli(['servers', spec, '--tenant', 'app/b']);
    expect(r.status).toBe(0);
    const [head, rule, ...rows] = lines(r.stdout);
    expect(head.split(/\s{2,}/)).toEqual([
      'TENANT',
      'TUID',
      'CLASS',
      'QUEUE',
      'OLDEST',
      'LOCK',
      'LEASE',
      'DEAD',
      'KEYS',
      'BYTES',
      'VER',
    ]);
    expect(rule).toMatch(/^-+( +-+)+$/);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^app\/b\s+\["inspected","z"\]\s+Inspected\s+0\s+-\s+-\s+-\s+0\s+\d+\s+\d+\s+1$/);
    const none = await runCli(['servers', spec, '--tenant', 'app/none']);
    expect(none).toMatchObject({ status: 0, stdout: 'no servers in tenant app/none\n' });
  });

  test('state prints the decoded state with Map, Set, Date, BigInt and bytes shown faithfully', async () => {
    const r = await runCli(['state', spec, 'app/a', '["inspected","x"]', '--json']);
    expect(r.status).toBe(0);
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
    const human = await runCli(['state', spec, 'app/a', 'inspected/x']);
    expect(JSON.parse(human.stdout)).toEqual(JSON.parse(r.stdout).state);
    expect(lines(human.stdout).length).toBeGreaterThan(5); // indented
  });

  test('dead-letters lists, requeues by id at the end of the queue and purges --all, saying what changed', async () => {
    const list = await runCli(['dead-letters', spec, 'app/a', 'inspected/x', '--json']);
    expect(list.status).toBe(0);
    const letters = JSON.parse(list.stdout) as Array<{ id: string; msg: unknown; attempts: number }>;
    expect(letters.map((l) => [l.msg, l.attempts])).toEqual([
      [{ type: 'fail', n: 1 }, 1],
      [{ type: 'fail', n: 2 }, 1],
    ]);
    const table = await runCli(['dead-letters', spec, 'app/a', 'inspected/x']);
    expect(lines(table.stdout)[0].split(/\s{2,}/)).toEqual(['ID', 'ATTEMPTS', 'ERROR', 'MESSAGE']);
    expect(table.stdout).toContain(letters[1].id);
    expect(table.stdout).toContain('cannot handle 2');

    const requeue = await runCli(['dead-letters', spec, 'app/a', 'inspected/x', '--requeue', letters[1].id]);
    expect(requeue).toMatchObject({
      status: 0,
      stdout: 'requeued 1 dead letter of ["inspected","x"] in app/a (now at the end of its queue)\n',
    });
    // the requeued message is in x's queue, and is the one that was dead-lettered
    const backend = await openBackend(spec);
    const tenant = await backend.openTenant(['app', 'a']);
    const x = await Runtime.start(Inspected, 'x', { tenant, consume: false });
    expect(await x.queueLength()).toBe(1);
    expect((await x.deadLetters()).map((l) => l.id)).toEqual([letters[0].id]);
    await x.stop();
    await backend.close();

    const purge = await runCli(['dead-letters', spec, 'app/a', 'inspected/x', '--purge', '--all']);
    expect(purge).toMatchObject({
      status: 0,
      stdout: 'purged 1 dead letter of ["inspected","x"] in app/a\n',
    });
    const empty = await runCli(['dead-letters', spec, 'app/a', 'inspected/x']);
    expect(empty.stdout).toBe('no dead letters for ["inspected","x"] in app/a\n');
  });

  test('errors are one line with the code: 1 for runtime errors, 2 for usage errors', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [
        ['servers', `sqlite:${join(dir, 'missing.sqlite')}`],
        1,
        /^dgen-ts: BACKEND_UNAVAILABLE: no SQLite file/,
      ],
      [
        ['state', spec, 'app/a', 'inspected/nobody'],
        1,
        /^dgen-ts: NOT_FOUND: no server \["inspected","nobody"\]/,
      ],
      [['dead-letters', spec, 'app/a', 'inspected/nobody'], 1, /^dgen-ts: NOT_FOUND: /],
      [['servers', 'redis://x'], 2, /^dgen-ts: BAD_BACKEND_SPEC: unknown backend spec/],
      [['servers'], 2, /^dgen-ts: BAD_ARGUMENT: missing required argument 'spec'/],
      [['servers', spec, '--bogus'], 2, /^dgen-ts: BAD_ARGUMENT: unknown option '--bogus'/],
      [['nonsense'], 2, /^dgen-ts: BAD_ARGUMENT: unknown command 'nonsense'/],
      [['state', spec, 'app/a', '[1,'], 2, /^dgen-ts: BAD_ARGUMENT: a TUID is a JSON array/],
      [['state', spec, 'app//a', 'x/y'], 2, /^dgen-ts: BAD_ARGUMENT: a tenant path/],
      [
        ['dead-letters', spec, 'app/a', 'inspected/x', '--requeue'],
        2,
        /^dgen-ts: BAD_ARGUMENT: --requeue needs/,
      ],
      [
        ['dead-letters', spec, 'app/a', 'inspected/x', '--purge', 'zz'],
        2,
        /^dgen-ts: BAD_ARGUMENT: purgeDeadLetters takes/,
      ],
      [['dead-letters', spec, 'app/a', 'inspected/x', '--all'], 2, /^dgen-ts: BAD_ARGUMENT: --all goes with/],
      [
        ['top', spec, '--iterations', '0'],
        2,
        /^dgen-ts: BAD_ARGUMENT: .*--iterations must be a positive integer/,
      ],
    ];
    // two at a time: each child starts ts-node, and the machine is shared
    const results: Awaited<ReturnType<typeof runCli>>[] = [];
    for (let i = 0; i < cases.length; i += 2)
      results.push(...(await Promise.all(cases.slice(i, i + 2).map(([args]) => runCli(args)))));
    results.forEach((r, i) => {
      const [args, status, message] = cases[i];
      expect({ args, status: r.status, lines: lines(r.stderr).length }).toEqual({ args, status, lines: 1 });
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    });
    const help = await runCli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/servers.*\n(.*\n)*.*state(.*\n)*.*dead-letters(.*\n)*.*top/);
  });

  test('top refreshes, showing the busiest queue first and its enqueue rate, for --iterations refreshes', async () => {
    const child = spawnCli(['top', spec, '--json', '--interval', '1500', '--iterations', '2']);
    const got: string[] = [];
    let buffered = '';
    const first = new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        got.push(...parts);
        if (got.length >= 1) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await first;
    // between the two refreshes, 30 messages are enqueued for z
    const backend = await openBackend(spec);
    const z = await Runtime.start(Inspected, 'z', {
      tenant: await backend.openTenant(['app', 'b']),
      consume: false,
    });
    await z.castMany(Array.from({ length: 30 }, () => ({ type: 'add', by: 1 })));
    await z.stop();
    await backend.close();
    expect(await exited).toBe(0);
    expect(got).toHaveLength(2);
    type Top = {
      servers: number;
      busiest: Array<{ tuid: string[]; queueLength: number; inRate: number | null }>;
    };
    const [a, b] = got.map((l) => JSON.parse(l) as Top);
    expect(a.servers).toBe(3);
    expect(a.busiest[0].inRate).toBeNull();
    expect(b.busiest[0]).toMatchObject({ tuid: ['inspected', 'z'], queueLength: 30 });
    expect(b.busiest[0].inRate!).toBeGreaterThan(0);
    expect(b.busiest.find((s) => s.tuid[1] === 'x')!.inRate).toBe(0);

    const human = await runCli(['top', spec, '--iterations', '1', '--limit', '1']);
    expect(human.status).toBe(0);
    const out = lines(human.stdout);
    expect(out[0]).toMatch(/^dgen-ts top {2}sqlite:.* 3 servers, \d+ queued/);
    expect(out[1].split(/\s{2,}/)).toEqual([
      'TENANT',
      'TUID',
      'CLASS',
      'DEPTH',
      'IN/s',
      'OUT/s',
      'LAG',
      'LOCK',
      'DEAD',
    ]);
    expect(out[3]).toMatch(/^app\/b\s+\["inspected","z"\]\s+Inspected\s+30\s/);
    expect(out).toHaveLength(4); // --limit 1
  });

  test('top stops cleanly on SIGINT (Ctrl-C)', async () => {
    const child = spawnCli(['top', spec, '--json', '--interval', '100000']);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGINT');
    expect(await new Promise((resolve) => child.on('exit', (code) => resolve(code)))).toBe(0);
  });
});
