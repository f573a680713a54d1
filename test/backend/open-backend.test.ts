import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../../src/backend/open-backend';
import { FdbBackend } from '../../src/backend/fdb/fdb-backend';
import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import { SqliteBackend } from '../../src/backend/sqlite/sqlite-backend';

describe('openBackend', () => {
  test('memory: and sqlite:PATH (creating the parent directories)', async () => {
    const memory = await openBackend('memory:');
    expect(memory).toBeInstanceOf(MemoryBackend);
    expect(memory.kind).toBe('memory');
    await memory.close();

    const dir = mkdtempSync(join(tmpdir(), 'dgen-open-'));
    try {
      const file = join(dir, 'nested', 'deeper', 'db.sqlite');
      const sqlite = await openBackend(`sqlite:${file}`);
      expect(sqlite).toBeInstanceOf(SqliteBackend);
      expect(sqlite.kind).toBe('sqlite');
      expect(existsSync(file)).toBe(true);
      await sqlite.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each(['', 'memory', 'sqlite:', 'sqlite::memory:', 'postgres://', 'postgresql:x', 'fdb', 'MEMORY:'])(
    'rejects %j with BAD_BACKEND_SPEC listing the accepted forms',
    async (spec) => {
      const err = await openBackend(spec).catch((e) => e);
      expect(err.code).toBe('BAD_BACKEND_SPEC');
      for (const form of ["'memory:'", "'sqlite:PATH'", "'fdb:'", "'fdb:CLUSTER_FILE'"])
        expect(err.message).toContain(form);
    },
  );

  test('rejects a non-string spec with BAD_BACKEND_SPEC', async () => {
    await expect(openBackend(42 as unknown as string)).rejects.toMatchObject({ code: 'BAD_BACKEND_SPEC' });
  });

  test('fdb: without the FoundationDB client is BACKEND_UNAVAILABLE, saying what to install', async () => {
    const opened = await openBackend('fdb:').then(
      (backend) => ({ backend }),
      (error) => ({ error }),
    );
    if ('backend' in opened) {
      // libfdb_c is installed here: the backend opens (connecting lazily).
      expect(opened.backend).toBeInstanceOf(FdbBackend);
      await opened.backend.close();
      return;
    }
    expect(opened.error).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect(opened.error.message).toMatch(/FoundationDB client/);
    expect(opened.error.message).toMatch(/github\.com\/apple\/foundationdb\/releases/);
    // and it stays a clean error on a second attempt
    await expect(openBackend('fdb:/etc/foundationdb/fdb.cluster')).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
    });
  });

  test('the sqlite: durability option is passed through and validated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dgen-open-'));
    try {
      const normal = (await openBackend(`sqlite:${join(dir, 'a.sqlite')}`, {
        sqlite: { synchronous: 'normal' },
      })) as SqliteBackend;
      expect(normal.synchronous).toBe('normal');
      await normal.close();
      const full = new SqliteBackend(join(dir, 'b.sqlite'));
      expect(full.synchronous).toBe('full');
      await full.close();
      expect(() => new SqliteBackend(join(dir, 'c.sqlite'), { synchronous: 'off' as 'full' })).toThrow(
        expect.objectContaining({ code: 'BAD_ARGUMENT' }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
