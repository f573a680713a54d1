import * as net from 'node:net';

type Generic = (this: net.Socket, writev: boolean, data: unknown, ...rest: unknown[]) => unknown;
const proto = net.Socket.prototype as unknown as { _writeGeneric: Generic };

/**
 * What this process sends to the server at `port` while `fn` runs, counted where a socket hands data
 * to the system: `writes` (write or writev system calls) and `statements` (Bind and Query messages).
 */
export async function countSocketWrites(
  port: number,
  fn: () => Promise<unknown>,
): Promise<{ writes: number; statements: number }> {
  const original = proto._writeGeneric;
  const counts = { writes: 0, statements: 0 };
  proto._writeGeneric = function (this: net.Socket, writev, data, ...rest) {
    if (this.remotePort === port) {
      counts.writes++;
      const chunks = writev ? (data as Array<{ chunk: Buffer }>).map((d) => d.chunk) : [data as Buffer];
      for (const c of chunks)
        for (let i = 0; i + 5 <= c.length; i += 1 + c.readInt32BE(i + 1))
          if (c[i] === 0x42 || c[i] === 0x51) counts.statements++;
    }
    return original.call(this, writev, data, ...rest);
  };
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 20)); // writes left for the end of the turn (a ROLLBACK)
  } finally {
    proto._writeGeneric = original;
  }
  return counts;
}

/** The port of a `postgres://` URL. */
export const portOf = (url: string): number => Number(new URL(url).port);
