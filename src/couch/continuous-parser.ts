import { FeedError } from './feed-error';
import { classify, HEARTBEAT, type FeedItem } from './feed-item';
import { DEFAULT_MAX_LINE_BYTES } from './follow-options';

const NEWLINE = 0x0a;

/** True when bytes [start, end) are only spaces, tabs and carriage returns. */
function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

/**
 * Splits a continuous `_changes` body into items as the bytes arrive: one JSON object per line, blank
 * lines are heartbeats, and a row split across network chunks (even inside a multi-byte character)
 * is kept until its newline arrives. Only whole lines are decoded, so memory holds at most one
 * partial line beyond the chunk being read, and a line longer than `maxLineBytes` is refused as soon
 * as that many bytes of it arrived (a server sending junk without a newline cannot fill memory).
 */
export class ContinuousParser {
  private parts: Buffer[] = [];
  private pending = 0;

  constructor(private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {}

  /** The items completed by `chunk`, in order. Throws FeedError (kind `protocol`) on a line that is not JSON. */
  push(chunk: Buffer): FeedItem[] {
    const out: FeedItem[] = [];
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    if (nl === -1) {
      if (chunk.length > 0) this.keep(chunk);
      return out;
    }
    if (this.parts.length > 0) {
      this.keep(chunk.subarray(0, nl));
      const line = Buffer.concat(this.parts);
      this.reset();
      this.line(line, 0, line.length, out);
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    while (nl !== -1) {
      this.line(chunk, start, nl, out);
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
    return out;
  }

  /** Bytes of an unfinished line (a cut connection leaves one; it is dropped, never parsed). */
  get pendingBytes(): number {
    return this.pending;
  }

  /** The last line when the body ended without a newline after it (CouchDB ends with one). */
  end(): FeedItem[] {
    if (this.parts.length === 0) return [];
    const line = Buffer.concat(this.parts);
    this.reset();
    const out: FeedItem[] = [];
    this.line(line, 0, line.length, out);
    return out;
  }

  private keep(part: Buffer): void {
    this.pending += part.length;
    if (this.pending > this.maxLineBytes) {
      this.reset();
      throw tooLong(this.maxLineBytes);
    }
    this.parts.push(part);
  }

  private reset(): void {
    this.parts = [];
    this.pending = 0;
  }

  private line(buf: Buffer, start: number, end: number, out: FeedItem[]): void {
    if (end - start > this.maxLineBytes) throw tooLong(this.maxLineBytes);
    if (isBlank(buf, start, end)) {
      out.push(HEARTBEAT);
      return;
    }
    const text = buf.toString('utf8', start, end);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new FeedError(
        'protocol',
        `the feed sent a line that is not JSON: ${JSON.stringify(text.slice(0, 200))}`,
        {
          cause: err,
        },
      );
    }
    out.push(classify(value));
  }
}

/** What a feed line (or longpoll answer) longer than the cap is. */
export function tooLong(maxLineBytes: number, what = 'a line'): FeedError {
  return new FeedError(
    'protocol',
    `the feed sent ${what} longer than ${maxLineBytes} bytes (options.maxLineBytes); dropping the connection`,
  );
}
