/**
 * A SQLite path that cannot be a database fails openBackend with a coded DgenError naming the path
 * (issue #11), never a raw SqliteError or EEXIST, and a NUL byte never opens another file.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../../src/backend/open-backend';
import { SqliteBackend } from '../../src/backend/sqlite/sqlite-backend';
import { DgenError } from '../../src/errors';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'dgen-open-err-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function failure(spec: string): Promise<DgenError> {
  const err = await openBackend(spec).then(
    async (b) => {
      await b.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DgenError);
  return err as DgenError;
}

test('a directory', async () => {
  const err = await failure(`sqlite:${dir}`);
  expect(err.code).toBe('BACKEND_UNAVAILABLE');
  expect(err.message).toContain(dir);
  expect(err.message).toMatch(/is a directory/);
});

test('a file that is not a database, left as it was', async () => {
  const file = join(dir, 'notes.txt');
  writeFileSync(file, 'these are my notes, not a database\n'.repeat(200));
  const err = await failure(`sqlite:${file}`);
  expect(err.code).toBe('BACKEND_UNAVAILABLE');
  expect(err.message).toContain(file);
  expect(err.message).toMatch(/not a SQLite database/);
  expect(readdirSync(dir)).toEqual(['notes.txt']); // no -wal/-shm left behind
});

test('a path under a regular file', async () => {
  const file = join(dir, 'plain');
  writeFileSync(file, 'x');
  const err = await failure(`sqlite:${join(file, 'sub', 'db.sqlite')}`);
  expect(err.code).toBe('BACKEND_UNAVAILABLE');
  expect(err.message).toMatch(/regular file/);
});

test('a NUL byte in the path is refused, opening nothing', async () => {
  const err = await failure(`sqlite:${join(dir, 'a.sqlite')}\0.evil`);
  expect(err.code).toBe('BAD_BACKEND_SPEC');
  expect(() => new SqliteBackend(`${join(dir, 'b.sqlite')}\0x`)).toThrow(
    expect.objectContaining({ code: 'BAD_ARGUMENT' }),
  );
  expect(existsSync(join(dir, 'a.sqlite'))).toBe(false);
  expect(existsSync(join(dir, 'b.sqlite'))).toBe(false);
});
