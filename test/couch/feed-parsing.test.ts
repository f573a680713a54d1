import 'reflect-metadata';
import { ContinuousParser } from '../../src/couch/continuous-parser';
import { resolveDb } from '../../src/couch/db-target';
import { resolveOptions } from '../../src/couch/follow-options';
import { buildFeedRequest } from '../../src/couch/feed-request';
import { FeedError } from '../../src/couch/feed-error';
import type { FeedItem } from '../../src/couch/feed-item';

const rowLine = (id: string, seq: number, extra = '') =>
  `{"seq":${seq},"id":"${id}","changes":[{"rev":"1-a"}]${extra}}\n`;

function feedAll(parser: ContinuousParser, chunks: Buffer[]): FeedItem[] {
  return chunks.flatMap((c) => parser.push(c));
}

describe('ContinuousParser', () => {
  it('yields rows, heartbeats, last_seq and error rows in order', () => {
    const body = `${rowLine('a', 1)}\n${rowLine('b', 2)}\n\n{"last_seq":2}\n{"error":"x","reason":"y"}\n`;
    const items = new ContinuousParser().push(Buffer.from(body));
    expect(items.map((i) => i.kind)).toEqual([
      'row',
      'heartbeat',
      'row',
      'heartbeat',
      'heartbeat',
      'last_seq',
      'error',
    ]);
    expect(items[5]).toEqual({ kind: 'last_seq', seq: 2 });
    expect(items[6]).toEqual({ kind: 'error', error: 'x', reason: 'y' });
  });

  it('reassembles rows split at every possible byte, including inside a multi-byte character', () => {
    const body = Buffer.from(`${rowLine('é-ü-€-𝄞', 1, ',"doc":{"t":"ÄÖÜ 𝄞"}')}\n${rowLine('b', 2)}`);
    for (let cut = 1; cut < body.length; cut++) {
      const parser = new ContinuousParser();
      const items = feedAll(parser, [body.subarray(0, cut), body.subarray(cut)]);
      const rows = items.filter((i): i is Extract<FeedItem, { kind: 'row' }> => i.kind === 'row');
      expect(rows.map((r) => r.row.id)).toEqual(['é-ü-€-𝄞', 'b']);
      expect((rows[0].row.doc as { t: string }).t).toBe('ÄÖÜ 𝄞');
      expect(parser.pendingBytes).toBe(0);
    }
  });

  it('reassembles a row delivered one byte at a time, and keeps a cut line pending (never parsed)', () => {
    const body = Buffer.from(rowLine('one', 1) + '{"seq":2,"id":"tw');
    const parser = new ContinuousParser();
    const items = feedAll(
      parser,
      [...body].map((b) => Buffer.from([b])),
    );
    expect(items).toHaveLength(1);
    expect(parser.pendingBytes).toBe(Buffer.byteLength('{"seq":2,"id":"tw'));
  });

  it('treats \\r\\n and whitespace-only lines as heartbeats', () => {
    const items = new ContinuousParser().push(
      Buffer.from(`\r\n  \n${rowLine('a', 1).replace('\n', '\r\n')}`),
    );
    expect(items.map((i) => i.kind)).toEqual(['heartbeat', 'heartbeat', 'row']);
  });

  it('parses a last line without a newline at the end of the body', () => {
    const parser = new ContinuousParser();
    expect(parser.push(Buffer.from('{"last_seq":"9-abc"}'))).toEqual([]);
    expect(parser.end()).toEqual([{ kind: 'last_seq', seq: '9-abc' }]);
  });

  it('throws FeedError(protocol) for a line that is not JSON', () => {
    const parser = new ContinuousParser();
    expect(() => parser.push(Buffer.from('<html>oops</html>\n'))).toThrow(FeedError);
    try {
      new ContinuousParser().push(Buffer.from('nope\n'));
    } catch (err) {
      expect((err as FeedError).code).toBe('FEED_FAILED');
      expect((err as FeedError).kind).toBe('protocol');
    }
  });
});

describe('resolveDb', () => {
  it('takes a URL and moves credentials from it into a basic auth header', () => {
    const db = resolveDb('http://al%40ice:s3cr%3At@127.0.0.1:5984/my-db/');
    expect(db.url).toBe('http://127.0.0.1:5984/my-db');
    expect(db.changesUrl.toString()).toBe('http://127.0.0.1:5984/my-db/_changes');
    expect(db.headers.authorization).toBe(`Basic ${Buffer.from('al@ice:s3cr:t').toString('base64')}`);
  });

  it('takes { url, auth, headers }', () => {
    const db = resolveDb({
      url: 'https://h/db',
      auth: { username: 'u', password: 'p' },
      headers: { 'X-Token': 't' },
    });
    expect(db.headers).toMatchObject({
      authorization: `Basic ${Buffer.from('u:p').toString('base64')}`,
      'x-token': 't',
    });
  });

  it.each([
    [42, 'a URL string or an object'],
    [null, 'a URL string or an object'],
    [{}, 'non-empty string'],
    ['not a url', 'not a valid URL'],
    ['ftp://h/db', 'http: or https:'],
    ['http://h:5984/', 'names no database'],
    ['http://h/db?x=1', 'query or fragment'],
    [{ url: 'http://h/db', auth: { username: 'u' } }, 'db.auth'],
    [{ url: 'http://h/db', headers: { a: 1 } }, 'must be a string'],
  ])('rejects %p with BAD_ARGUMENT', (db, text) => {
    expect(() => resolveDb(db)).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT', message: expect.stringContaining(text) }),
    );
  });
});

describe('resolveOptions and buildFeedRequest', () => {
  const db = resolveDb('http://127.0.0.1:5984/db');

  it('defaults: continuous, heartbeat 60000 and timeout 7200000 in the query, GET', () => {
    const req = buildFeedRequest(db, resolveOptions(undefined), undefined);
    const url = new URL(req.url);
    expect(req.method).toBe('GET');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      feed: 'continuous',
      heartbeat: '60000',
      timeout: '7200000',
    });
    expect(req.headers).toMatchObject({ accept: 'application/json' });
  });

  it('since, includeDocs, filter and pass-through parameters go into the query', () => {
    const opts = resolveOptions({
      feed: 'longpoll',
      heartbeat: 500,
      timeout: 1000,
      includeDocs: true,
      filter: 'app/odd',
      style: 'all_docs',
      conflicts: true,
    });
    const url = new URL(buildFeedRequest(db, opts, '12-abc').url);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      feed: 'longpoll',
      heartbeat: '500',
      timeout: '1000',
      since: '12-abc',
      include_docs: 'true',
      filter: 'app/odd',
      style: 'all_docs',
      conflicts: 'true',
    });
  });

  it('docIds make a POST with filter=_doc_ids that overrides filter', () => {
    const req = buildFeedRequest(db, resolveOptions({ docIds: ['a', 'b'], filter: 'app/odd' }), 3);
    expect(req.method).toBe('POST');
    expect(new URL(req.url).searchParams.get('filter')).toBe('_doc_ids');
    expect(new URL(req.url).searchParams.get('since')).toBe('3');
    expect(JSON.parse(req.body as string)).toEqual({ doc_ids: ['a', 'b'] });
    expect(req.headers['content-type']).toBe('application/json');
  });

  it.each([
    [[], 'options must be an object'],
    [{ feed: 'normal' }, "'continuous' or 'longpoll'"],
    [{ heartbeat: 0 }, 'heartbeat'],
    [{ heartbeat: 1.5 }, 'heartbeat'],
    [{ timeout: -1 }, 'timeout'],
    [{ since: {} }, 'since'],
    [{ since: '' }, 'since'],
    [{ includeDocs: 'yes' }, 'includeDocs'],
    [{ filter: '' }, 'filter'],
    [{ docIds: 'a' }, 'docIds'],
    [{ docIds: [1] }, 'docIds'],
    [{ checkpoint: {} }, 'checkpoint.tenant'],
    [{ jitterMs: -5 }, 'jitterMs'],
    [{ include_docs: true }, 'includeDocs instead'],
    [{ doc_ids: ['a'] }, 'docIds instead'],
    [{ selector: { a: 1 } }, 'query parameter selector'],
    [{ seq_interval: 10 }, 'seq_interval is not supported'],
  ])('rejects %p with BAD_ARGUMENT', (opts, text) => {
    expect(() => resolveOptions(opts)).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT', message: expect.stringContaining(text) }),
    );
  });
});
