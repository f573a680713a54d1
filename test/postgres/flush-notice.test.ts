/**
 * The locked commit query flushes its transaction id early with a NOTICE (`flush_reply()`), which the
 * server does not write to its log at the default log_min_messages: it used a BEGIN inside the
 * transaction, whose WARNING was a log line per queue push on the user's server. A schema made before
 * the function existed gets it when opened. Against the server of the test run
 * (DGEN_TEST_POSTGRES_URL), reading the messages that reach the client's sockets.
 */
import * as net from 'node:net';
import postgres from 'postgres';
import { openBackend } from '../../src/backend/open-backend';
import { pack, prefixRange, unboundVersionstamp } from '../../src/backend/keys';
import type { Backend, Tenant } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;

/** The severities (non-localized, field V) of the NoticeResponses every socket received while `fn` ran. */
async function noticesDuring(fn: () => Promise<void>): Promise<string[]> {
  const severities: string[] = [];
  const emit = net.Socket.prototype.emit;
  net.Socket.prototype.emit = function (this: net.Socket, ev: string | symbol, ...args: unknown[]) {
    const chunk = args[0];
    if (ev === 'data' && Buffer.isBuffer(chunk))
      for (let i = 0; i + 5 <= chunk.length; i += 1 + chunk.readInt32BE(i + 1)) {
        if (chunk[i] !== 0x4e) continue; // 'N'
        const end = Math.min(chunk.length, i + 1 + chunk.readInt32BE(i + 1));
        for (let at = i + 5; at < end && chunk[at] !== 0;) {
          const stop = chunk.indexOf(0, at + 1);
          if (chunk[at] === 0x56) severities.push(chunk.toString('utf8', at + 1, stop)); // 'V'
          at = stop + 1;
        }
      }
    return (emit as (...a: unknown[]) => boolean).call(this, ev, ...args);
  } as typeof emit;
  try {
    await fn();
  } finally {
    net.Socket.prototype.emit = emit;
  }
  return severities;
}

suite('postgres commit flush notice', () => {
  const url = URL!;
  const schemas: string[] = [];
  const opened: Backend[] = [];

  async function tenant(schema: string): Promise<Tenant> {
    if (!schemas.includes(schema)) schemas.push(schema);
    const backend = await openBackend(url, { postgres: { schema, poolSize: 1 } });
    opened.push(backend);
    return backend.openTenant(['t']);
  }

  afterAll(async () => {
    await Promise.all(opened.map((x) => x.close()));
    for (const s of schemas) await dropSchema(url, s);
  });

  const push = (t: Tenant, i: number) =>
    t.transact((tx) => {
      tx.setVersionstampedKey(['q', unboundVersionstamp()], Buffer.from(String(i)));
      tx.add(pack(['pushed']), 1);
    });

  test('each locked commit sends one NOTICE and no WARNING (nothing for the server log)', async () => {
    const t = await tenant(freshSchema());
    const severities = await noticesDuring(async () => {
      for (let i = 0; i < 4; i++) await push(t, i);
    });
    expect(severities).toEqual(['NOTICE', 'NOTICE', 'NOTICE', 'NOTICE']);
  });

  test('a schema made before flush_reply existed gets it when opened', async () => {
    const schema = freshSchema();
    await tenant(schema);
    const admin = postgres(url, { max: 1, onnotice: () => undefined });
    try {
      await admin.unsafe(`DROP FUNCTION "${schema}".flush_reply()`);
      const t = await tenant(schema); // a second instance opens the older schema
      await push(t, 1);
      await push(t, 2);
      const items = await t.read((tx) => tx.getRange(prefixRange(['q']).start, prefixRange(['q']).end));
      expect(items.map((x) => x.value.toString())).toEqual(['1', '2']);
      const [row] = await admin.unsafe(`SELECT to_regprocedure($1) AS f`, [`"${schema}".flush_reply()`]);
      expect(row.f).not.toBeNull();
    } finally {
      await admin.end({ timeout: 5 });
    }
  });
});
