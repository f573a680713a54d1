/**
 * postgres 3.4.9 fetches array types on each new connection from a promise nobody awaits: a connection
 * that closes during that fetch used to end the whole process (an unhandled rejection). A fake server
 * of a few lines accepts the connection and closes it as soon as the fetch arrives.
 */
import * as net from 'node:net';
import postgres from 'postgres';
import { guardTypeFetch } from '../../src/backend/postgres/client-guard';

const msg = (type: string, body: Buffer) => {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};

test('a connection closed while the client fetches its array types rejects nothing unhandled', async () => {
  let fetchSeen = false;
  const server = net.createServer((socket) => {
    let started = false;
    socket.on('data', () => {
      if (!started) {
        started = true; // StartupMessage: authentication ok, ready for query
        const key = Buffer.alloc(8);
        socket.write(Buffer.concat([msg('R', Buffer.alloc(4)), msg('K', key), msg('Z', Buffer.from('I'))]));
      } else {
        fetchSeen = true; // the client's first query after connecting is the type fetch: close (FIN)
        socket.end();
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const sql = postgres(`postgres://u:p@127.0.0.1:${port}/db`, { max: 1, onnotice: () => undefined });
  guardTypeFetch(sql);
  try {
    void sql.reserve().catch(() => undefined); // as the backend opens connections
    for (let i = 0; i < 100 && !fetchSeen; i++) await new Promise((r) => setTimeout(r, 20));
    expect(fetchSeen).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await sql.end({ timeout: 0 }).catch(() => undefined);
    server.close();
  }
});
