import * as net from 'node:net';
import { freePort, Listener } from './listener';

interface Link {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  stalled: boolean;
  closed: boolean;
  /** Bytes still to forward upstream before the link stalls (see `stallUpAfter`). */
  upBudget?: number;
  /** Bytes the client sent past that budget, held until `unstall()`. */
  held?: Buffer;
}

/**
 * A byte-for-byte TCP proxy of our own between one app process and a server (PostgreSQL here), for
 * faults on the wire between them: `cut()` closes every connection (FIN), `reset()` aborts them (RST),
 * `stall()` keeps them open but moves no byte either way (nothing is dropped: the bytes wait in the
 * kernel's buffers as on a congested link, and flow again on `unstall()`), `refuse()` stops listening.
 * It knows nothing of the protocol it carries (see ../couch/fault-proxy.ts for the HTTP-aware one).
 */
export class TcpFaultProxy {
  /** Connections accepted so far. */
  accepted = 0;
  /** Bytes forwarded, each way. */
  bytesUp = 0;
  bytesDown = 0;
  private readonly links = new Set<Link>();
  private readonly listener: Listener;
  private stallNew = false;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    readonly port: number,
  ) {
    this.listener = new Listener(port, (socket) => this.onConnection(socket));
  }

  /** Listens on a free port of 127.0.0.1 and forwards to `targetHost:targetPort`. */
  static async start(targetHost: string, targetPort: number): Promise<TcpFaultProxy> {
    const port = await freePort();
    const proxy = new TcpFaultProxy(targetHost, targetPort, port);
    await proxy.accept();
    return proxy;
  }

  /** Open connections right now. */
  get open(): number {
    return this.links.size;
  }

  /** The local ports of the open connections to the target (the server sees them as client ports). */
  get upstreamPorts(): number[] {
    return [...this.links].map((l) => l.upstream.localPort).filter((p): p is number => p !== undefined);
  }

  get isStalled(): boolean {
    return this.stallNew;
  }

  /** Closes every open connection on both sides (FIN); returns how many. */
  cut(): number {
    const n = this.links.size;
    for (const link of [...this.links]) this.drop(link, 'cut');
    return n;
  }

  /** Aborts every open connection on both sides (RST), as a router that lost the flow; returns how many. */
  reset(): number {
    const n = this.links.size;
    for (const link of [...this.links]) this.drop(link, 'reset');
    return n;
  }

  /** Every connection, open or new, stops forwarding both ways until `unstall()`; returns how many are open. */
  stall(): number {
    this.stallNew = true;
    for (const link of this.links) {
      link.stalled = true;
      link.client.pause();
      link.upstream.pause();
    }
    return this.links.size;
  }

  /**
   * Every open connection forwards `bytes` more bytes from the client, then stalls both ways (as
   * `stall()`) with the rest held: a link that dies in the middle of what the client wrote at once.
   */
  stallUpAfter(bytes: number): void {
    for (const link of this.links) link.upBudget = bytes;
  }

  unstall(): void {
    this.stallNew = false;
    for (const link of this.links) {
      link.upBudget = undefined;
      if (link.held) link.upstream.write(link.held);
      link.held = undefined;
      link.stalled = false;
      link.client.resume();
      link.upstream.resume();
    }
  }

  /** Stops listening: new connections are refused (open ones stay). */
  refuse(): Promise<void> {
    return this.listener.refuse();
  }

  /** Listens (again) on the same port. */
  accept(): Promise<void> {
    return this.listener.accept();
  }

  /** Closes every connection and stops listening; resolves once all of them are closed. */
  async close(): Promise<void> {
    this.stallNew = false;
    const sockets = [...this.links].flatMap((l) => [l.client, l.upstream]);
    this.cut();
    await Promise.all([
      this.listener.close(),
      ...sockets.map((s) => (s.closed ? undefined : new Promise((r) => s.once('close', r)))),
    ]);
  }

  private onConnection(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.targetPort, this.targetHost);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const link: Link = { client, upstream, stalled: this.stallNew, closed: false };
    this.links.add(link);
    if (link.stalled) {
      client.pause();
      upstream.pause();
    }
    this.pipe(link, client, upstream, (n) => (this.bytesUp += n), true);
    this.pipe(link, upstream, client, (n) => (this.bytesDown += n), false);
  }

  /** Forwards `from` to `to` with backpressure; an end or error on either side ends the link. */
  private pipe(link: Link, from: net.Socket, to: net.Socket, count: (n: number) => void, up: boolean): void {
    from.on('data', (chunk: Buffer) => {
      if (link.closed) return;
      let data = chunk;
      if (up && link.upBudget !== undefined) {
        data = chunk.subarray(0, link.upBudget);
        link.upBudget -= data.length;
        if (link.upBudget === 0) {
          link.upBudget = undefined;
          link.held = chunk.subarray(data.length);
          link.stalled = true;
          link.client.pause();
          link.upstream.pause();
        }
        if (data.length === 0) return;
      }
      count(data.length);
      if (!to.write(data)) {
        from.pause();
        to.once('drain', () => {
          if (!link.stalled && !link.closed) from.resume();
        });
      }
    });
    from.on('end', () => {
      if (!link.closed) to.end();
    });
    from.on('error', () => this.drop(link, 'reset'));
    from.on('close', () => this.drop(link, 'graceful'));
  }

  /** `graceful`: one side closed, the other gets what is still buffered, then FIN. */
  private drop(link: Link, how: 'graceful' | 'cut' | 'reset'): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    for (const socket of [link.client, link.upstream]) {
      if (socket.destroyed) continue;
      if (how === 'graceful') socket.destroySoon();
      else if (how === 'reset' && socket.readyState !== 'opening') socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}
