import * as net from 'node:net';

/** The client's parsed options that say where to connect. */
interface Target {
  host: string[];
  port: number[];
  path?: string;
}

let next = 0;
/** The sockets corked while batches are being sent (see `writesTogether`), and how many are. */
let holding: Set<net.Socket> | undefined;
let sending = 0;

/**
 * Runs `send`, which queues statements on client connections, so that each connection's socket
 * writes them in one write. The client writes its buffer at once when it reaches 1 KB, and the rest
 * at its next setImmediate: a batch of a few KB went out in two or three writes, each a system call
 * and a wake-up of the server process (which then answered in parts). A socket written to meanwhile is
 * corked, and uncorked at a setImmediate scheduled after the client's own. The client writes a
 * statement a microtask after it is queued (after an `await`): the scope ends a microtask after
 * `send`, once those have run.
 */
export function writesTogether<T>(send: () => T): T {
  sending++;
  holding ??= new Set();
  try {
    return send();
  } finally {
    queueMicrotask(() => {
      if (--sending > 0) return;
      const corked = holding!;
      holding = undefined;
      if (corked.size > 0)
        setImmediate(() => {
          for (const socket of corked) socket.uncork();
        });
    });
  }
}

/** Corks the socket at its first write inside `writesTogether`. */
function corkInBatch(socket: net.Socket): net.Socket {
  const write = socket.write;
  socket.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>): boolean {
    if (holding && !holding.has(this)) {
      this.cork();
      holding.add(this);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as net.Socket['write'];
  return socket;
}

/**
 * A socket for the client (its `socket` option), connecting with Nagle's algorithm off. postgres 3.4.9
 * leaves it on, and writes a pipeline longer than 1 KB in several writes: each write after the first
 * then waits for the server's ACK of the one before, which comes with the server's replies to it, so
 * a commit batch of many statements took a round trip per KB. (The server sets TCP_NODELAY on its side.)
 * The client writes its startup message at once, which the socket sends when connected; connection
 * errors reach the client's handlers as with its own socket.
 */
export function connectNoDelay(options: Target): net.Socket {
  if (options.path) return corkInBatch(net.connect({ path: options.path }));
  const at = next++ % options.host.length;
  const [host, port] = [options.host[at], options.port[at] ?? options.port[0]];
  // host and port as the client's own socket has them: its connection errors name them
  return corkInBatch(Object.assign(net.connect({ host, port, noDelay: true }), { host, port }));
}

/**
 * The sockets one backend's clients opened, so that those still open once the clients have ended can
 * be destroyed: postgres 3.4.9's `end()` ends a connection's socket only if it is open, so one still
 * connecting (e.g. the LISTEN connection of a backend closed right after its first watch) connected
 * afterwards and stayed open, a session on the server, for good.
 */
export class OpenSockets {
  private readonly sockets = new Set<net.Socket>();

  /** The client's `socket` option: connectNoDelay, remembered until the socket closes. */
  readonly connect = (options: Target): net.Socket => {
    const socket = connectNoDelay(options);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return socket;
  };

  /** Destroys every socket still open (after the clients ended: any left is a leak). */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
