/**
 * An in-memory stand-in for the parts of the `foundationdb` package FdbBackend uses, with
 * FoundationDB's semantics where they matter to it: optimistic transactions at a read version
 * (multi-version snapshots, read/write conflict ranges, `not_committed` = 1020 on conflict and
 * `rawOnError` to retry), read-your-writes including atomic adds, versionstamped keys and values with
 * their 4-byte offset suffix, getVersionstamp, watches that start at commit and — to exercise
 * FdbBackend's re-checking — fire on any write to their key, even of the same value, and a directory
 * layer handing out short prefixes.
 *
 * It lets the conformance suite run FdbBackend's own logic where no FoundationDB cluster exists; it is
 * no substitute for running the suite with FDB_CLUSTER_FILE against a real one.
 */

import { pack, strinc } from '../../../src/backend/keys';

export class FDBError extends Error {
  constructor(
    description: string,
    readonly code: number,
  ) {
    super(description);
  }
}

export const MutationType = { Add: 2, SetVersionstampedKey: 14, SetVersionstampedValue: 15 } as const;

type Data = ReadonlyMap<string, Buffer>;
type Op =
  | { t: 'set'; key: Buffer; value: Buffer }
  | { t: 'clear'; key: Buffer }
  | { t: 'clearRange'; start: Buffer; end: Buffer }
  | { t: 'add'; key: Buffer; param: Buffer }
  | { t: 'vsKey'; key: Buffer; value: Buffer }
  | { t: 'vsValue'; key: Buffer; value: Buffer };
type Range = readonly [Buffer, Buffer];

const hex = (b: Buffer) => b.toString('hex');
const unhex = (h: string) => Buffer.from(h, 'hex');
const next = (key: Buffer) => Buffer.concat([key, Buffer.from([0])]);
const inRange = (key: Buffer, [s, e]: Range) => Buffer.compare(key, s) >= 0 && Buffer.compare(key, e) < 0;
const overlaps = ([s1, e1]: Range, [s2, e2]: Range) =>
  Buffer.compare(s1, e2) < 0 && Buffer.compare(s2, e1) < 0;

function addLE(old: Buffer | undefined, param: Buffer): Buffer {
  const a = Buffer.alloc(8);
  old?.copy(a, 0, 0, Math.min(8, old.length));
  const out = Buffer.alloc(8);
  out.writeBigInt64LE(BigInt.asIntN(64, a.readBigInt64LE(0) + param.readBigInt64LE(0)));
  return out;
}

function apply(data: Map<string, Buffer>, ops: readonly Op[], stamp: Buffer | undefined): void {
  for (const op of ops) {
    switch (op.t) {
      case 'set':
        data.set(hex(op.key), op.value);
        break;
      case 'clear':
        data.delete(hex(op.key));
        break;
      case 'clearRange':
        for (const k of [...data.keys()]) if (inRange(unhex(k), [op.start, op.end])) data.delete(k);
        break;
      case 'add':
        data.set(hex(op.key), addLE(data.get(hex(op.key)), op.param));
        break;
      case 'vsKey': {
        if (!stamp) break; // unreadable until commit, as in FoundationDB
        const key = Buffer.from(op.key.subarray(0, -4));
        stamp.copy(key, op.key.readUInt32LE(op.key.length - 4));
        data.set(hex(key), op.value);
        break;
      }
      case 'vsValue': {
        if (!stamp) break;
        const value = Buffer.from(op.value.subarray(0, -4));
        stamp.copy(value, op.value.readUInt32LE(op.value.length - 4));
        data.set(hex(op.key), value);
        break;
      }
    }
  }
}

interface Watcher {
  key: string;
  resolve: (fired: boolean) => void;
}

class Cluster {
  version = 1n;
  readonly snapshots = new Map<bigint, Data>([[1n, new Map()]]);
  readonly log: Array<{ version: bigint; writes: Range[] }> = [];
  readonly watchers = new Set<Watcher>();
  readonly directories = new Map<string, Buffer>();
  nextPrefix = 1;
  /**
   * Test knobs (off by default). `commitDelayMs` keeps commits in flight that long. `readWindowMs`
   * fails reads with transaction_too_old (1007) once a transaction's read version is older than
   * that, as FoundationDB does after about 5 s (its MVCC window).
   */
  commitDelayMs = 0;
  readWindowMs = Infinity;

  data(version: bigint): Data {
    const d = this.snapshots.get(version);
    if (!d) throw new FDBError('transaction_too_old', 1007);
    return d;
  }

  commit(
    readVersion: bigint,
    reads: Range[],
    writes: Range[],
    ops: Op[],
  ): { version: bigint; stamp: Buffer } {
    for (const c of this.log)
      if (c.version > readVersion && c.writes.some((w) => reads.some((r) => overlaps(w, r))))
        throw new FDBError('not_committed', 1020);
    const version = this.version + 1n;
    const stamp = Buffer.alloc(10);
    stamp.writeBigUInt64BE(version * 1000n);
    const data = new Map(this.data(this.version));
    apply(data, ops, stamp);
    this.version = version;
    this.snapshots.set(version, data);
    this.log.push({ version, writes });
    if (this.snapshots.size > 500) this.snapshots.delete([...this.snapshots.keys()][0]);
    if (this.log.length > 500) this.log.shift();
    const touched = ops.map((op) => (op.t === 'clearRange' ? ([op.start, op.end] as Range) : null));
    for (const w of [...this.watchers]) {
      const key = unhex(w.key);
      const hit =
        ops.some((op) => 'key' in op && op.t !== 'vsKey' && hex(op.key) === w.key) ||
        touched.some((r) => r && inRange(key, r)) ||
        [...data.keys()].some((k) => k === w.key && !this.data(version - 1n).has(k));
      if (hit) {
        this.watchers.delete(w);
        setTimeout(() => w.resolve(true), 1);
      }
    }
    return { version, stamp };
  }
}

class FakeTransaction {
  isSnapshot = false;
  private readVersion!: bigint;
  private reads: Range[] = [];
  private writes: Range[] = [];
  private ops: Op[] = [];
  private pendingWatches: Watcher[] = [];
  private stampWaiters: Array<{ resolve: (b: Buffer) => void; reject: (e: unknown) => void }> = [];
  private cancelled = false;
  private readVersionAt = 0;
  private deferredError: FDBError | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly root?: FakeTransaction,
  ) {
    if (!root) this.reset();
  }

  private get tx(): FakeTransaction {
    return this.root ?? this;
  }

  snapshot(): FakeTransaction {
    const view = new FakeTransaction(this.cluster, this.tx);
    view.isSnapshot = true;
    return view;
  }

  private view(): Map<string, Buffer> {
    const tx = this.tx;
    if (tx.cancelled) throw new FDBError('transaction_cancelled', 1025);
    if (performance.now() - tx.readVersionAt > this.cluster.readWindowMs)
      throw new FDBError('transaction_too_old', 1007);
    const data = new Map(this.cluster.data(tx.readVersion));
    apply(data, tx.ops, undefined);
    return data;
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    await Promise.resolve();
    if (!this.isSnapshot) this.tx.reads.push([key, next(key)]);
    return this.view().get(hex(key));
  }

  async getRangeAll(start: Buffer, end: Buffer, opts: { limit?: number; reverse?: boolean } = {}) {
    await Promise.resolve();
    if (!this.isSnapshot) this.tx.reads.push([start, end]);
    const rows = [...this.view().entries()]
      .map(([k, v]) => [unhex(k), v] as [Buffer, Buffer])
      .filter(([k]) => inRange(k, [start, end]))
      .sort((a, b) => Buffer.compare(a[0], b[0]));
    if (opts.reverse) rows.reverse();
    return opts.limit ? rows.slice(0, opts.limit) : rows;
  }

  set(key: Buffer, value: Buffer): void {
    this.write({ t: 'set', key: Buffer.from(key), value: Buffer.from(value) }, [key, next(key)]);
  }

  clear(key: Buffer): void {
    this.write({ t: 'clear', key: Buffer.from(key) }, [key, next(key)]);
  }

  clearRange(start: Buffer, end: Buffer): void {
    this.write({ t: 'clearRange', start: Buffer.from(start), end: Buffer.from(end) }, [start, end]);
  }

  atomicOpNative(op: number, key: Buffer, param: Buffer): void {
    if (op === MutationType.Add) this.write({ t: 'add', key: Buffer.from(key), param }, [key, next(key)]);
    else if (op === MutationType.SetVersionstampedKey)
      this.write({ t: 'vsKey', key: Buffer.from(key), value: param });
    else if (op === MutationType.SetVersionstampedValue)
      this.write({ t: 'vsValue', key: Buffer.from(key), value: param }, [key, next(key)]);
    else throw new Error(`fake fdb: mutation ${op} not simulated`);
  }

  addWriteConflictKey(key: Buffer): void {
    this.tx.writes.push([key, next(key)]);
  }

  getVersionstamp(): { promise: Promise<Buffer> } {
    const promise = new Promise<Buffer>((resolve, reject) => this.tx.stampWaiters.push({ resolve, reject }));
    promise.catch(() => undefined);
    return { promise };
  }

  watch(key: Buffer): { promise: Promise<boolean>; cancel: () => void } {
    let watcher!: Watcher;
    const promise = new Promise<boolean>((resolve) => (watcher = { key: hex(key), resolve }));
    this.tx.pendingWatches.push(watcher);
    return {
      promise,
      cancel: () => {
        this.cluster.watchers.delete(watcher);
        watcher.resolve(false);
      },
    };
  }

  async rawCommit(): Promise<void> {
    await Promise.resolve();
    const tx = this.tx;
    if (tx.cancelled) throw new FDBError('transaction_cancelled', 1025);
    if (tx.deferredError) throw tx.deferredError;
    if (tx.writes.length === 0 && tx.ops.length === 0) {
      for (const w of tx.pendingWatches) tx.cluster.watchers.add(w);
      tx.pendingWatches = [];
      for (const s of tx.stampWaiters) s.reject(new FDBError('no_commit_version', 2021));
      return;
    }
    if (tx.cluster.commitDelayMs > 0) {
      // In flight. A cancel from here on does not stop the commit: FoundationDB's docs warn that
      // after commit is called "the commit may or may not occur", even if it then reports
      // transaction_cancelled (api-common.rst.inc, transaction-commit-cancel-warning). Simulate the
      // case that bites: it commits, and the caller hears 1025.
      const { reads, writes, ops, readVersion } = tx;
      const waiters = tx.stampWaiters;
      await new Promise((r) => setTimeout(r, tx.cluster.commitDelayMs));
      const { stamp } = tx.cluster.commit(readVersion, reads, writes, ops);
      for (const s of waiters) s.resolve(stamp);
      if (tx.cancelled) throw new FDBError('transaction_cancelled', 1025);
    } else {
      const { stamp } = tx.cluster.commit(tx.readVersion, tx.reads, tx.writes, tx.ops);
      for (const s of tx.stampWaiters) s.resolve(stamp);
    }
    for (const w of tx.pendingWatches) tx.cluster.watchers.add(w);
    tx.pendingWatches = [];
    tx.stampWaiters = [];
  }

  async rawOnError(code: number): Promise<void> {
    if (code !== 1020 && code !== 1007) throw new FDBError(`error ${code}`, code);
    this.reset();
    await new Promise((r) => setTimeout(r, Math.random() * 3));
  }

  rawReset(): void {
    this.reset();
  }

  rawCancel(): void {
    this.tx.cancelled = true;
    this.tx.drop(new FDBError('transaction_cancelled', 1025));
  }

  private write(op: Op, conflict?: Range): void {
    const tx = this.tx;
    if (tx.cancelled) throw new FDBError('transaction_cancelled', 1025);
    // FoundationDB limits the whole key to 10,000 bytes (a versionstamped key's 4-byte offset aside);
    // the client defers the key_too_large of a write to commit. Clears of longer keys are ignored.
    const keyBytes = 'key' in op ? op.key.length - (op.t === 'vsKey' ? 4 : 0) : 0;
    if (op.t !== 'clear' && keyBytes > 10_000) {
      tx.deferredError ??= new FDBError('key_too_large', 2102);
      return;
    }
    tx.ops.push(op);
    if (conflict) tx.writes.push(conflict);
  }

  private drop(reason: unknown): void {
    for (const w of this.pendingWatches) w.resolve(false);
    for (const s of this.stampWaiters) s.reject(reason);
    this.pendingWatches = [];
    this.stampWaiters = [];
  }

  private reset(): void {
    this.drop(new FDBError('transaction_cancelled', 1025));
    this.readVersion = this.cluster.version;
    this.readVersionAt = performance.now();
    this.reads = [];
    this.writes = [];
    this.ops = [];
    this.deferredError = undefined;
    this.cancelled = false;
  }
}

class FakeDatabase {
  private closed = false;
  constructor(readonly cluster: Cluster) {}

  rawCreateTransaction(): FakeTransaction {
    // As the package's native database.cpp: "Cannot create transaction after db closed".
    if (this.closed) throw new Error('Cannot create transaction after db closed');
    return new FakeTransaction(this.cluster);
  }

  async doTn<T>(body: (tn: FakeTransaction) => Promise<T>): Promise<T> {
    const tn = this.rawCreateTransaction();
    for (;;) {
      try {
        const result = await body(tn);
        await tn.rawCommit();
        return result;
      } catch (err) {
        if (!(err instanceof FDBError)) throw err;
        await tn.rawOnError(err.code);
      }
    }
  }

  close(): void {
    this.closed = true;
  }
}

let cluster = new Cluster();

/** A fresh, empty simulated cluster (between test files). */
export function resetCluster(): void {
  cluster = new Cluster();
}

/** The simulated cluster, for tests that turn its knobs. */
export const currentCluster = (): Cluster => cluster;

let apiVersion: number | undefined;

/** As the package's apiVersion.js `set`: once chosen, another version throws. */
export function setAPIVersion(version: number): void {
  if (apiVersion !== undefined && apiVersion !== version)
    throw Error('foundationdb already initialized with API version ' + apiVersion);
  apiVersion = version;
}

/** Forgets the chosen API version (between tests of its selection). */
export function resetAPIVersion(): void {
  apiVersion = undefined;
}

export function open(_clusterFile?: string): FakeDatabase {
  return new FakeDatabase(cluster);
}

const pathKey = (path: string[]) => JSON.stringify(path);

export const directory = {
  async createOrOpen(db: FakeDatabase, path: string[]) {
    const c = db.cluster;
    for (let i = 1; i <= path.length; i++) {
      const k = pathKey(path.slice(0, i));
      // Short prefixes, as the high-contention allocator hands out (never a prefix of another).
      if (!c.directories.has(k)) c.directories.set(k, pack([c.nextPrefix++]));
    }
    return { content: { prefix: c.directories.get(pathKey(path))! } };
  },
  async removeIfExists(db: FakeDatabase, path: string[]) {
    const c = db.cluster;
    const victims = [...c.directories.keys()].filter((k) => {
      const p = JSON.parse(k) as string[];
      return p.length >= path.length && path.every((s, i) => p[i] === s);
    });
    if (victims.length === 0) return false;
    await db.doTn(async (tn) => {
      for (const v of victims) {
        const prefix = c.directories.get(v)!;
        tn.clearRange(prefix, strinc(prefix));
      }
    });
    for (const v of victims) c.directories.delete(v);
    return true;
  },
};
