import { pack, prefixRange, unpack } from '../backend/keys';
import type { Backend, ReadTransaction, Tenant, Transaction } from '../backend/types';
import type { Tuid } from '../returns';
import { decodeWire, encodeWire } from '../runtime/wire';

/**
 * The server index: which durable servers exist, so they can be listed without knowing their tuids.
 *
 * Design (a transaction spans one tenant only, so there are two levels):
 * - In each server's own tenant, under `('dgen_index', ...tuid)`, an IndexRecord, written in the
 *   transaction that initialises the server's state (or, for a server stored before the index existed,
 *   the next time it starts) and cleared in the transaction of `kill`. So within a tenant the index
 *   and the servers never disagree. (A tuid whose first element is 'dgen_index' is reserved.)
 * - A backend-wide registry of tenant paths in the reserved tenant ['__dgen', 'tenants'], one key per
 *   tenant path, written (once per process and tenant, only if missing) BEFORE the tenant's first
 *   server is indexed. It may name a tenant that has no server any more (after a crash between the two
 *   transactions, or a kill), never miss one that has: listing every tenant reads the registry, then
 *   each tenant's index.
 */
export interface IndexRecord {
  className: string;
  /**
   * The state version of the class that last started the server (`@DurableServer({ version })`, 1 by
   * default; 0 in records written before versions existed, until the server next starts).
   */
  version: number;
  /** ms since the epoch. */
  createdAt: number;
}

export const REGISTRY_TENANT: readonly string[] = Object.freeze(['__dgen', 'tenants']);
const INDEX = 'dgen_index';

export const indexKey = (tuid: Tuid): Buffer => pack([INDEX, ...tuid]);
export const indexRange = (): { start: Buffer; end: Buffer } => prefixRange([INDEX]);

/**
 * Called in the transaction of a server's `init` (which fails, writing nothing, if the stored state is
 * newer than `version`): records the server, or its new version, unless recorded as it is.
 */
export async function recordServer(
  tx: Transaction,
  tuid: Tuid,
  className: string,
  version: number,
): Promise<void> {
  const key = indexKey(tuid);
  const raw = await tx.get(key);
  const known = raw && decodeWire<IndexRecord>(raw);
  if (known && known.version === version) return;
  const createdAt = known ? known.createdAt : Date.now();
  tx.set(key, encodeWire({ className, version, createdAt } satisfies IndexRecord));
}

/** Called in the transaction of `kill`. */
export function forgetServer(tx: Transaction, tuid: Tuid): void {
  tx.clear(indexKey(tuid));
}

const registered = new WeakMap<Backend, { registry?: Promise<Tenant>; paths: Set<string> }>();

/** Records `tenant`'s path in the backend's tenant registry (once per process; a read when already there). */
export async function registerTenant(tenant: Tenant): Promise<void> {
  if (tenant.path[0] === REGISTRY_TENANT[0]) return;
  let known = registered.get(tenant.backend);
  if (!known) registered.set(tenant.backend, (known = { paths: new Set() }));
  const id = JSON.stringify(tenant.path);
  if (known.paths.has(id)) return;
  const registry = await (known.registry ??= tenant.backend.openTenant(REGISTRY_TENANT));
  const key = pack([...tenant.path]);
  if ((await registry.read((tx) => tx.get(key))) === undefined)
    await registry.transact((tx) => tx.set(key, encodeWire({ registeredAt: Date.now() })));
  known.paths.add(id);
}

/** Every registered tenant path, in key order. */
export async function listTenantPaths(backend: Backend): Promise<string[][]> {
  const registry = await backend.openTenant(REGISTRY_TENANT);
  const out: string[][] = [];
  for await (const rows of pages(registry, prefixRange([]), 1000))
    for (const r of rows) out.push(unpack(r.key) as string[]);
  return out;
}

export interface IndexedServer extends IndexRecord {
  tuid: Tuid;
}

/** The servers indexed in `tenant`, a page of at most `pageSize` at a time (memory stays bounded). */
export async function* scanIndex(tenant: Tenant, pageSize = 500): AsyncGenerator<IndexedServer[]> {
  for await (const page of scanIndexEntries(tenant, pageSize)) yield page.map((e) => e.server);
}

const INDEX_PREFIX_LENGTH = pack([INDEX]).length;

/**
 * As scanIndex, with each server's packed tuid: the tuple encoding is concatenative, so the index key
 * is pack(['dgen_index']) + pack(tuid), and its tail is the prefix of every key of the server.
 */
export async function* scanIndexEntries(
  tenant: Tenant,
  pageSize = 500,
): AsyncGenerator<Array<{ server: IndexedServer; prefix: Buffer }>> {
  for await (const rows of pages(tenant, indexRange(), pageSize))
    yield rows.map((r) => {
      const prefix = r.key.subarray(INDEX_PREFIX_LENGTH);
      const { className, version, createdAt } = decodeWire<IndexRecord>(r.value);
      return { server: { className, version, createdAt, tuid: unpack(prefix) as Tuid }, prefix };
    });
}

export async function readIndexRecord(tx: ReadTransaction, tuid: Tuid): Promise<IndexRecord | undefined> {
  const raw = await tx.get(indexKey(tuid));
  return raw && decodeWire<IndexRecord>(raw);
}

/** A range read in pages, each in its own snapshot read (no long-running read). */
async function* pages(tenant: Tenant, range: { start: Buffer; end: Buffer }, size: number) {
  let start = range.start;
  for (;;) {
    const rows = await tenant.read((tx) => tx.getRange(start, range.end, { limit: size }));
    if (rows.length > 0) yield rows;
    if (rows.length < size) return;
    start = Buffer.concat([rows[rows.length - 1].key, Buffer.from([0])]);
  }
}
