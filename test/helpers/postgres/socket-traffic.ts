import * as net from 'node:net';

type Generic = (this: net.Socket, writev: boolean, data: unknown, ...rest: unknown[]) => unknown;
const proto = net.Socket.prototype as unknown as { _writeGeneric: Generic };

/**
 * Runs `fn`, handing `onWrite` every write this process's sockets make meanwhile, where a socket hands
 * data to the system: one call per write or writev system call (a corked socket's writes go out
 * together), with the socket and its chunks.
 */
export async function duringSocketWrites(
  onWrite: (socket: net.Socket, chunks: Buffer[]) => void,
  fn: () => Promise<unknown>,
): Promise<void> {
  const original = proto._writeGeneric;
  proto._writeGeneric = function (this: net.Socket, writev, data, ...rest) {
    const chunks = writev ? (data as Array<{ chunk: unknown }>).map((d) => d.chunk) : [data];
    onWrite(
      this,
      chunks.filter((c): c is Buffer => Buffer.isBuffer(c)),
    );
    return original.call(this, writev, data, ...rest);
  };
  try {
    await fn();
  } finally {
    proto._writeGeneric = original;
  }
}

/** Runs `fn`, handing `onRead` every chunk this process's sockets receive meanwhile. */
export async function duringSocketReads(
  onRead: (socket: net.Socket, chunk: Buffer) => void,
  fn: () => Promise<unknown>,
): Promise<void> {
  const emit = net.Socket.prototype.emit;
  net.Socket.prototype.emit = function (this: net.Socket, ev: string | symbol, ...args: unknown[]) {
    if (ev === 'data' && Buffer.isBuffer(args[0])) onRead(this, args[0]);
    return (emit as (...a: unknown[]) => boolean).call(this, ev, ...args);
  } as typeof emit;
  try {
    await fn();
  } finally {
    net.Socket.prototype.emit = emit;
  }
}

/**
 * The PostgreSQL protocol messages a chunk starts with, either way (after the startup message): each
 * one's type byte and body (after its length; cut short if the chunk ends first).
 */
export function* protocolMessages(chunk: Buffer): Generator<{ type: number; body: Buffer }> {
  for (let i = 0; i + 5 <= chunk.length; i += 1 + chunk.readInt32BE(i + 1))
    yield {
      type: chunk[i],
      body: chunk.subarray(i + 5, Math.min(chunk.length, i + 1 + chunk.readInt32BE(i + 1))),
    };
}

/**
 * What this process sends to the server at `port` while `fn` runs, counted where a socket hands data
 * to the system: `writes` (write or writev system calls) and `statements` (Bind and Query messages).
 */
export async function countSocketWrites(
  port: number,
  fn: () => Promise<unknown>,
): Promise<{ writes: number; statements: number }> {
  const counts = { writes: 0, statements: 0 };
  await duringSocketWrites(
    (socket, chunks) => {
      if (socket.remotePort !== port) return;
      counts.writes++;
      for (const c of chunks)
        for (const m of protocolMessages(c)) if (m.type === 0x42 || m.type === 0x51) counts.statements++;
    },
    async () => {
      await fn();
      await new Promise((r) => setTimeout(r, 20)); // writes left for the end of the turn (a ROLLBACK)
    },
  );
  return counts;
}

/** The port of a `postgres://` URL. */
export const portOf = (url: string): number => Number(new URL(url).port);
