/**
 * A child process for the backend's multi-process tests and the watch benchmark. It opens the backend
 * named by argv[2] (e.g. 'sqlite:/tmp/x/db.sqlite') and the tenant ['mp'], then serves requests sent
 * over IPC: `{ id, cmd, args }` → `{ id, ok: true, value }` or `{ id, ok: false, code, message }`.
 */
import { openBackend } from '../../../src/backend/open-backend';
import { pack, unboundVersionstamp } from '../../../src/backend/keys';
import type { Backend, Tenant, Watch } from '../../../src/backend/types';

type Request = { id: number; cmd: string; args?: Record<string, unknown> };

const le = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(n);
  return b;
};
const readLe = (b: Buffer | undefined) => (b ? b.readBigInt64LE(0) : 0n);

let backend: Backend;
let tenant: Tenant;
const watches = new Map<string, Watch>();

const commands: Record<string, (args: Record<string, any>) => Promise<unknown>> = {
  /** `n` read-modify-write increments of one counter (serializability across processes). */
  async increment({ n, key = 'counter' }) {
    for (let i = 0; i < n; i++)
      await tenant.transact(async (tx) => {
        const k = pack([key]);
        tx.set(k, le(readLe(await tx.get(k)) + 1n));
      });
    return n;
  },
  /**
   * `n` transactions that each take the next sequence number (a serialization-order witness) and log
   * it under a versionstamped key.
   */
  async stamps({ n, tag }) {
    for (let i = 0; i < n; i++)
      await tenant.transact(async (tx) => {
        const seq = readLe(await tx.get(pack(['seq'])));
        tx.set(pack(['seq']), le(seq + 1n));
        tx.setVersionstampedKey(
          ['log', unboundVersionstamp()],
          Buffer.from(JSON.stringify({ tag, seq: Number(seq) })),
        );
      });
    return n;
  },
  async set({ key, value }) {
    await tenant.transact((tx) => tx.set(pack([key]), Buffer.from(String(value))));
    return process.hrtime.bigint().toString();
  },
  /** Arms a watch on `key` (resolves once it is armed). */
  async arm({ key }) {
    watches.set(key, await tenant.watch(pack([key])));
    return true;
  },
  /** Resolves when the armed watch on `key` fires, with the monotonic time (ns) it fired at. */
  async fired({ key }) {
    const changed = await watches.get(key)!.changed;
    return { changed, at: process.hrtime.bigint().toString() };
  },
  /**
   * Commits transactions back to back for ever, each writing keys a/i and b/i and adding 1 to a count,
   * and reports each one (`{ acked: i }`) only after its commit returned.
   */
  async stream() {
    void (async () => {
      for (let i = 0; ; i++) {
        await tenant.transact((tx) => {
          tx.set(pack(['a', i]), Buffer.alloc(200, i % 256));
          tx.set(pack(['b', i]), Buffer.alloc(200, i % 256));
          tx.add(pack(['count']), 1);
        });
        process.send!({ acked: i });
      }
    })();
    return true;
  },
  async close() {
    await backend.close();
    setImmediate(() => process.exit(0));
    return true;
  },
};

async function main() {
  backend = await openBackend(process.argv[2]);
  tenant = await backend.openTenant(['mp']);
  process.on('message', async (req: Request) => {
    try {
      const value = await commands[req.cmd](req.args ?? {});
      process.send!({ id: req.id, ok: true, value });
    } catch (err) {
      process.send!({ id: req.id, ok: false, code: (err as { code?: string }).code, message: String(err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
