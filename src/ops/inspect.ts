import { decodeInt64LE } from '../backend/common/int64';
import { prefixRange } from '../backend/keys';
import type { Backend, ReadTransaction, Tenant } from '../backend/types';
import { StateStore } from '../codec/state-codec';
import { DgenError } from '../errors';
import type { Tuid } from '../returns';
import { ServerKeys } from '../runtime/server-keys';
import { decodeWire, type LockRecord } from '../runtime/wire';
import { scannable, summarizePage, summaryOf } from './page-summary';
import { listTenantPaths, readIndexRecord, scanIndexEntries, type IndexedServer } from './server-index';

/** What the inspector says about one server, read from the backend in one snapshot. */
export interface ServerSummary {
  tenant: string[];
  tuid: Tuid;
  className: string;
  /** The state version of the class that last started the server (see IndexRecord.version). */
  version: number;
  createdAt: number;
  queueLength: number;
  /** Age in ms of the message at the head of the queue (null: empty, or enqueued before ages were kept). */
  oldestAgeMs: number | null;
  lock: { owner: string; leaseUntil: number } | null;
  deadLetters: number;
  stateKeys: number;
  stateBytes: number;
  /** The versionstamp (hex) of the commit that last wrote the state. */
  stateVersion: string | null;
  /** Counters for rates: items ever pushed and popped. */
  pushed: number;
  popped: number;
}

/** The summary of `server` (an index entry) as of one snapshot read `tx` of its tenant. */
export async function summarize(
  tx: ReadTransaction,
  tenantPath: readonly string[],
  server: IndexedServer,
  now = Date.now(),
): Promise<ServerSummary> {
  const keys = new ServerKeys(server.tuid);
  const state = prefixRange(keys.state);
  const letters = keys.deadLetters;
  // Three range reads (a listing reads 100 000 servers): what sorts before the queue items ('a' the
  // attempts, 'd' the dead letters, 'k' the lock), the head item, and from the end of the items
  // through the state ('q','pop' / 'q','push' the counters, 's' the state).
  const [low, head, high] = await Promise.all([
    tx.getRange(keys.all.start, keys.queueItems.start),
    tx.getRange(keys.queueItems.start, keys.queueItems.end, { limit: 1 }),
    tx.getRange(keys.queueItems.end, state.end),
  ]);
  let deadLetters = 0;
  let lock: LockRecord | undefined;
  for (const r of low) {
    if (r.key.equals(keys.lock)) lock = decodeWire<LockRecord>(r.value);
    else if (Buffer.compare(r.key, letters.start) >= 0 && Buffer.compare(r.key, letters.end) < 0)
      deadLetters++;
  }
  let push = 0;
  let pop = 0;
  let stateKeys = 0;
  let stateBytes = 0;
  let version: Buffer | undefined;
  for (const r of high) {
    if (r.key.equals(keys.pushCounter)) push = Number(decodeInt64LE(r.value));
    else if (r.key.equals(keys.popCounter)) pop = Number(decodeInt64LE(r.value));
    else if (Buffer.compare(r.key, state.start) >= 0) {
      stateKeys++;
      stateBytes += r.key.length + r.value.length;
      version = r.value; // the version key ('v') sorts after the data ('d')
    }
  }
  return summaryOf(tenantPath, server, now, {
    head: head[0],
    lock,
    deadLetters,
    push,
    pop,
    stateKeys,
    stateBytes,
    version,
  });
}

/**
 * Every indexed server of `backend` (or of the one tenant `tenantPath`), a page at a time: each page
 * is summarised in one snapshot read (a few range reads, see page-summary.ts), and nothing but the
 * page is held.
 */
export async function* listServers(
  backend: Backend,
  tenantPath?: readonly string[],
  pageSize = 500,
): AsyncGenerator<ServerSummary[]> {
  const paths = tenantPath ? [tenantPath] : await listTenantPaths(backend);
  for (const path of paths) {
    const tenant = await backend.openTenant(path);
    for await (const page of scanIndexEntries(tenant, pageSize)) {
      const now = Date.now();
      yield await tenant.read((tx) =>
        scannable(page)
          ? summarizePage(tx, path, page, now)
          : Promise.all(page.map((e) => summarize(tx, path, e.server, now))),
      );
    }
  }
}

/** One server's summary; NOT_FOUND when it is not in the index and has no state. */
export async function describeServer(tenant: Tenant, tuid: Tuid): Promise<ServerSummary> {
  return tenant.read(async (tx) => {
    const rec = await readIndexRecord(tx, tuid);
    const keys = new ServerKeys(tuid);
    if (!rec && (await new StateStore(keys.state).readVersion(tx)) === undefined)
      throw notFound(tenant, tuid);
    return summarize(tx, tenant.path, {
      tuid,
      className: rec?.className ?? '?',
      version: rec?.version ?? 0,
      createdAt: rec?.createdAt ?? 0,
    });
  });
}

/** The decoded state of a server (the default CBOR serializer) and its version. */
export async function readServerState(
  tenant: Tenant,
  tuid: Tuid,
): Promise<{ state: unknown; version: string }> {
  const stored = await tenant.read((tx) => new StateStore(new ServerKeys(tuid).state).read(tx));
  if (!stored) throw notFound(tenant, tuid);
  return { state: stored.state, version: stored.version.toString('hex') };
}

const notFound = (tenant: Tenant, tuid: Tuid) =>
  new DgenError(
    'NOT_FOUND',
    `no server ${JSON.stringify(tuid)} in tenant ${tenant.path.join('/')} (list them with: dgen-ts servers SPEC --tenant ${tenant.path.join('/')})`,
  );
