import * as net from 'node:net';

/**
 * The run's PostgreSQL (test/helpers/postgres/global-setup.ts) is up and reachable from a test
 * worker: it answers PostgreSQL's SSLRequest ('S' or 'N'), which nothing but a PostgreSQL server does.
 */
describe('PostgreSQL test harness', () => {
  it('hands every worker a PostgreSQL server in DGEN_TEST_POSTGRES_URL', async () => {
    const url = new URL(process.env.DGEN_TEST_POSTGRES_URL ?? 'missing:');
    expect(['postgres:', 'postgresql:']).toContain(url.protocol);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(url.port || 5432), url.hostname, () => {
        const request = Buffer.alloc(8);
        request.writeInt32BE(8, 0);
        request.writeInt32BE(80877103, 4); // SSLRequest code
        socket.write(request);
      });
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.subarray(0, 1).toString('latin1'));
      });
      socket.once('error', reject);
    });
    expect(['S', 'N']).toContain(answer);
  });
});
