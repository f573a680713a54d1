import * as net from 'node:net';
import { freePort, Listener } from '../net/listener';

/** One HTTP request as the proxy saw it on its way to the server. */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query, e.g. `/db/_changes?feed=continuous&…` */
  readonly target: string;
  readonly url: URL;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A canned answer the proxy gives instead of forwarding a request. */
export interface CannedAnswer {
  readonly status: number;
  /** Extra headers; `Content-Type: application/json` is the default. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Body pieces, written in order (chunked encoding), `{ delayMs }` waits between them. */
  readonly chunks?: ReadonlyArray<string | { readonly delayMs: number }>;
  /** End the response after the chunks (default true); false keeps the connection open and silent. */
  readonly end?: boolean;
  /** Close the connection without answering at all (status and body are ignored). */
  readonly hangUp?: boolean;
}

interface Link {
  client: net.Socket;
  upstream?: net.Socket;
  stalled: boolean;
  /** Bytes from the client not yet parsed into a whole request. */
  pending: Buffer;
  closed: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A TCP proxy of our own between the follower and the server, for fault injection:
 * `cutAll()` closes every connection, `stall()` keeps connections open but forwards nothing,
 * `refuse()`/`accept()` stop and resume listening (connections are refused), `answer(...)` answers
 * the next `_changes` requests itself with a chosen status or a scripted body, `fragment(n)` splits what the
 * server sends into pieces of at most n bytes (rows split across network chunks).
 * It records every request (method, target, headers, body) and counts bytes sent to clients.
 * It forwards with backpressure: a client that stops reading stops the server's socket too.
 */
export class FaultProxy {
  readonly requests: RecordedRequest[] = [];
  /** Bytes written to clients (the follower side). */
  bytesToClient = 0;
  /** Connections accepted. */
  accepted = 0;
  private readonly links = new Set<Link>();
  private readonly answers: CannedAnswer[] = [];
  private readonly listener: Listener;
  private fragmentBytes = 0;
  private stallNew = false;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    readonly port: number,
  ) {
    this.listener = new Listener(port, (socket) => this.onConnection(socket));
  }

  static async start(targetHost: string, targetPort: number): Promise<FaultProxy> {
    const port = await freePort();
    const proxy = new FaultProxy(targetHost, targetPort, port);
    await proxy.accept();
    return proxy;
  }

  /** The proxy's base URL, `http://127.0.0.1:PORT`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Open connections right now. */
  get open(): number {
    return this.links.size;
  }

  /** Requests whose path ends with `/_changes`. */
  get changesRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.url.pathname.endsWith('/_changes'));
  }

  /** Closes every open connection (both sides); returns how many. */
  cutAll(): number {
    const n = this.links.size;
    for (const link of [...this.links]) this.drop(link);
    return n;
  }

  /** Every open connection stops forwarding in both directions but stays open. With `newOnes`, new connections stall too until `unstall()`. */
  stall(options: { newOnes?: boolean } = {}): number {
    for (const link of this.links) this.stallLink(link);
    this.stallNew = options.newOnes === true;
    return this.links.size;
  }

  unstall(): void {
    this.stallNew = false;
  }

  /** Stops listening: new connections are refused (existing ones stay). */
  refuse(): Promise<void> {
    return this.listener.refuse();
  }

  /** Listens (again) on the same port. */
  accept(): Promise<void> {
    return this.listener.accept();
  }

  /** Answers the next `times` `_changes` requests itself (instead of forwarding them). */
  answer(answer: CannedAnswer, times = 1): void {
    for (let i = 0; i < times; i++) this.answers.push(answer);
  }

  /** Answers the next `times` `_changes` requests with `status` and a CouchDB-style error body. */
  answerStatus(status: number, times = 1): void {
    this.answer(
      {
        status,
        chunks: [JSON.stringify({ error: `status_${status}`, reason: 'injected by the fault proxy' })],
      },
      times,
    );
  }

  /** The next `times` `_changes` requests get their connection closed without any answer. */
  hangUp(times = 1): void {
    this.answer({ status: 0, hangUp: true }, times);
  }

  /** Splits what the server sends into pieces of at most `bytes` (0: off). */
  fragment(bytes: number): void {
    this.fragmentBytes = bytes;
  }

  async close(): Promise<void> {
    this.answers.length = 0;
    this.cutAll();
    await this.refuse();
  }

  private onConnection(client: net.Socket): void {
    this.accepted++;
    client.setNoDelay(true);
    const link: Link = { client, stalled: false, pending: Buffer.alloc(0), closed: false };
    this.links.add(link);
    if (this.stallNew) link.stalled = true;
    client.on('data', (data) => this.fromClient(link, data));
    client.on('error', () => this.drop(link));
    client.on('close', () => this.drop(link));
  }

  private drop(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  }

  private stallLink(link: Link): void {
    link.stalled = true;
    link.upstream?.pause();
  }

  /** Buffers client bytes until whole requests, then forwards or answers each. */
  private fromClient(link: Link, data: Buffer): void {
    if (link.stalled) return;
    link.pending = link.pending.length ? Buffer.concat([link.pending, data]) : data;
    for (;;) {
      const headEnd = link.pending.indexOf(HEAD_END);
      if (headEnd === -1) return;
      const head = link.pending.subarray(0, headEnd).toString('latin1');
      const [requestLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      const total = headEnd + 4 + length;
      if (link.pending.length < total) return;
      const raw = link.pending.subarray(0, total);
      const body = link.pending.subarray(headEnd + 4, total).toString('utf8');
      link.pending = link.pending.subarray(total);
      const [method, target] = requestLine.split(' ');
      this.requests.push({ method, target, url: new URL(target, 'http://proxy'), headers, body });
      // canned answers are for the feed; other requests (GET /db, _revs_diff) go to the server
      const canned = /\/_changes(\?|$)/.test(target) ? this.answers.shift() : undefined;
      if (canned) {
        void this.reply(link, canned);
        return;
      }
      this.forward(link, raw);
    }
  }

  private forward(link: Link, raw: Buffer): void {
    if (!link.upstream) {
      const upstream = net.connect(this.targetPort, this.targetHost);
      upstream.setNoDelay(true);
      link.upstream = upstream;
      upstream.on('data', (data) => this.toClient(link, data));
      upstream.on('error', () => this.drop(link));
      upstream.on('close', () => this.drop(link));
    }
    link.upstream.write(raw);
  }

  private toClient(link: Link, data: Buffer): void {
    if (link.stalled || link.closed) return;
    const upstream = link.upstream as net.Socket;
    if (this.fragmentBytes > 0 && data.length > this.fragmentBytes) {
      upstream.pause();
      void (async () => {
        for (let i = 0; i < data.length && !link.closed && !link.stalled; i += this.fragmentBytes) {
          const piece = data.subarray(i, i + this.fragmentBytes);
          this.bytesToClient += piece.length;
          link.client.write(piece);
          await sleep(1);
        }
        if (!link.closed && !link.stalled) upstream.resume();
      })();
      return;
    }
    this.bytesToClient += data.length;
    if (!link.client.write(data)) {
      upstream.pause();
      link.client.once('drain', () => {
        if (!link.stalled && !link.closed) upstream.resume();
      });
    }
  }

  private async reply(link: Link, answer: CannedAnswer): Promise<void> {
    if (answer.hangUp) {
      this.drop(link);
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      connection: 'close',
      ...answer.headers,
    };
    const write = (s: string) => {
      if (link.closed) return;
      const b = Buffer.from(s);
      this.bytesToClient += b.length;
      link.client.write(b);
    };
    write(
      `HTTP/1.1 ${answer.status} Canned\r\n${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n')}\r\n\r\n`,
    );
    for (const chunk of answer.chunks ?? []) {
      if (typeof chunk === 'string') {
        if (chunk.length > 0) write(`${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`);
      } else await sleep(chunk.delayMs);
    }
    if (answer.end !== false) {
      write('0\r\n\r\n');
      link.client.end();
      link.upstream?.destroy();
    }
  }
}
