import * as net from 'node:net';

/** The client's parsed options that say where to connect. */
interface Target {
  host: string[];
  port: number[];
  path?: string;
}

let next = 0;

/**
 * A socket for the client (its `socket` option), connecting with Nagle's algorithm off. postgres 3.4.9
 * leaves it on, and writes a pipeline longer than 1 KB in several writes: each write after the first
 * then waits for the server's ACK of the one before, which comes with the server's replies to it, so
 * a commit batch of many statements took a round trip per KB. (The server sets TCP_NODELAY on its side.)
 * The client writes its startup message at once, which the socket sends when connected; connection
 * errors reach the client's handlers as with its own socket.
 */
export function connectNoDelay(options: Target): net.Socket {
  if (options.path) return net.connect({ path: options.path });
  const at = next++ % options.host.length;
  const [host, port] = [options.host[at], options.port[at] ?? options.port[0]];
  // host and port as the client's own socket has them: its connection errors name them
  return Object.assign(net.connect({ host, port, noDelay: true }), { host, port });
}
