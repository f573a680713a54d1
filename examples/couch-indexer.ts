/**
 * A CouchDB indexer: a ChangesFollower follows a database's `_changes` feed and feeds every change
 * into a durable server that keeps an index of documents by type. Both keep their state in the same
 * SQLite backend — the index as a durable server, the follower's position as a checkpoint — so a
 * restarted indexer carries on where it stopped, and a replayed change is harmless.
 *
 *   npx ts-node --transpile-only examples/couch-indexer.ts
 *   COUCHDB_URL=http://admin:secret@127.0.0.1:5984 npx ts-node --transpile-only examples/couch-indexer.ts
 *
 * Without COUCHDB_URL it starts PouchDB Server (in memory, from the test harness) on a free port, and
 * since that database is new each time, so are the index and the checkpoint. With COUCHDB_URL both
 * persist: run it twice and the second run resumes. Delete ./data/couch-indexer.sqlite to start over.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import nano from 'nano';
import {
  ChangesFollower,
  DurableServer,
  Init,
  OnCall,
  OnCast,
  OnChange,
  OnError,
  Runtime,
  follow,
  noreply,
  ok,
  openBackend,
  reply,
  retry,
  type ChangeRow,
  type DbTarget,
  type FeedError,
  type ServerRef,
  type Tenant,
} from '../src';
import { startPouchServer } from '../test/helpers/couch/pouch-server';

// ---- the durable index ----------------------------------------------------------------------------

/** Each document's type by id; counts are derived, so handling a change twice changes nothing. */
export interface TypeIndexState {
  types: Record<string, string>;
}

export type IndexChange = { type: 'index'; id: string; docType?: string; deleted: boolean };

@DurableServer({ name: 'couch-type-index' })
export class TypeIndex {
  @Init() init() {
    return ok<TypeIndexState>({ types: {} });
  }

  @OnCast('index') index(m: IndexChange, s: TypeIndexState) {
    const types = { ...s.types };
    if (m.deleted || m.docType === undefined) delete types[m.id];
    else types[m.id] = m.docType;
    return noreply({ types });
  }

  @OnCall('counts') counts(_m: unknown, _from: unknown, s: TypeIndexState) {
    const counts: Record<string, number> = {};
    for (const t of Object.values(s.types)) counts[t] = (counts[t] ?? 0) + 1;
    return reply(counts, s);
  }
}

// ---- the follower -------------------------------------------------------------------------------

export interface IndexerArg {
  db: DbTarget;
  index: ServerRef<TypeIndexState>;
  /** Where the follower keeps its checkpoint (last handled seq and its state). */
  checkpoints: Tenant;
}

export interface IndexerState {
  handled: number;
}

@ChangesFollower({ name: 'couch-indexer' })
export class Indexer {
  private index!: ServerRef<TypeIndexState>;

  @Init() init(arg: IndexerArg) {
    this.index = arg.index;
    return follow(arg.db, { handled: 0 } as IndexerState, {
      includeDocs: true,
      heartbeat: 10_000,
      checkpoint: { tenant: arg.checkpoints },
    });
  }

  /**
   * Runs in the follower, not in a transaction: awaiting the durable cast here is fine. The
   * checkpoint is written after the batch, so a crash in between replays the change (at least
   * once) — the index is built to take that.
   */
  @OnChange() async change(row: ChangeRow, s: IndexerState) {
    if (row.id.startsWith('_design/')) return ok(s);
    const docType = typeof row.doc?.type === 'string' ? row.doc.type : undefined;
    await this.index.cast({
      type: 'index',
      id: row.id,
      docType,
      deleted: row.deleted === true,
    } satisfies IndexChange);
    return ok({ handled: s.handled + 1 });
  }

  /** Feed failures: log and try again in a few seconds (the default would wait a minute). */
  @OnError() error(err: FeedError, s: IndexerState) {
    console.log(`   [indexer] ${err.message}; retrying in 2 s`);
    return retry(s, 2_000);
  }
}

// ---- the demo -----------------------------------------------------------------------------------

const DB_NAME = 'dgen-indexer-demo';
/** Where the index and checkpoint live: ./data, or DGEN_DATA_DIR (the example test points it at a temp dir). */
const DATA = path.join(
  process.env.DGEN_DATA_DIR ?? path.resolve(__dirname, '..', 'data'),
  'couch-indexer.sqlite',
);
const line = (s = '') => console.log(s);

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const couchUrl = process.env.COUCHDB_URL || undefined; // set but empty counts as unset
  const pouch = couchUrl ? undefined : await startPouchServer();
  const serverUrl = new URL(couchUrl ?? (pouch as { url: string }).url);
  const auth = serverUrl.username
    ? { username: decodeURIComponent(serverUrl.username), password: decodeURIComponent(serverUrl.password) }
    : undefined;
  const couch = nano(serverUrl.toString().replace(/\/$/, ''));
  serverUrl.username = '';
  serverUrl.password = '';
  const dbUrl = `${serverUrl.toString().replace(/\/$/, '')}/${DB_NAME}`;
  line(
    `Following ${dbUrl}${pouch ? ' (PouchDB Server, in memory)' : ''}; index and checkpoint in ${path.relative(process.cwd(), DATA)}`,
  );

  await couch.db.create(DB_NAME).catch(() => undefined);
  const db = couch.use<{ type: string; title: string }>(DB_NAME);
  const stamp = Date.now().toString(36);
  await db.bulk({
    docs: [
      { _id: `post-${stamp}-1`, type: 'post', title: 'Hello' },
      { _id: `post-${stamp}-2`, type: 'post', title: 'Again' },
      { _id: `user-${stamp}-1`, type: 'user', title: 'Ada' },
    ],
  });

  // PouchDB Server forgets everything when it stops, so an index and checkpoint from an earlier run
  // would point past the end of its new feed: start those from scratch too.
  if (pouch) fs.rmSync(DATA, { force: true });
  const backend = await openBackend(`sqlite:${DATA}`);
  try {
    const index = await Runtime.start<TypeIndexState>(TypeIndex, null, {
      tenant: await backend.openTenant(['examples', 'couch-indexer', 'index']),
    });
    const checkpoints = await backend.openTenant(['examples', 'couch-indexer', 'follower']);
    const arg: IndexerArg = { db: auth ? { url: dbUrl, auth } : dbUrl, index, checkpoints };
    /** Waits until the index holds exactly the documents the database has. */
    const inSync = () =>
      until('the index to match the database', async () => {
        const ids = (await db.list()).rows.map((r) => r.id).filter((id) => !id.startsWith('_design/'));
        const indexed = Object.keys((await index.readState()).types);
        return ids.length === indexed.length && ids.every((id) => indexed.includes(id));
      });

    line();
    line('1. The follower catches up with the database and keeps following it');
    let indexer = await Runtime.start<IndexerState>(Indexer, arg);
    indexer.events$.subscribe((e) => {
      if (e.type === 'connected')
        line(`   [indexer] connected, since ${JSON.stringify(e.since ?? 'the start')}`);
      if (e.type === 'reconnecting')
        line(`   [indexer] reconnecting (${e.reason}) in ${Math.round(e.waitMs)} ms`);
    });
    await inSync();
    line(`   index: ${JSON.stringify(await index.call('counts'))}`);

    line();
    line('2. New changes arrive live: a comment is added, a post deleted');
    const post = await db.get(`post-${stamp}-2`);
    await db.insert({ _id: `comment-${stamp}-1`, type: 'comment', title: 'Nice' });
    await db.destroy(post._id, post._rev);
    await inSync();
    line(`   index: ${JSON.stringify(await index.call('counts'))}`);

    line();
    line('3. Stop the follower, write while it is away, start it again: it resumes at its checkpoint');
    await indexer.stop();
    await db.insert({ _id: `user-${stamp}-2`, type: 'user', title: 'Grace' });
    indexer = await Runtime.start<IndexerState>(Indexer, arg);
    indexer.events$.subscribe((e) => {
      if (e.type === 'connected')
        line(`   [indexer] connected, since ${JSON.stringify(e.since ?? 'the start')}`);
    });
    await inSync();
    line(`   index: ${JSON.stringify(await index.call('counts'))}`);
    line(
      `   the follower has handled ${(await indexer.readState()).handled} change(s) in all: its state came back with the checkpoint`,
    );

    await indexer.stop();
    await index.stop();
  } finally {
    await Runtime.stopAll();
    await backend.close();
    await pouch?.close();
  }
}

if (require.main === module)
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
