/**
 * The storage contract (src/backend/types.ts), written once: `describeContract(factory)` holds a
 * backend to every promise of the contract. conformance.test.ts runs it unchanged against memory,
 * SQLite and FoundationDB; fdb-simulated.test.ts also runs it on FdbBackend over a simulated client.
 */
import { ConflictError } from '../../src/errors';
import { pack, prefixRange, unboundVersionstamp, unpack } from '../../src/backend/keys';
import { LIMITS, type Backend, type Tenant, type Transaction } from '../../src/backend/types';
import { type BackendFactory, sleep, uniquePath } from '../helpers/backend/factories';

const b = (s: string) => Buffer.from(s);
const k = (...items: Array<string | number>) => pack(items);
const le = (n: bigint) => {
  const buf = Buffer.alloc(8);
  buf.writeBigInt64LE(n);
  return buf;
};
const str = (v: Buffer | undefined) => v?.toString();
const ALL = { start: Buffer.alloc(0), end: Buffer.from([0xff]) };

/** Resolves to 'pending' if `p` has not settled within `ms`. */
const settledWithin = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, sleep(ms).then(() => 'pending' as const)]);

export function describeContract(factory: BackendFactory): void {
  describe(`backend contract: ${factory.name}`, () => {
    let backend: Backend;
    let cleanup: () => Promise<void>;
    let tenant: Tenant;

    beforeAll(async () => {
      ({ backend, cleanup } = await factory.open());
    });
    afterAll(() => cleanup());
    beforeEach(async () => {
      tenant = await backend.openTenant(uniquePath('t'));
    });

    const put = (entries: Record<string, string>) =>
      tenant.transact((tx) => {
        for (const [key, value] of Object.entries(entries)) tx.set(k(key), b(value));
      });
    const getAll = () => tenant.read((tx) => tx.getRange(ALL.start, ALL.end));

    describe('reads and writes', () => {
      test('set, get, clear; a missing key is undefined', async () => {
        await put({ a: '1', b: '2' });
        expect(str(await tenant.read((tx) => tx.get(k('a'))))).toBe('1');
        await tenant.transact((tx) => tx.clear(k('a')));
        expect(await tenant.read((tx) => tx.get(k('a')))).toBeUndefined();
        expect(str(await tenant.read((tx) => tx.get(k('b'))))).toBe('2');
        expect(await tenant.read((tx) => tx.get(k('never')))).toBeUndefined();
      });

      test('transact resolves with what the body returns', async () => {
        expect(await tenant.transact(() => 42)).toBe(42);
        expect(await tenant.transact(async () => 'x')).toBe('x');
      });

      test('getRange: key order, half-open, limit, reverse', async () => {
        await put({ a: '1', b: '2', c: '3', d: '4', e: '5' });
        const keys = (rows: { key: Buffer }[]) => rows.map((r) => unpack(r.key)[0]);
        await tenant.read(async (tx) => {
          expect(keys(await tx.getRange(k('b'), k('e')))).toEqual(['b', 'c', 'd']);
          expect(keys(await tx.getRange(k('b'), k('e'), { limit: 2 }))).toEqual(['b', 'c']);
          expect(keys(await tx.getRange(k('b'), k('e'), { reverse: true }))).toEqual(['d', 'c', 'b']);
          expect(keys(await tx.getRange(k('a'), k('z'), { reverse: true, limit: 2 }))).toEqual(['e', 'd']);
          expect(keys(await tx.getRange(k('a'), k('z'), { limit: 0 }))).toHaveLength(5);
          expect(await tx.getRange(k('e'), k('b'))).toEqual([]);
          expect(await tx.getRange(k('c'), k('c'))).toEqual([]);
          const [row] = await tx.getRange(k('c'), k('d'));
          expect(row.key.equals(k('c'))).toBe(true);
          expect(str(row.value)).toBe('3');
        });
      });

      test('getRange over a tuple prefix (prefixRange)', async () => {
        await tenant.transact((tx) => {
          for (let i = 0; i < 5; i++) tx.set(k('q', i), b(`m${i}`));
          tx.set(k('q'), b('the prefix itself'));
          tx.set(k('r', 0), b('other'));
        });
        const { start, end } = prefixRange(['q']);
        const rows = await tenant.read((tx) => tx.getRange(start, end));
        expect(rows.map((r) => str(r.value))).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      });

      test('clearRange clears start <= key < end', async () => {
        await put({ a: '1', b: '2', c: '3', d: '4' });
        await tenant.transact((tx) => tx.clearRange(k('b'), k('d')));
        expect((await getAll()).map((r) => unpack(r.key)[0])).toEqual(['a', 'd']);
      });

      test('read-your-writes inside a transaction', async () => {
        await put({ a: 'old', c: '3' });
        await tenant.transact(async (tx) => {
          tx.set(k('a'), b('new'));
          tx.set(k('b'), b('2'));
          expect(str(await tx.get(k('a')))).toBe('new');
          tx.clear(k('c'));
          expect(await tx.get(k('c'))).toBeUndefined();
          expect((await tx.getRange(k('a'), k('z'))).map((r) => str(r.value))).toEqual(['new', '2']);
          tx.add(k('n'), 5);
          expect(await tx.get(k('n'))).toEqual(le(5n));
          tx.clearRange(k('a'), k('b'));
          expect(await tx.get(k('a'))).toBeUndefined();
        });
      });

      test('a body that throws commits nothing and its error is rethrown', async () => {
        await put({ a: '1' });
        const boom = new Error('boom');
        await expect(
          tenant.transact(async (tx) => {
            tx.set(k('a'), b('2'));
            tx.set(k('b'), b('2'));
            tx.add(k('n'), 1);
            tx.clearRange(k('a'), k('z'));
            tx.setVersionstampedKey(['v', unboundVersionstamp()], b('x'));
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect((await getAll()).map((r) => str(r.value))).toEqual(['1']);
      });

      test('a transaction cannot be used after it finished (TRANSACTION_FINISHED)', async () => {
        let leaked!: Transaction;
        await tenant.transact((tx) => {
          leaked = tx;
        });
        expect(() => leaked.set(k('a'), b('1'))).toThrow(
          expect.objectContaining({ code: 'TRANSACTION_FINISHED' }),
        );
        expect(await getAll()).toEqual([]);
      });

      test('stored values are copies of the buffers given', async () => {
        const value = b('abc');
        await tenant.transact((tx) => tx.set(k('a'), value));
        value.write('xyz');
        expect(str(await tenant.read((tx) => tx.get(k('a'))))).toBe('abc');
      });

      test('empty values are values', async () => {
        await tenant.transact((tx) => tx.set(k('e'), Buffer.alloc(0)));
        expect(await tenant.read((tx) => tx.get(k('e')))).toEqual(Buffer.alloc(0));
      });
    });

    describe('serializable transactions', () => {
      test('concurrent read-modify-write increments all count', async () => {
        const key = k('counter');
        const incr = () =>
          tenant.transact(async (tx) => {
            const v = await tx.get(key);
            await sleep(1); // widen the window between the read and the write
            tx.set(key, le((v ? v.readBigInt64LE(0) : 0n) + 1n));
          });
        await Promise.all(Array.from({ length: 25 }, incr));
        expect(await tenant.read((tx) => tx.get(key))).toEqual(le(25n));
      });

      test('a retryable ConflictError re-runs the body; maxRetries bounds it', async () => {
        let runs = 0;
        const result = await tenant.transact((tx) => {
          tx.set(k('a'), b(String(++runs)));
          if (runs < 3) throw new ConflictError();
          return runs;
        });
        expect(result).toBe(3);
        expect(str(await tenant.read((tx) => tx.get(k('a'))))).toBe('3');

        let tries = 0;
        await expect(
          tenant.transact(
            () => {
              tries++;
              throw new ConflictError();
            },
            { maxRetries: 2 },
          ),
        ).rejects.toMatchObject({ code: 'TRANSACTION_CONFLICT' });
        expect(tries).toBe(3);
      });
    });

    describe('deferFlush given as a function', () => {
      test('asked (by engines that decide at the commit) only after the body of the attempt that commits; applied whatever it answers', async () => {
        const asked: string[] = [];
        let runs = 0;
        await tenant.transact(
          async (tx) => {
            runs++;
            await tx.get(k('x'));
            tx.set(k('x'), b(String(runs)));
            asked.push(`body ${runs}`);
            if (runs < 2) throw new ConflictError();
          },
          { deferFlush: () => (asked.push(`asked ${runs}`), true) },
        );
        // A failed attempt commits nothing, so it is never asked; engines that decide before the body
        // (SQLite, memory) never ask.
        expect([
          ['body 1', 'body 2'],
          ['body 1', 'body 2', 'asked 2'],
        ]).toContainEqual(asked);
        await tenant.transact((tx) => tx.set(k('y'), b('1')), { deferFlush: () => false });
        await tenant.transact((tx) => tx.set(k('z'), b('1')), {
          deferFlush: () => {
            throw new Error('counts as false');
          },
        });
        expect((await getAll()).map((x) => str(x.value))).toEqual(['2', '1', '1']);
      });
    });

    describe('atomic add', () => {
      test('little-endian int64: missing counts as 0, negative deltas, bigint deltas', async () => {
        const key = k('n');
        await tenant.transact((tx) => tx.add(key, 5));
        expect(await tenant.read((tx) => tx.get(key))).toEqual(le(5n));
        await tenant.transact((tx) => {
          tx.add(key, -8);
          tx.add(key, 1n);
        });
        expect(await tenant.read((tx) => tx.get(key))).toEqual(le(-2n));
        await Promise.all(Array.from({ length: 20 }, () => tenant.transact((tx) => tx.add(key, 1))));
        const v = await tenant.read((tx) => tx.get(key));
        expect(v).toHaveLength(8);
        expect(v!.readBigInt64LE(0)).toBe(18n);
      });

      test('adds to a value set as bytes, and wraps around at 64 bits', async () => {
        await tenant.transact((tx) => tx.set(k('n'), le(10n)));
        await tenant.transact((tx) => tx.add(k('n'), 7));
        expect(await tenant.read((tx) => tx.get(k('n')))).toEqual(le(17n));
        await tenant.transact((tx) => tx.set(k('max'), le(2n ** 63n - 1n)));
        await tenant.transact((tx) => tx.add(k('max'), 1));
        expect(await tenant.read((tx) => tx.get(k('max')))).toEqual(le(-(2n ** 63n)));
        await tenant.transact((tx) => tx.add(k('max'), -1));
        expect(await tenant.read((tx) => tx.get(k('max')))).toEqual(le(2n ** 63n - 1n));
      });

      test('a counter is an ordinary value for getRange, set and clear', async () => {
        await tenant.transact((tx) => tx.add(k('c', 1), 3));
        const [row] = await tenant.read((tx) => tx.getRange(k('c', 0), k('c', 9)));
        expect(row.value).toEqual(le(3n));
        await tenant.transact((tx) => tx.set(k('c', 1), b('text')));
        expect(str(await tenant.read((tx) => tx.get(k('c', 1))))).toBe('text');
        await tenant.transact((tx) => tx.clear(k('c', 1)));
        await tenant.transact((tx) => tx.add(k('c', 1), -1));
        expect(await tenant.read((tx) => tx.get(k('c', 1)))).toEqual(le(-1n));
      });

      test('within one transaction, adds are seen by every later read and ordered with every write to the key', async () => {
        await tenant.transact((tx) => tx.set(k('w'), le(1n)));
        const seen = await tenant.transact(async (tx) => {
          const out: Array<bigint | string | undefined> = [];
          const val = async (key: Buffer) => {
            const v = await tx.get(key);
            return v === undefined ? undefined : v.length === 8 ? v.readBigInt64LE(0) : v.toString();
          };
          tx.add(k('a'), 2);
          tx.add(k('a'), 3);
          out.push(await val(k('a'))); // 5: read-your-writes
          tx.add(k('a'), 1);
          out.push((await tx.getRange(k('a'), k('b'))).map((r) => r.value.readBigInt64LE(0))[0]); // 6
          tx.add(k('b'), 4);
          tx.set(k('b'), b('text')); // the add before the set is overwritten
          out.push(await val(k('b')));
          tx.add(k('c'), 7);
          tx.clear(k('c')); // and before a clear, cleared
          tx.add(k('c'), -2); // an add after the clear starts from nothing
          out.push(await val(k('c')));
          tx.add(k('d'), 9);
          tx.clearRange(k('d'), k('e'));
          out.push(await val(k('d')));
          tx.add(k('w'), 1);
          tx.add(k('w'), 2n ** 64n - 1n); // -1 at 64 bits: 1 + 1 - 1, the merged sum wrapping as the adds one by one
          return out;
        });
        expect(seen).toEqual([5n, 6n, 'text', -2n, undefined]);
        const after = await tenant.read(async (tx) =>
          Promise.all(['a', 'b', 'c', 'd', 'w'].map((name) => tx.get(k(name)))),
        );
        expect(
          after.map((v) => (v === undefined ? v : v.length === 8 ? v.readBigInt64LE(0) : v.toString())),
        ).toEqual([6n, 'text', -2n, undefined, 1n]);
      });

      test('adds to one key from a transaction that then fails are not written', async () => {
        await expect(
          tenant.transact((tx) => {
            tx.add(k('f'), 1);
            tx.add(k('f'), 1);
            throw new Error('no');
          }),
        ).rejects.toThrow('no');
        expect(await tenant.read((tx) => tx.get(k('f')))).toBeUndefined();
      });

      test('a non-integer delta is BAD_ARGUMENT', async () => {
        await expect(tenant.transact((tx) => tx.add(k('n'), 1.5))).rejects.toMatchObject({
          code: 'BAD_ARGUMENT',
        });
      });
    });

    describe('versionstamps', () => {
      test('versionstamped keys are unique and sort in commit order', async () => {
        for (let i = 0; i < 6; i++)
          await tenant.transact((tx) => {
            tx.setVersionstampedKey(['log', unboundVersionstamp()], b(`${i}.0`));
            tx.setVersionstampedKey(['log', unboundVersionstamp()], b(`${i}.1`));
          });
        const { start, end } = prefixRange(['log']);
        const rows = await tenant.read((tx) => tx.getRange(start, end));
        expect(rows.map((r) => str(r.value))).toEqual(
          Array.from({ length: 6 }, (_, i) => [`${i}.0`, `${i}.1`]).flat(),
        );
        const stamps = rows.map((r) => (unpack(r.key)[1] as { type: string; value: Buffer }).value);
        expect(stamps.every((s) => s.length === 12)).toBe(true);
        expect(new Set(stamps.map((s) => s.toString('hex'))).size).toBe(12);
        // Within one transaction: the same 10-byte commit stamp, user versions 0 and 1.
        expect(stamps[0].subarray(0, 10)).toEqual(stamps[1].subarray(0, 10));
        expect([stamps[0].readUInt16BE(10), stamps[1].readUInt16BE(10)]).toEqual([0, 1]);
      });

      test('keys from concurrent transactions still sort in commit order', async () => {
        const seqKey = k('seq');
        await Promise.all(
          Array.from({ length: 15 }, () =>
            tenant.transact(async (tx) => {
              const v = await tx.get(seqKey);
              const seq = v ? v.readBigInt64LE(0) : 0n;
              tx.set(seqKey, le(seq + 1n));
              tx.setVersionstampedKey(['log', unboundVersionstamp()], b(String(seq)));
            }),
          ),
        );
        const { start, end } = prefixRange(['log']);
        const rows = await tenant.read((tx) => tx.getRange(start, end));
        expect(rows.map((r) => Number(str(r.value)))).toEqual(Array.from({ length: 15 }, (_, i) => i));
      });

      test('getVersionstamp resolves after commit with the stamp the keys got', async () => {
        const stamps: Buffer[] = [];
        for (let i = 0; i < 3; i++) {
          const stamp = await tenant
            .transact((tx) => {
              tx.setVersionstampedKey(['log', i, unboundVersionstamp()], b('x'));
              return { p: tx.getVersionstamp() };
            })
            .then((r) => r.p);
          expect(stamp).toHaveLength(10);
          const [row] = await tenant.read((tx) =>
            tx.getRange(prefixRange(['log', i]).start, prefixRange(['log', i]).end),
          );
          expect((unpack(row.key)[2] as { value: Buffer }).value.subarray(0, 10)).toEqual(stamp);
          stamps.push(stamp);
        }
        expect(Buffer.compare(stamps[0], stamps[1])).toBeLessThan(0);
        expect(Buffer.compare(stamps[1], stamps[2])).toBeLessThan(0);
      });

      test('getVersionstamp of a transaction that only reads, and of a failed one', async () => {
        const a = await tenant.transact((tx) => ({ p: tx.getVersionstamp() })).then((r) => r.p);
        const c = await tenant.transact((tx) => ({ p: tx.getVersionstamp() })).then((r) => r.p);
        expect(a).toHaveLength(10);
        expect(Buffer.compare(a, c)).toBeLessThan(0);

        let failed!: Promise<Buffer>;
        await expect(
          tenant.transact((tx) => {
            failed = tx.getVersionstamp();
            failed.catch(() => undefined);
            tx.set(k('a'), b('1'));
            throw new Error('no');
          }),
        ).rejects.toThrow('no');
        await expect(failed).rejects.toBeDefined();
      });

      test('setVersionstampedValue writes prefix + stamp + suffix', async () => {
        const stamp = await tenant
          .transact((tx) => {
            tx.setVersionstampedValue(k('v'), b('<'), b('>'));
            tx.setVersionstampedValue(k('bare'));
            return { p: tx.getVersionstamp() };
          })
          .then((r) => r.p);
        expect(await tenant.read((tx) => tx.get(k('v')))).toEqual(Buffer.concat([b('<'), stamp, b('>')]));
        expect(await tenant.read((tx) => tx.get(k('bare')))).toEqual(stamp);
      });

      test('a transaction writes at most 65536 versionstamped keys (16-bit user versions)', async () => {
        await expect(
          tenant.transact((tx) => {
            for (let i = 0; i <= 0x10000; i++)
              tx.setVersionstampedKey(['v', unboundVersionstamp()], Buffer.alloc(0));
          }),
        ).rejects.toMatchObject({ code: 'BAD_KEY' });
        expect(await getAll()).toEqual([]);
      });

      test('a versionstamped key needs exactly one unbound versionstamp (BAD_KEY)', async () => {
        await expect(tenant.transact((tx) => tx.setVersionstampedKey(['x'], b('1')))).rejects.toMatchObject({
          code: 'BAD_KEY',
        });
        await expect(
          tenant.transact((tx) =>
            tx.setVersionstampedKey(['x', unboundVersionstamp(), unboundVersionstamp()], b('1')),
          ),
        ).rejects.toMatchObject({ code: 'BAD_KEY' });
      });
    });

    describe('watches', () => {
      test('fire when another commit changes the key', async () => {
        await put({ w: '1' });
        const watch = await tenant.watch(k('w'));
        expect(await settledWithin(watch.changed, 50)).toBe('pending');
        await put({ w: '2' });
        expect(await watch.changed).toBe(true);
      });

      test('fire on clear, clearRange, add and first creation', async () => {
        await put({ a: '1', b: '1' });
        const onClear = await tenant.watch(k('a'));
        const onRange = await tenant.watch(k('b'));
        const onAdd = await tenant.watch(k('n'));
        const onCreate = await tenant.watch(k('new'));
        await tenant.transact((tx) => tx.clear(k('a')));
        await tenant.transact((tx) => tx.clearRange(k('b'), k('c')));
        await tenant.transact((tx) => tx.add(k('n'), 1));
        await put({ new: 'x' });
        expect(
          await Promise.all([onClear.changed, onRange.changed, onAdd.changed, onCreate.changed]),
        ).toEqual([true, true, true, true]);
      });

      test('do not fire for a write of the same value', async () => {
        await put({ w: 'same' });
        const watch = await tenant.watch(k('w'));
        await put({ w: 'same' });
        await tenant.transact((tx) => tx.clear(k('elsewhere')));
        expect(await settledWithin(watch.changed, 200)).toBe('pending');
        await put({ w: 'different' });
        expect(await watch.changed).toBe(true);
      });

      test('can be cancelled (resolve false)', async () => {
        const watch = await tenant.watch(k('w'));
        watch.cancel();
        expect(await watch.changed).toBe(false);
        await put({ w: '1' });
      });

      test('tx.watch compares with the value its transaction sees, and starts at commit', async () => {
        let watch!: ReturnType<Transaction['watch']>;
        await tenant.transact((tx) => {
          tx.set(k('w'), b('mine'));
          watch = tx.watch(k('w'));
        });
        expect(await settledWithin(watch.changed, 100)).toBe('pending');
        await put({ w: 'theirs' });
        expect(await watch.changed).toBe(true);
      });

      test('tx.watch after a set of its key compares with the value stored, whatever became of the buffer set', async () => {
        let watch!: ReturnType<Transaction['watch']>;
        let cleared!: ReturnType<Transaction['watch']>;
        await tenant.transact((tx) => {
          const value = b('mine');
          tx.set(k('w'), value);
          value.fill(0); // the store kept what was set
          watch = tx.watch(k('w'));
          tx.set(k('c'), b('gone'));
          tx.clear(k('c'));
          cleared = tx.watch(k('c')); // absent, as the transaction sees it
        });
        expect(await settledWithin(watch.changed, 100)).toBe('pending');
        expect(await settledWithin(cleared.changed, 1)).toBe('pending');
        await put({ w: 'mine' }); // the same value: no change
        expect(await settledWithin(watch.changed, 100)).toBe('pending');
        await put({ w: 'theirs', c: 'back' });
        expect(await watch.changed).toBe(true);
        expect(await cleared.changed).toBe(true);
      });

      test('a watch from a transaction that fails resolves false', async () => {
        let watch!: ReturnType<Transaction['watch']>;
        await expect(
          tenant.transact((tx) => {
            watch = tx.watch(k('w'));
            throw new Error('no');
          }),
        ).rejects.toThrow('no');
        expect(await watch.changed).toBe(false);
      });

      test('a lazy watch fires for a change, not for the same value (WatchOptions)', async () => {
        await put({ w: 'same' });
        const lazy = await tenant.watch(k('w'), { lazy: true });
        const prompt = await tenant.watch(k('w'));
        await put({ w: 'same' });
        expect(await settledWithin(lazy.changed, 200)).toBe('pending');
        await put({ w: 'different' });
        expect(await Promise.all([lazy.changed, prompt.changed])).toEqual([true, true]);
        const cancelled = await tenant.watch(k('w'), { lazy: false });
        cancelled.cancel();
        expect(await cancelled.changed).toBe(false);
      });

      test('watch options other than { lazy: boolean } are BAD_ARGUMENT', async () => {
        for (const bad of [null, 'lazy', { lazy: 'yes' }])
          await expect(
            tenant.transact((tx) => tx.watch(k('w'), bad as unknown as { lazy: boolean })),
          ).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      });

      test('many watchers of one key all fire', async () => {
        const watches = await Promise.all(Array.from({ length: 5 }, () => tenant.watch(k('w'))));
        await put({ w: 'x' });
        expect(await Promise.all(watches.map((w) => w.changed))).toEqual([true, true, true, true, true]);
      });
    });

    describe('snapshot reads', () => {
      test('see committed data only, consistently', async () => {
        await put({ a: '1', b: '1' });
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const writing = tenant.transact(async (tx) => {
          tx.set(k('a'), b('2'));
          await gate;
          tx.set(k('b'), b('2'));
        });
        await sleep(20);
        const reading = tenant.read(async (tx) => [str(await tx.get(k('a'))), str(await tx.get(k('b')))]);
        await sleep(20);
        release();
        await writing;
        const [a, bb] = await reading;
        expect(a).toBe(bb); // both before or both after, never half of the transaction
        expect(
          await tenant.read(async (tx) => [str(await tx.get(k('a'))), str(await tx.get(k('b')))]),
        ).toEqual(['2', '2']);
      });

      test('never see the writes of a transaction that failed', async () => {
        await put({ a: '1' });
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const failing = tenant.transact(async (tx) => {
          tx.set(k('a'), b('2'));
          await gate;
          throw new Error('rolled back');
        });
        await sleep(20);
        const reading = tenant.read((tx) => tx.get(k('a')));
        release();
        await expect(failing).rejects.toThrow('rolled back');
        expect(str(await reading)).toBe('1');
      });
    });

    describe('tenants', () => {
      test('are isolated from each other, including nested and look-alike paths', async () => {
        const base = uniquePath('iso');
        const a = await backend.openTenant([...base, 'a']);
        const ab = await backend.openTenant([...base, 'a', 'b']);
        const aLike = await backend.openTenant([...base, 'ab']);
        for (const [t, v] of [
          [a, 'a'],
          [ab, 'a/b'],
          [aLike, 'ab'],
        ] as const)
          await t.transact((tx) => tx.set(k('key'), b(v)));
        for (const [t, v] of [
          [a, 'a'],
          [ab, 'a/b'],
          [aLike, 'ab'],
        ] as const) {
          const rows = await t.read((tx) => tx.getRange(ALL.start, ALL.end));
          expect(rows.map((r) => str(r.value))).toEqual([v]);
        }
        expect(a.path).toEqual([...base, 'a']);
        expect(a.backend).toBe(backend);
      });

      test('removeTenant deletes the tenant and the tenants below it, nothing else', async () => {
        const base = uniquePath('rm');
        const a = await backend.openTenant([...base, 'a']);
        const ab = await backend.openTenant([...base, 'a', 'b']);
        const aLike = await backend.openTenant([...base, 'ab']);
        const sibling = await backend.openTenant([...base, 'c']);
        for (const t of [a, ab, aLike, sibling]) await t.transact((tx) => tx.set(k('key'), b('v')));
        await backend.removeTenant([...base, 'a']);
        for (const path of [
          [...base, 'a'],
          [...base, 'a', 'b'],
        ]) {
          const t = await backend.openTenant(path);
          expect(await t.read((tx) => tx.getRange(ALL.start, ALL.end))).toEqual([]);
        }
        for (const t of [aLike, sibling]) expect(str(await t.read((tx) => tx.get(k('key'))))).toBe('v');
        await backend.removeTenant([...base, 'never-created']);
      });

      test('a tenant path is a non-empty array of non-empty strings (BAD_ARGUMENT)', async () => {
        for (const bad of [[], [''], 'a', [1]] as unknown as string[][])
          await expect(backend.openTenant(bad)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      });
    });

    describe('limits (the same on every backend)', () => {
      test(`values up to ${LIMITS.valueBytes} bytes; larger is VALUE_TOO_LARGE`, async () => {
        await tenant.transact((tx) => tx.set(k('v'), Buffer.alloc(LIMITS.valueBytes, 1)));
        expect(await tenant.read((tx) => tx.get(k('v')))).toHaveLength(LIMITS.valueBytes);
        await expect(
          tenant.transact((tx) => tx.set(k('w'), Buffer.alloc(LIMITS.valueBytes + 1))),
        ).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE' });
        await expect(
          tenant.transact((tx) =>
            tx.setVersionstampedKey(['w', unboundVersionstamp()], Buffer.alloc(LIMITS.valueBytes + 1)),
          ),
        ).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE' });
        await expect(
          tenant.transact((tx) => tx.setVersionstampedValue(k('w'), Buffer.alloc(LIMITS.valueBytes))),
        ).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE' });
        expect(await tenant.read((tx) => tx.get(k('w')))).toBeUndefined();
      });

      test(`keys over ${LIMITS.keyBytes} bytes are KEY_TOO_LARGE`, async () => {
        const big = Buffer.alloc(9_000, 7);
        await tenant.transact((tx) => tx.set(big, b('ok')));
        expect(str(await tenant.read((tx) => tx.get(big)))).toBe('ok');
        const tooBig = Buffer.alloc(LIMITS.keyBytes + 1, 7);
        await expect(tenant.transact((tx) => tx.set(tooBig, b('x')))).rejects.toMatchObject({
          code: 'KEY_TOO_LARGE',
        });
        await expect(tenant.transact((tx) => tx.get(tooBig))).rejects.toMatchObject({
          code: 'KEY_TOO_LARGE',
        });
        await expect(
          tenant.transact((tx) =>
            tx.setVersionstampedKey([tooBig.toString('latin1'), unboundVersionstamp()], b('x')),
          ),
        ).rejects.toMatchObject({ code: 'KEY_TOO_LARGE' });
      });

      test(`a transaction writing over ${LIMITS.transactionBytes} bytes is TRANSACTION_TOO_LARGE and commits nothing`, async () => {
        const value = Buffer.alloc(LIMITS.valueBytes, 1);
        await expect(
          tenant.transact((tx) => {
            for (let i = 0; i <= LIMITS.transactionBytes / LIMITS.valueBytes; i++) tx.set(k('big', i), value);
          }),
        ).rejects.toMatchObject({ code: 'TRANSACTION_TOO_LARGE' });
        expect(await getAll()).toEqual([]);
      });

      test('a body running past its time limit is TRANSACTION_TIMED_OUT and commits nothing', async () => {
        let lateError: unknown;
        await expect(
          tenant.transact(
            async (tx) => {
              tx.set(k('a'), b('1'));
              await sleep(400);
              try {
                tx.set(k('b'), b('1'));
              } catch (err) {
                lateError = err;
              }
            },
            { timeoutMs: 100 },
          ),
        ).rejects.toMatchObject({ code: 'TRANSACTION_TIMED_OUT' });
        await sleep(350);
        expect(lateError).toMatchObject({ code: 'TRANSACTION_FINISHED' });
        expect(await getAll()).toEqual([]);
        // and the backend is not wedged
        await put({ after: 'ok' });
        expect(str(await tenant.read((tx) => tx.get(k('after'))))).toBe('ok');
      });

      test('a body that works synchronously past its time limit is TRANSACTION_TIMED_OUT and commits nothing', async () => {
        const busy = (ms: number) => {
          const until = performance.now() + ms;
          while (performance.now() < until); // no await: no timer can fire meanwhile
        };
        await expect(
          tenant.transact(
            async (tx) => {
              tx.set(k('sync'), b('1'));
              busy(150);
              await Promise.resolve();
            },
            { timeoutMs: 50 },
          ),
        ).rejects.toMatchObject({ code: 'TRANSACTION_TIMED_OUT' });
        await expect(
          tenant.transact(
            async (tx) => {
              await Promise.resolve();
              tx.set(k('sync'), b('2'));
              busy(150);
            },
            { timeoutMs: 50 },
          ),
        ).rejects.toMatchObject({ code: 'TRANSACTION_TIMED_OUT' });
        expect(await tenant.read((tx) => tx.get(k('sync')))).toBeUndefined();
      });

      test('each transaction gets its own time limit', async () => {
        await tenant.transact(async () => sleep(5)); // the default limit
        await expect(tenant.transact(() => sleep(300), { timeoutMs: 50 })).rejects.toMatchObject({
          code: 'TRANSACTION_TIMED_OUT',
        });
        await tenant.transact(() => sleep(150), { timeoutMs: 1000 });
        await expect(tenant.transact(() => sleep(300), { timeoutMs: 60 })).rejects.toMatchObject({
          code: 'TRANSACTION_TIMED_OUT',
        });
      });

      test(`the default time limit is ${LIMITS.transactionMs} ms`, () => {
        expect(LIMITS.transactionMs).toBe(5000);
      });
    });

    test('close: pending watches resolve false, then every call is BACKEND_CLOSED', async () => {
      const own = await factory.open();
      try {
        const t = await own.backend.openTenant(uniquePath('close'));
        const watch = await t.watch(k('w'));
        await own.backend.close();
        expect(await watch.changed).toBe(false);
        await expect(t.transact((tx) => tx.set(k('a'), b('1')))).rejects.toMatchObject({
          code: 'BACKEND_CLOSED',
        });
        await expect(t.read((tx) => tx.get(k('a')))).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
        await expect(own.backend.openTenant(['x'])).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
        await own.backend.close(); // twice is fine
      } finally {
        await own.cleanup();
      }
    });
  });
}
