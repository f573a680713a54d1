import type { FeedRequest } from './feed-request';

/** How a connection's request was answered. */
export interface FeedHead {
  readonly status: number;
  /** For a status other than 200: the start of the body (at most 64 KiB), for the error message. */
  readonly body?: string;
}

const ERROR_BODY_LIMIT = 64 * 1024;

/** Thrown into a pending read when the watchdog gives up on a silent connection. */
export class SilentConnectionError extends Error {
  constructor(windowMs: number) {
    super(`no byte from the server for ${windowMs} ms (no row and no heartbeat); dropping the connection`);
    this.name = 'SilentConnectionError';
  }
}

/**
 * One `_changes` request over Node's built-in fetch, read chunk by chunk on demand: nothing is read
 * while the caller is busy, so a slow consumer pauses the socket (backpressure) instead of buffering.
 *
 * A watchdog drops the connection when the server sends nothing at all — no row, no heartbeat newline,
 * not even response headers — for `windowMs` while the caller is waiting for it. Time the caller
 * spends handling rows does not count.
 */
export class FeedConnection {
  private readonly controller = new AbortController();
  private reader?: ReadableStreamDefaultReader<Uint8Array>;
  private waitingSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The body was read to its end: nothing to abort, and the socket may be reused. */
  private complete = false;
  /** True once the watchdog dropped this connection. */
  silent = false;

  constructor(
    private readonly request: FeedRequest,
    private readonly windowMs: number,
  ) {}

  /** Sends the request; resolves when the status is known. Rejects when no answer comes. */
  async open(): Promise<FeedHead> {
    this.startWaiting();
    try {
      const res = await fetch(this.request.url, {
        method: this.request.method,
        headers: this.request.headers,
        body: this.request.body,
        signal: this.controller.signal,
      });
      if (res.status !== 200) return { status: res.status, body: await this.readErrorBody(res) };
      if (!res.body) return { status: 200 };
      this.reader = res.body.getReader();
      return { status: 200 };
    } finally {
      this.stopWaiting();
    }
  }

  /** The next chunk of the body, or null at its end. Rejects when the connection breaks or goes silent. */
  async read(): Promise<Buffer | null> {
    if (!this.reader) return null;
    this.startWaiting();
    try {
      const { done, value } = await this.reader.read();
      if (done) {
        this.complete = true;
        return null;
      }
      return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    } finally {
      this.stopWaiting();
    }
  }

  /** Aborts the request if still open and releases the timer. Safe to call more than once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.waitingSince = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.complete) return;
    this.controller.abort();
    this.reader?.cancel().catch(() => undefined);
  }

  private async readErrorBody(res: Response): Promise<string> {
    if (!res.body) return '';
    const reader = res.body.getReader();
    const parts: Buffer[] = [];
    let size = 0;
    try {
      while (size < ERROR_BODY_LIMIT) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(Buffer.from(value));
        size += value.byteLength;
      }
    } catch {
      // the answer's status is what matters; a broken error body is not worth more
    } finally {
      reader.cancel().catch(() => undefined);
    }
    return Buffer.concat(parts).toString('utf8', 0, Math.min(size, ERROR_BODY_LIMIT));
  }

  private startWaiting(): void {
    if (this.closed) return;
    this.waitingSince = performance.now();
    if (this.timer === undefined) this.timer = setTimeout(this.check, this.windowMs);
  }

  private stopWaiting(): void {
    this.waitingSince = undefined;
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.waitingSince === undefined || this.closed) return;
    const quiet = performance.now() - this.waitingSince;
    if (quiet >= this.windowMs) {
      this.silent = true;
      this.controller.abort(new SilentConnectionError(this.windowMs));
    } else {
      this.timer = setTimeout(this.check, Math.ceil(this.windowMs - quiet));
    }
  };
}
