import * as net from 'node:net';

/** A port of 127.0.0.1 that nothing listens on right now (the OS picks it; it is closed again at once). */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  const port = await new Promise<number>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port));
  });
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

/**
 * A TCP listener on one fixed port of 127.0.0.1 that can stop and start listening again on the same
 * port, as a server that goes down and comes back: what a fault proxy needs to refuse connections for a
 * while. Open connections are not its business (the proxy closes them as it chooses).
 */
export class Listener {
  private server?: net.Server;

  constructor(
    readonly port: number,
    private readonly onConnection: (socket: net.Socket) => void,
  ) {}

  /** Listens (again) on the port; does nothing if already listening. */
  async accept(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /**
   * Stops listening for good, once every connection it accepted has closed (the caller closes them):
   * nothing of it is left to keep the process alive.
   */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stops listening: new connections are refused (open ones stay). */
  async refuse(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server)
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for open connections; refusing only needs the listener gone
        setImmediate(resolve);
      });
  }
}
