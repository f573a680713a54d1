/**
 * Runs of neighbouring sets or clears go to PostgreSQL as one statement each (mergeWrites): which
 * statements merge, and that a transaction whose writes merge leaves exactly what its writes one by
 * one would (order kept between runs, the last set of a key winning, empty values). Against the server
 * of the test run (DGEN_TEST_POSTGRES_URL).
 */
import { openBackend } from '../../src/backend/open-backend';
import { pack, prefixRange } from '../../src/backend/keys';
import { statements } from '../../src/backend/postgres/schema';
import { mergeWrites } from '../../src/backend/postgres/write-merge';
import type { Backend, Tenant } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;
const b = (s: string) => Buffer.from(s);
const k = (s: string) => pack(['m', s]);

describe('mergeWrites', () => {
  const st = statements('s');
  const set = (key: string, value: string) => ({ text: st.set, params: [b(key), b(value)] });
  const clear = (key: string) => ({ text: st.clear, params: [b(key)] });
  const add = (key: string) => ({ text: st.add, params: [b(key), '1', '0'] });
  const hex = (s: string) => b(s).toString('hex');

  test('neighbouring sets and clears merge; other writes and lone ones stay as they are', () => {
    const merged = mergeWrites(
      [
        set('a', '1'),
        set('b', '2'),
        set('a', '3'),
        clear('c'),
        add('n'),
        clear('d'),
        clear('e'),
        set('f', ''),
      ],
      st,
    );
    expect(merged).toEqual([
      { text: st.setMany, params: [`${hex('b')},${hex('a')}`, `${hex('2')},${hex('3')}`] },
      clear('c'),
      add('n'),
      { text: st.clearMany, params: [`${hex('d')},${hex('e')}`] },
      set('f', ''),
    ]);
    // Two sets of one key: the last, as a plain set (a list of one empty value would be no list).
    expect(mergeWrites([set('a', '1'), set('a', '')], st)).toEqual([set('a', '')]);
  });
});

suite('postgres: merged writes', () => {
  const schema = freshSchema();
  let backend: Backend;
  let t: Tenant;
  beforeAll(async () => {
    backend = await openBackend(URL!, { postgres: { schema, poolSize: 2 } });
    t = await backend.openTenant(['w']);
  });
  afterAll(async () => {
    await backend.close();
    await dropSchema(URL!, schema);
  });

  test('a transaction of runs of sets and clears leaves what its writes one by one would', async () => {
    await t.transact((tx) => {
      for (let i = 0; i < 40; i++) tx.set(k(`k${i}`), b(`v${i}`));
    });
    const got = await t.transact(async (tx) => {
      for (let i = 0; i < 10; i++) tx.clear(k(`k${i}`));
      tx.set(k('k3'), b('back')); // after its clear: it stays
      tx.set(k('k20'), Buffer.alloc(0));
      tx.set(k('k21'), b('x'));
      tx.set(k('k20'), b('last')); // the last set of k20 in the run wins
      tx.set(k('k22'), Buffer.alloc(0));
      tx.clear(k('k30'));
      tx.clear(k('k30'));
      tx.clear(k('k31'));
      tx.set(k('k31'), b('again'));
      // read back inside the transaction: the writes went out merged, before the read
      return (await tx.getRange(...(Object.values(prefixRange(['m'])) as [Buffer, Buffer]))).length;
    });
    const rows = await t.read((tx) => tx.getRange(prefixRange(['m']).start, prefixRange(['m']).end));
    const byKey = new Map(rows.map((r) => [r.key.toString('hex'), r.value.toString()]));
    expect(got).toBe(rows.length);
    expect(rows).toHaveLength(40 - 10 + 1 - 1);
    expect(byKey.get(k('k0').toString('hex'))).toBeUndefined();
    expect(byKey.get(k('k3').toString('hex'))).toBe('back');
    expect(byKey.get(k('k20').toString('hex'))).toBe('last');
    expect(byKey.get(k('k21').toString('hex'))).toBe('x');
    expect(byKey.get(k('k22').toString('hex'))).toBe('');
    expect(byKey.get(k('k30').toString('hex'))).toBeUndefined();
    expect(byKey.get(k('k31').toString('hex'))).toBe('again');
  });
});
