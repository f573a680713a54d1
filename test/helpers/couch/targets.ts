import nano from 'nano';
import type { DbTarget } from '../../../src/couch';
import { stopAll } from '../../../src/kernel/local-registry';
import { FaultProxy } from './fault-proxy';
import { startPouchServer, type RunningServer } from './pouch-server';

/** A CouchDB-compatible server under test, with a fault proxy in front of it. */
export interface CouchTarget {
  readonly name: string;
  /** Talks to the server directly (not through the proxy): for document writes. */
  readonly nano: nano.ServerScope;
  readonly proxy: FaultProxy;
  readonly auth?: { readonly username: string; readonly password: string };
  /** True for Apache CouchDB (opaque string seqs, `timeout` honoured, real 400s). */
  readonly isCouchDB: boolean;
  /** Creates an empty database with a fresh name; returns its name. */
  createDb(label: string): Promise<string>;
  /** The database's URL through the proxy, without credentials. */
  dbUrl(db: string): string;
  /** What a follower is given: the URL through the proxy, with the server's credentials if any. */
  dbTarget(db: string): DbTarget;
  close(): Promise<void>;
}

export interface TargetSpec {
  readonly name: string;
  start(): Promise<CouchTarget>;
}

let counter = 0;
const freshName = (label: string) =>
  `dgen-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${process.pid}-${Date.now().toString(36)}-${counter++}`;

async function makeTarget(
  name: string,
  server: { host: string; port: number; url: string; close?: () => Promise<void> },
  auth: { username: string; password: string } | undefined,
  isCouchDB: boolean,
): Promise<CouchTarget> {
  const proxy = await FaultProxy.start(server.host, server.port);
  const direct = new URL(server.url);
  if (auth) {
    direct.username = auth.username;
    direct.password = auth.password;
  }
  const client = nano({ url: direct.toString().replace(/\/$/, '') });
  const created: string[] = [];
  return {
    name,
    nano: client,
    proxy,
    auth,
    isCouchDB,
    async createDb(label) {
      const db = freshName(label);
      await client.db.create(db);
      created.push(db);
      return db;
    },
    dbUrl: (db) => `${proxy.url}/${encodeURIComponent(db)}`,
    dbTarget: (db) =>
      auth
        ? { url: `${proxy.url}/${encodeURIComponent(db)}`, auth }
        : `${proxy.url}/${encodeURIComponent(db)}`,
    async close() {
      await proxy.close();
      if (isCouchDB) await Promise.all(created.map((db) => client.db.destroy(db).catch(() => undefined)));
      await server.close?.();
    },
  };
}

export const pouchTarget: TargetSpec = {
  name: 'PouchDB Server',
  async start() {
    const server: RunningServer = await startPouchServer();
    return makeTarget('PouchDB Server', server, undefined, false);
  },
};

/** The Apache CouchDB named by COUCHDB_URL (`http://user:pass@host:5984`), when set. */
export function couchdbTarget(): TargetSpec | undefined {
  const raw = process.env.COUCHDB_URL;
  if (!raw) return undefined;
  const url = new URL(raw);
  const auth = url.username
    ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
    : undefined;
  const host = url.hostname;
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return {
    name: 'Apache CouchDB',
    start: () =>
      makeTarget('Apache CouchDB', { host, port, url: `${url.protocol}//${host}:${port}` }, auth, true),
  };
}

/**
 * The servers a suite runs against: PouchDB Server always, Apache CouchDB when COUCHDB_URL is set.
 * Without it, `describeTargets` reports a named skip so the gap is visible in the test output.
 */
export function describeTargets(title: string, body: (get: () => CouchTarget) => void): void {
  const specs = [pouchTarget, couchdbTarget()].filter((s): s is TargetSpec => s !== undefined);
  for (const spec of specs) {
    describe(`${title} — ${spec.name}`, () => {
      let target: CouchTarget | undefined;
      beforeAll(async () => {
        target = await spec.start();
      });
      afterAll(async () => {
        await stopAll(); // a failed test may leave its follower running
        await target?.close();
      });
      body(() => {
        if (!target) throw new Error(`${spec.name} did not start`);
        return target;
      });
    });
  }
  if (!process.env.COUCHDB_URL)
    describe.skip(`${title} — Apache CouchDB (set COUCHDB_URL=http://user:pass@host:5984 to run)`, () => {
      it('runs the same suite against Apache CouchDB', () => undefined);
    });
}
