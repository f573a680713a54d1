import 'reflect-metadata';
import { retry, type FeedError } from '../../src/couch';
import { ContinuousParser } from '../../src/couch/continuous-parser';
import { resolveOptions } from '../../src/couch/follow-options';
import { stop } from '../../src/returns';
import { describeTargets } from '../helpers/couch/targets';
import { Probe, startProbe, waitFor, writeDocs, type ProbeState } from '../helpers/couch/follower-kit';

const feedErrors = (events: { of(t: 'feed-error'): Array<{ error: unknown }> }) =>
  events
    .of('feed-error')
    .map((e) => e.error as FeedError)
    .filter((e) => e.kind === 'protocol');

describe('a line longer than maxLineBytes (issue #11, point 7)', () => {
  it('is refused by the parser as soon as the unfinished line passes the cap; memory stays bounded', () => {
    const parser = new ContinuousParser(1000);
    const junk = Buffer.alloc(300, 0x61); // 'a', no newline
    parser.push(junk);
    parser.push(junk);
    parser.push(junk);
    expect(parser.pendingBytes).toBe(900);
    expect(() => parser.push(junk)).toThrow(
      expect.objectContaining({
        code: 'FEED_FAILED',
        kind: 'protocol',
        message: expect.stringContaining('1000'),
      }),
    );
    expect(parser.pendingBytes).toBe(0); // dropped, not kept
  });

  it('counts a whole line inside one chunk too; a line at the cap is fine', () => {
    const line = `{"seq":1,"id":"a","changes":[],"doc":{"t":"${'x'.repeat(100)}"}}`;
    expect(new ContinuousParser(Buffer.byteLength(line)).push(Buffer.from(`${line}\n`))).toHaveLength(1);
    expect(() => new ContinuousParser(Buffer.byteLength(line) - 1).push(Buffer.from(`${line}\n`))).toThrow(
      expect.objectContaining({ kind: 'protocol' }),
    );
  });

  it.each([[0], [-1], [1.5], ['64MB'], [Infinity]])('maxLineBytes %p is BAD_ARGUMENT', (v) => {
    expect(() => resolveOptions({ maxLineBytes: v })).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT', message: expect.stringContaining('maxLineBytes') }),
    );
  });

  it('defaults to 64 MiB and is not sent in the query', () => {
    const o = resolveOptions({ maxLineBytes: 4096 });
    expect(o.maxLineBytes).toBe(4096);
    expect(o.extra).toEqual([]);
    expect(resolveOptions({}).maxLineBytes).toBe(64 * 1024 * 1024);
  });
});

describe('option names that are Object.prototype members (issue #11, point 5)', () => {
  it.each([
    [{ constructor: 'x' }, 'constructor'],
    [{ toString: 1 }, 'toString'],
    [{ hasOwnProperty: false }, 'hasOwnProperty'],
    [JSON.parse('{"__proto__": true}') as object, '__proto__'],
    [{ valueOf: 'v' }, 'valueOf'],
  ])('%p is BAD_ARGUMENT naming the option', (opts, name) => {
    let caught: unknown;
    try {
      resolveOptions(opts);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'BAD_ARGUMENT' });
    const message = (caught as Error).message;
    expect(message).toContain(`options.${name}`);
    expect(message).not.toContain('native code');
    expect(message).not.toContain('[object');
  });
});

describeTargets('hostile feeds', (target) => {
  it('a continuous line without a newline past maxLineBytes goes to @OnError as FeedError(protocol)', async () => {
    const t = target();
    const db = await t.createDb('longline');
    await writeDocs(t.nano.use(db), 'a', 2);
    // 256 KiB of junk without a newline, in 16 KiB chunks, then the connection stays open
    const piece = 'x'.repeat(16 * 1024);
    t.proxy.answer({ status: 200, chunks: Array.from({ length: 16 }, () => piece), end: false });
    const errors: FeedError[] = [];
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 2000, jitterMs: 10, maxLineBytes: 64 * 1024 },
      onError: (err: unknown, s: ProbeState) => {
        errors.push(err as FeedError);
        return errors.length > 3 ? stop('too many', s) : retry(s);
      },
    });
    await events.waitCount('change', 2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'FEED_FAILED', kind: 'protocol' });
    expect(errors[0].message).toContain('65536');
    expect(t.proxy.changesRequests.at(-1)?.url.searchParams.has('maxLineBytes')).toBe(false);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001']);
    await ref.stop();
  });

  it('a longpoll answer larger than maxLineBytes goes to @OnError as FeedError(protocol)', async () => {
    const t = target();
    const db = await t.createDb('longbody');
    await writeDocs(t.nano.use(db), 'a', 1);
    const piece = 'x'.repeat(16 * 1024);
    t.proxy.answer({
      status: 200,
      chunks: [
        '{"results":[{"seq":1,"id":"a","changes":[],"doc":"',
        ...Array.from({ length: 8 }, () => piece),
      ],
      end: false,
    });
    const errors: FeedError[] = [];
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { feed: 'longpoll', heartbeat: 2000, jitterMs: 10, maxLineBytes: 32 * 1024 },
      onError: (err: unknown, s: ProbeState) => {
        errors.push(err as FeedError);
        return errors.length > 3 ? stop('too many', s) : retry(s);
      },
    });
    await events.waitCount('change', 1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'FEED_FAILED', kind: 'protocol' });
    expect(errors[0].message).toContain('32768');
    expect((await ref.readState()).ids).toEqual(['a00000']);
    await ref.stop();
  });

  it.each([['continuous'], ['longpoll']] as const)(
    'non-object lines and rows without a valid seq or id are reported as FeedError(protocol) and not delivered (%s)',
    async (feed) => {
      const t = target();
      const db = await t.createDb(`badrows-${feed}`);
      const bad = [
        '42',
        'null',
        '"text"',
        '[1,2]',
        '{"id":"no-seq","changes":[{"rev":"1-a"}]}',
        '{"seq":7,"changes":[{"rev":"1-a"}]}',
        '{"seq":{"a":1},"id":"object-seq","changes":[{"rev":"1-a"}]}',
        '{"seq":"","id":"empty-seq","changes":[{"rev":"1-a"}]}',
        '{"seq":8,"id":17,"changes":[{"rev":"1-a"}]}',
        '{"hello":"world"}',
      ];
      const good = '{"seq":9,"id":"good","changes":[{"rev":"1-a"}]}';
      const body =
        feed === 'continuous'
          ? `${bad.join('\n')}\n${good}\n{"last_seq":9}\n`
          : `{"results":[${bad.join(',')},${good}],"last_seq":9}`;
      t.proxy.answer({ status: 200, chunks: [body], end: feed === 'longpoll' });
      const { ref, events } = await startProbe(Probe, {
        db: t.dbTarget(db),
        options: { feed, heartbeat: 2000, jitterMs: 10 },
      });
      await events.waitCount('change', 1);
      await waitFor(() => feedErrors(events).length >= bad.length, 'one error per bad line');
      const errors = feedErrors(events);
      expect(errors).toHaveLength(bad.length);
      for (const err of errors) expect(err).toMatchObject({ code: 'FEED_FAILED', kind: 'protocol' });
      expect(errors[0].message).toContain('42');
      expect(errors[6].message).toContain('object-seq');
      expect((await ref.readState()).ids).toEqual(['good']);
      expect(ref.lastSeq).toBe(9);
      expect(events.count('stopped')).toBe(0);
      await ref.stop();
    },
  );
});
