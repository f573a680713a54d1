import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The examples are what a newcomer runs first (`npm start`), so they run here as they would there:
 * as child processes through ts-node, each on SQLite files in a temporary DGEN_DATA_DIR.
 */
const ROOT = path.resolve(__dirname, '..', '..');

function runExample(file: string, dataDir: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'examples', file)],
      { cwd: ROOT, env: { ...withoutCouchDb(process.env), DGEN_DATA_DIR: dataDir }, timeout: 90_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

/**
 * The environment minus COUCHDB_URL and DATABASE_URL: the indexer example then starts its own
 * PouchDB Server, the PostgreSQL one its own PostgreSQL.
 */
function withoutCouchDb(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { COUCHDB_URL: _unused, DATABASE_URL: _unused2, ...rest } = env;
  return rest;
}

let dataDir: string;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-examples-'));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

test('npm start: the bank survives kill -9 and a restart, two tellers share its queue', async () => {
  const first = await runExample('start.ts', dataDir);
  expect(first).toMatchObject({ code: 0 });
  expect(first.out).toContain('This is run #1');
  expect(first.out).toContain('nothing was lost');
  expect(first.out).toMatch(/bob's balance went from \$0 to \$36/);
  const second = await runExample('start.ts', dataDir);
  expect(second).toMatchObject({ code: 0 });
  expect(second.out).toContain('This is run #2'); // the state outlived the first run's processes
}, 120_000);

test('examples/couch-indexer.ts follows PouchDB Server into a durable index and resumes at its checkpoint', async () => {
  const run = await runExample('couch-indexer.ts', dataDir);
  expect(run).toMatchObject({ code: 0 });
  expect(run.out).toContain('resumes at its checkpoint');
  expect(run.out).toMatch(/index: \{/);
}, 120_000);

test('npm run example:postgres: three workers on PostgreSQL from npm, one killed with kill -9, no order lost', async () => {
  const run = await runExample('postgres-cluster.ts', dataDir);
  expect(run).toMatchObject({ code: 0 });
  expect(run.out).toContain('Started PostgreSQL from npm');
  expect(run.out).toMatch(/killed worker-2 \(pid \d+\) with kill -9/);
  expect(run.out).toMatch(/All 300 orders accounted for: nothing was lost when worker-2 died/);
  expect(run.out).not.toMatch(/[1-9]\d* lost/);
}, 120_000);
