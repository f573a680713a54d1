/**
 * Watches fired from the values a commit's NOTIFY carries (TouchedKeys, PostgresWatcher), without the
 * listener reading the keys: what the payload holds, that a watch trusts it only once the listener has
 * heard the commit that armed it (earlier notifications may be older than its baseline), and that
 * values the payload does not carry (computed by the server, too long) still fire watches. Against the
 * server of the test run (DGEN_TEST_POSTGRES_URL).
 */
import postgres from 'postgres';
import { openBackend } from '../../src/backend/open-backend';
import { pack } from '../../src/backend/keys';
import { tenantPrefix } from '../../src/backend/common/tenant-path';
import { postgresCounters } from '../../src/backend/postgres/counters';
import { TouchedKeys } from '../../src/backend/postgres/notify-payload';
import { statements } from '../../src/backend/postgres/schema';
import type { Backend, Tenant, Watch } from '../../src/backend/types';
import { dropSchema, freshSchema, sleep } from '../helpers/backend/factories';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;
const b = (s: string) => Buffer.from(s);
const k = (s: string) => pack([s]);
const hex = (s: string) => b(s).toString('hex');
const pending = (w: Watch) => Promise.race([w.changed, sleep(300).then(() => 'pending' as const)]);

describe('TouchedKeys: the NOTIFY payload', () => {
  const st = statements('s');
  const hash = /^[0-9a-z]{1,7}$/;

  test('small values by key, computed values left to the server, a token last', () => {
    const t = new TouchedKeys();
    expect(t.any).toBe(false);
    t.set(b('a'), b('1'));
    t.clear(b('b'));
    const [name, keyHex, keyHash] = t.computed(b('c'));
    expect([name, keyHex]).toEqual(['dgen.v0', hex('c')]);
    expect(keyHash).toMatch(hash);
    const { text, params } = t.notify(st, 'ch', 'tok');
    expect(text).toBe(st.notifyComputed(1));
    expect(params).toEqual(['ch', `${hex('a')}=${hex('1')},${hex('b')}-,@tok`, 'dgen.v0', keyHash]);
  });

  test('all keys with their values or none: a long value, or too many keys, and only hashes go', () => {
    const t = new TouchedKeys();
    t.set(b('a'), b('1'));
    t.set(b('d'), Buffer.alloc(65)); // longer than a payload carries
    t.computed(b('c'));
    const { text, params } = t.notify(st, 'ch', 'tok');
    expect(text).toBe(st.notify);
    const entries = (params[1] as string).split(',');
    expect(entries.slice(0, 3).every((e) => hash.test(e))).toBe(true);
    expect(entries.slice(3)).toEqual(['@tok']);
    const many = new TouchedKeys();
    for (let i = 0; i < 200; i++) many.set(Buffer.alloc(40, i), b('v'));
    const payload = many.notify(st, 'ch').params[1] as string;
    expect(payload.split(',')).toHaveLength(200);
    expect(payload.split(',').every((e) => hash.test(e))).toBe(true);
    const fits = new TouchedKeys();
    for (let i = 0; i < 60; i++) fits.set(Buffer.alloc(40, i), b('v'));
    expect((fits.notify(st, 'ch').params[1] as string).split(',').every((e) => e.includes('='))).toBe(true);
  });

  test('the last write of a key is what it carries; a cleared range is *', () => {
    const t = new TouchedKeys();
    t.computed(b('a'));
    t.set(b('a'), b('2'));
    expect(t.notify(st, 'ch')).toEqual({ text: st.notify, params: ['ch', `${hex('a')}=${hex('2')}`] });
    t.all();
    expect(t.notify(st, 'ch', 'tok').params[1]).toBe('*,@tok');
    expect(t.notify(st, 'ch').params[1]).toBe('*');
  });
});

suite('postgres: watches fired from NOTIFY payloads', () => {
  const url = URL!;
  const admin = postgres(url, { max: 1, onnotice: () => undefined });
  const schema = freshSchema();
  const channel = `dgen_${schema}`;
  let one: Backend;
  let two: Backend;
  let a: Tenant;
  let c: Tenant;
  const full = (key: Buffer) => Buffer.concat([tenantPrefix(['n']), key]).toString('hex');
  /** A notification no commit sent: it says `key` now holds `value`. */
  const claim = (key: Buffer, value: Buffer) =>
    admin.unsafe(`SELECT pg_notify($1, $2)`, [channel, `${full(key)}=${value.toString('hex')}`]);

  beforeAll(async () => {
    one = await openBackend(url, { postgres: { schema, poolSize: 2 } });
    two = await openBackend(url, { postgres: { schema, poolSize: 2 } });
    a = await one.openTenant(['n']);
    c = await two.openTenant(['n']);
    // The first watch starts each backend's listener (LISTEN on a connection of its own).
    for (const t of [a, c]) (await t.watch(k('warm'))).cancel();
    await sleep(300);
  });
  afterAll(async () => {
    await one.close();
    await two.close();
    await dropSchema(url, schema);
    await admin.end({ timeout: 5 });
  });

  test('a watch armed by a commit that wrote trusts the values heard after that commit', async () => {
    const watch = await a.transact((tx) => {
      tx.set(k('p'), b('pending'));
      return tx.watch(k('p'));
    });
    await sleep(200); // the listener hears the commit's own NOTIFY
    const reads = postgresCounters.watcherReads;
    await claim(k('p'), b('pending')); // the same value: no change
    expect(await pending(watch)).toBe('pending');
    // With a key whose value is not given, every key of the notification is read (still 'pending').
    await admin.unsafe(`SELECT pg_notify($1, $2)`, [channel, `${full(k('p'))}=${hex('ready')},zz1`]);
    expect(await pending(watch)).toBe('pending');
    expect(postgresCounters.watcherReads).toBe(reads + 1);
    await claim(k('p'), b('ready'));
    // Fired from the payload alone: the stored value never changed, and the key was not read.
    expect(await watch.changed).toBe(true);
    expect(postgresCounters.watcherReads).toBe(reads + 1);
  });

  test('a watch whose commit the listener has not heard reads the key instead of trusting a payload', async () => {
    await a.transact((tx) => tx.set(k('q'), b('1')));
    // A watch-only transaction sends no NOTIFY: the listener never hears it, and reads for its watch.
    const watch = await a.watch(k('q'));
    await sleep(100);
    const reads = postgresCounters.watcherReads;
    await claim(k('q'), b('2'));
    expect(await pending(watch)).toBe('pending'); // read: still '1'
    expect(postgresCounters.watcherReads).toBeGreaterThan(reads);
    await c.transact((tx) => tx.set(k('q'), b('2')));
    expect(await watch.changed).toBe(true);
  });

  test('computed, long, cleared and unchanged values across backends', async () => {
    const long = Buffer.alloc(100, 1);
    await a.transact((tx) => {
      tx.set(k('long'), long);
      tx.set(k('gone'), b('x'));
    });
    const [onAdd, onLong, onClear, onSame] = await a.transact((tx) => {
      tx.set(k('mark'), b('m')); // a write, so this commit's NOTIFY syncs the watches
      return [tx.watch(k('n')), tx.watch(k('long')), tx.watch(k('gone')), tx.watch(k('same'))];
    });
    await sleep(200);
    await c.transact((tx) => tx.set(k('same'), Buffer.alloc(0)));
    await c.transact((tx) => tx.add(k('n'), 0)); // absent → 8 zero bytes: a change
    await c.transact((tx) => tx.set(k('long'), Buffer.concat([long, b('!')])));
    await c.transact((tx) => tx.clear(k('gone')));
    expect(await onAdd.changed).toBe(true);
    expect(await onLong.changed).toBe(true);
    expect(await onClear.changed).toBe(true);
    expect(await pending(onSame)).toBe(true); // absent → empty is a change too
    const again = await a.transact((tx) => {
      tx.set(k('mark'), b('m2'));
      return tx.watch(k('n'));
    });
    await sleep(200);
    const reads = postgresCounters.watcherReads;
    await c.transact((tx) => tx.add(k('n'), 0)); // 0 added: the same value
    await c.transact((tx) => tx.set(k('long'), long));
    expect(await pending(again)).toBe('pending');
    await c.transact((tx) => tx.add(k('n'), 1));
    expect(await again.changed).toBe(true);
    expect(postgresCounters.watcherReads).toBe(reads); // the sums came in the payloads
  });
});
