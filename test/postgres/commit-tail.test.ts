/**
 * The tail of a commit that takes no commit lock (commit-batch.ts): after the body's reads, the
 * transaction id, the writes, the watched keys' values and NOTIFY go as ONE statement (writes as
 * data-modifying WITH queries) before COMMIT, unless two of them could disagree inside one statement
 * (one key written twice, a watched key written): then one statement each, as before. Watched over the
 * client's socket against the server of the test run (DGEN_TEST_POSTGRES_URL).
 */
import { encodeInt64LE } from '../../src/backend/common/int64';
import { openBackend } from '../../src/backend/open-backend';
import { pack, prefixRange } from '../../src/backend/keys';
import type { Backend, Tenant, Transaction, Watch } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';
import { countSocketWrites, portOf } from '../helpers/postgres/socket-traffic';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;
const b = (s: string) => Buffer.from(s);
const le = (n: number) => encodeInt64LE(BigInt(n));
const fired = (w: Watch, ms: number) =>
  Promise.race([w.changed, new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

suite('postgres commit tail', () => {
  const url = URL!;
  const schema = freshSchema();
  const opened: Backend[] = [];
  let t: Tenant;
  let other: Tenant;
  const { start, end } = prefixRange(['q']);

  beforeAll(async () => {
    const [x, y] = await Promise.all([
      openBackend(url, { postgres: { schema, poolSize: 1 } }),
      openBackend(url, { postgres: { schema, poolSize: 1 } }),
    ]);
    opened.push(x, y);
    [t, other] = await Promise.all([x.openTenant(['t']), y.openTenant(['t'])]);
  });

  afterAll(async () => {
    await Promise.all(opened.map((x) => x.close()));
    await dropSchema(url, schema);
  });

  /** A read, then `write`: the statements sent (BEGIN and the read are 2, COMMIT is 1). */
  const afterRead = (write: (tx: Transaction) => void) =>
    countSocketWrites(portOf(url), () =>
      t.transact(async (tx) => {
        await tx.getRange(start, end, { limit: 1 });
        write(tx);
      }),
    );

  test('the id, a clear, a set, an add, a watched value and NOTIFY go as one statement, with their effects', async () => {
    await t.transact((tx) => tx.set(pack(['a']), b('old')));
    // The connection prepares the read; watches start this process's LISTEN connection now, not during
    // the count below (its LISTEN would count as a statement, or not, as the timing goes): `ping` fires
    // once it listens, `listening` keeps it listening until the count is done.
    let [listening, ping]: Watch[] = [];
    await afterRead((tx) => {
      tx.set(pack(['warm']), b('1'));
      [listening, ping] = [tx.watch(pack(['listening'])), tx.watch(pack(['ping']))];
    });
    await other.transact((tx) => tx.set(pack(['ping']), b('1')));
    expect(await fired(ping, 5000)).toBe(true);
    let watch!: Watch;
    const { statements } = await afterRead((tx) => {
      tx.clear(pack(['a']));
      tx.set(pack(['b']), b('new'));
      tx.add(pack(['n']), 5);
      watch = tx.watch(pack(['w']));
    });
    expect(statements).toBe(4); // BEGIN and the read; the tail and COMMIT (9 one by one)
    listening.cancel();
    expect(await t.read((tx) => Promise.all(['a', 'b', 'n'].map((k) => tx.get(pack([k])))))).toEqual([
      undefined,
      b('new'),
      le(5),
    ]);
    // The watched key's baseline came with the tail: no change, no fire; a change fires it.
    expect(await fired(watch, 300)).toBe(false);
    await other.transact((tx) => tx.set(pack(['w']), b('1')));
    expect(await fired(watch, 5000)).toBe(true);
    // Another process's watches hear the values in the NOTIFY (the add's as the server computed it).
    const [onB, onN] = await other.transact((tx) => [tx.watch(pack(['b'])), tx.watch(pack(['n']))]);
    await afterRead((tx) => {
      tx.set(pack(['b']), b('newer'));
      tx.add(pack(['n']), 2);
    });
    await Promise.all([onB.changed, onN.changed]);
    expect(onB.seen?.value).toEqual(b('newer'));
    expect(onN.seen?.value).toEqual(le(7));
  });

  test('writes to one key twice go one statement each, in order', async () => {
    const { statements } = await afterRead((tx) => {
      tx.set(pack(['k']), b('1'));
      tx.clear(pack(['k']));
      tx.set(pack(['j']), b('2'));
    });
    expect(statements).toBeGreaterThan(4);
    expect(await t.read((tx) => Promise.all([tx.get(pack(['k'])), tx.get(pack(['j']))]))).toEqual([
      undefined,
      b('2'),
    ]);
  });

  test('a watched key added to in the same commit takes the value it commits as its baseline', async () => {
    let watch!: Watch;
    const { statements } = await afterRead((tx) => {
      tx.add(pack(['m']), 1);
      watch = tx.watch(pack(['m']));
    });
    expect(statements).toBeGreaterThan(4); // one by one: a WITH's read would not see its own add
    expect(await fired(watch, 300)).toBe(false);
    await other.transact((tx) => tx.add(pack(['m']), 1));
    expect(await fired(watch, 5000)).toBe(true);
    expect(await t.read((tx) => tx.get(pack(['m'])))).toEqual(le(2));
  });
});
