import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/** A CouchDB-compatible HTTP server the tests can talk to. */
export interface RunningServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

const SCRIPT = path.join(__dirname, 'pouchdb-server.js');

/**
 * Starts PouchDB Server (express-pouchdb over the in-memory adapter) in a child process on a free
 * port of 127.0.0.1. A child keeps the server's own timers and live feeds out of the test process,
 * so Jest exits cleanly, and keeps its CPU off the follower's event loop in the benchmark.
 */
export async function startPouchServer(): Promise<RunningServer> {
  const child: ChildProcess = fork(SCRIPT, [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: [],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('PouchDB Server did not start within 15 s')), 15_000);
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`PouchDB Server exited with code ${code} before listening`)),
    );
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m.type === 'listening' && typeof m.port === 'number') {
        clearTimeout(timer);
        resolve(m.port);
      }
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
