import 'reflect-metadata';
import { DEFAULT_RETRY_MS, retry, type FeedError, type Seq } from '../../src/couch';
import { stop } from '../../src/returns';
import { describeTargets, type CouchTarget } from '../helpers/couch/targets';
import { BareProbe, Probe, sleep, startProbe, waitFor, writeDocs } from '../helpers/couch/follower-kit';

async function seqsOf(t: CouchTarget, db: string): Promise<Seq[]> {
  const res = await t.nano.use(db).changes();
  return res.results.map((r) => r.seq as Seq);
}

/** Changes requests for one database, as the proxy saw them. */
const requestsFor = (t: CouchTarget, db: string) =>
  t.proxy.changesRequests.filter((r) => r.url.pathname === `/${db}/_changes`);

describeTargets('resilience', (target) => {
  it('a cut connection reconnects with jitter and resumes after the last handled seq', async () => {
    const t = target();
    const db = await t.createDb('cut');
    await writeDocs(t.nano.use(db), 'a', 3);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300 },
    });
    await events.waitCount('change', 3);
    const cutAt = Date.now();
    expect(t.proxy.cutAll()).toBeGreaterThan(0);
    await events.waitCount('connected', 2);
    const took = Date.now() - cutAt;
    await writeDocs(t.nano.use(db), 'b', 2);
    await events.waitCount('change', 5);
    const seqs = await seqsOf(t, db);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001', 'a00002', 'b00000', 'b00001']);
    const [reconnect] = events.of('reconnecting');
    expect(reconnect).toMatchObject({ reason: 'closed', since: seqs[2] });
    expect(reconnect.waitMs).toBeGreaterThanOrEqual(0);
    expect(reconnect.waitMs).toBeLessThan(500);
    expect(took).toBeLessThan(1500);
    const reqs = requestsFor(t, db);
    expect(reqs[1].url.searchParams.get('since')).toBe(String(seqs[2]));
    await ref.stop();
  });

  it('a stalled connection (open, silent) is dropped after twice the heartbeat and reopened', async () => {
    const t = target();
    const db = await t.createDb('stall');
    await writeDocs(t.nano.use(db), 'a', 2);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 150, jitterMs: 50 },
    });
    await events.waitCount('change', 2);
    const stalledAt = Date.now();
    t.proxy.stall();
    await events.waitCount('reconnecting', 1);
    const detected = Date.now() - stalledAt;
    expect(events.of('reconnecting')[0].reason).toBe('heartbeat');
    expect(detected).toBeGreaterThanOrEqual(250);
    expect(detected).toBeLessThan(1500);
    await writeDocs(t.nano.use(db), 'b', 1);
    await events.waitCount('change', 3);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001', 'b00000']);
    await ref.stop();
    t.proxy.cutAll(); // the stalled sockets
  });

  it('a connection that never answers (no headers) is dropped by the same watchdog', async () => {
    const t = target();
    const db = await t.createDb('noheaders');
    await writeDocs(t.nano.use(db), 'a', 1);
    t.proxy.stall({ newOnes: true });
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 100, jitterMs: 20 },
    });
    await events.waitCount('reconnecting', 2);
    expect(events.of('reconnecting').every((e) => e.reason === 'heartbeat')).toBe(true);
    expect(events.count('connected')).toBe(0);
    t.proxy.unstall();
    await events.waitCount('change', 1);
    await ref.stop();
    t.proxy.cutAll();
  });

  it('time spent in a slow @OnChange does not count as silence (no false heartbeat reset)', async () => {
    const t = target();
    const db = await t.createDb('slowhandler');
    await writeDocs(t.nano.use(db), 'a', 3);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 100 },
      onChange: async () => {
        await sleep(350);
      },
    });
    await events.waitCount('change', 3, 5_000);
    expect(events.count('reconnecting')).toBe(0);
    expect(events.count('connected')).toBe(1);
    await ref.stop();
  });

  it('HTTP 400 with no known good seq stops the follower with bad_request', async () => {
    const t = target();
    const db = await t.createDb('400');
    t.proxy.answerStatus(400);
    const { ref, events } = await startProbe(Probe, { db: t.dbTarget(db), options: { heartbeat: 300 } });
    expect(await ref.done).toBe('bad_request');
    expect(events.of('feed-error')[0].error).toMatchObject({ code: 'FEED_FAILED', status: 400 });
    expect(events.of('stopped')).toEqual([{ type: 'stopped', reason: 'bad_request' }]);
  });

  it('HTTP 400 retries once from the last known good seq, then stops with bad_request if it fails again', async () => {
    const t = target();
    const db = await t.createDb('400lkg');
    await writeDocs(t.nano.use(db), 'a', 3);
    const seqs = await seqsOf(t, db);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { since: seqs[0], heartbeat: 300, jitterMs: 20 },
    });
    await events.waitCount('change', 2);

    // one 400 for since=seqs[2]: one retry from the last good seq (seqs[0]) redelivers a00001..2
    t.proxy.answerStatus(400, 1);
    t.proxy.cutAll();
    await events.waitCount('change', 4);
    expect(events.of('reconnecting').map((e) => e.reason)).toEqual(['closed', 'bad_request']);
    expect(events.of('reconnecting')[1].since).toBe(seqs[0]);
    expect((await ref.readState()).ids).toEqual(['a00001', 'a00002', 'a00001', 'a00002']);
    const reqs = requestsFor(t, db);
    expect(reqs.map((r) => r.url.searchParams.get('since'))).toEqual([seqs[0], seqs[2], seqs[0]].map(String));

    // two 400s in a row: the retry fails too → stop
    t.proxy.answerStatus(400, 2);
    t.proxy.cutAll();
    expect(await ref.done).toBe('bad_request');
  });

  it('other statuses go to @OnError; retry(s) reconnects at once (with jitter)', async () => {
    const t = target();
    const db = await t.createDb('503');
    await writeDocs(t.nano.use(db), 'a', 1);
    const errors: FeedError[] = [];
    t.proxy.answerStatus(503, 2);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300 },
      onError: (err, s) => (errors.push(err as FeedError), retry(s)),
    });
    await events.waitCount('change', 1);
    expect(errors.map((e) => [e.code, e.kind, e.status, e.error])).toEqual([
      ['FEED_FAILED', 'status', 503, 'status_503'],
      ['FEED_FAILED', 'status', 503, 'status_503'],
    ]);
    const waits = events.of('reconnecting').map((e) => e.waitMs);
    expect(waits.every((w) => w >= 0 && w < 500)).toBe(true);
    expect((await ref.readState()).errors).toBe(2);
    await ref.stop();
  });

  it('retry(s, ms) waits ms before reconnecting', async () => {
    const t = target();
    const db = await t.createDb('retryms');
    await writeDocs(t.nano.use(db), 'a', 1);
    t.proxy.answerStatus(500, 1);
    const started = Date.now();
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300, jitterMs: 0 },
      onError: (_err, s) => retry(s, 400),
    });
    await events.waitCount('change', 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(events.of('reconnecting')[0]).toMatchObject({ reason: 'retry', waitMs: 400 });
    await ref.stop();
  });

  it('retry(s, Infinity) waits for retryNow()', async () => {
    const t = target();
    const db = await t.createDb('retryinf');
    await writeDocs(t.nano.use(db), 'a', 1);
    t.proxy.answerStatus(500, 1);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300 },
      onError: (_err, s) => retry(s, Infinity),
    });
    await events.waitCount('reconnecting', 1);
    expect(events.of('reconnecting')[0].waitMs).toBe(Infinity);
    await sleep(600);
    expect(events.count('connected')).toBe(0);
    expect(await ref.call('state')).toMatchObject({ errors: 1 }); // still serving calls while waiting
    ref.retryNow();
    await events.waitCount('change', 1);
    await ref.stop();
  });

  it('stop(reason, s) from @OnError stops the follower with that reason', async () => {
    const t = target();
    const db = await t.createDb('errstop');
    t.proxy.answerStatus(401, 1);
    const { ref } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300 },
      onError: (err, s) => stop({ gaveUp: (err as FeedError).status }, s),
    });
    expect(await ref.done).toEqual({ gaveUp: 401 });
    await expect(ref.call('state')).rejects.toMatchObject({ code: 'STOPPED' });
  });

  it('without @OnError a failure waits 60 s; retryNow() skips the wait', async () => {
    const t = target();
    const db = await t.createDb('default60');
    await writeDocs(t.nano.use(db), 'a', 1);
    t.proxy.answerStatus(502, 1);
    const { ref, events } = await startProbe(BareProbe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300 },
    });
    await events.waitCount('reconnecting', 1);
    const wait = events.of('reconnecting')[0];
    expect(wait.reason).toBe('retry');
    expect(wait.waitMs).toBeGreaterThanOrEqual(DEFAULT_RETRY_MS);
    expect(wait.waitMs).toBeLessThan(DEFAULT_RETRY_MS + 500);
    await sleep(300);
    expect(events.count('connected')).toBe(0);
    ref.retryNow();
    await events.waitCount('change', 1);
    ref.retryNow(); // connected: nothing to skip, no effect
    await sleep(50);
    expect(events.count('connected')).toBe(1);
    await ref.stop();
  });

  it('a refused connection goes to @OnError as FeedError(connection)', async () => {
    const t = target();
    const db = await t.createDb('refused');
    await writeDocs(t.nano.use(db), 'a', 1);
    const errors: FeedError[] = [];
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300, jitterMs: 10 },
      onError: (err, s) => (errors.push(err as FeedError), retry(s, 100)),
    });
    await events.waitCount('change', 1);
    await t.proxy.refuse();
    t.proxy.cutAll();
    try {
      await waitFor(() => errors.length >= 2, 'two refused attempts');
    } finally {
      await t.proxy.accept();
    }
    expect(errors[0]).toMatchObject({ code: 'FEED_FAILED', kind: 'connection' });
    expect(errors[0].message).toContain('ECONNREFUSED');
    await writeDocs(t.nano.use(db), 'b', 1);
    await events.waitCount('change', 2);
    await ref.stop();
  });

  it('a server that keeps hanging up before answering goes to @OnError after 4 closes in a row', async () => {
    const t = target();
    const db = await t.createDb('hangup');
    await writeDocs(t.nano.use(db), 'a', 1);
    const errors: FeedError[] = [];
    t.proxy.hangUp(4);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300, jitterMs: 10 },
      onError: (err, s) => (errors.push(err as FeedError), retry(s)),
    });
    await events.waitCount('change', 1);
    expect(events.of('reconnecting').map((e) => e.reason)).toEqual(['closed', 'closed', 'closed', 'retry']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'FEED_FAILED', kind: 'connection' });
    expect(errors[0].message).toContain('before answering 4 times');
    await ref.stop();
  });

  it('a throwing @OnChange stops the follower with that error (no @OnError)', async () => {
    const t = target();
    const db = await t.createDb('throw');
    await writeDocs(t.nano.use(db), 'a', 3);
    const boom = new Error('boom');
    const { ref, events } = await startProbe(BareProbe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300 },
      onChange: (row) => {
        if (row.id === 'a00001') throw boom;
      },
    });
    expect(await ref.done).toBe(boom);
    expect(events.of('handler-failed')).toEqual([
      {
        type: 'handler-failed',
        kind: 'change',
        attempt: 1,
        error: expect.objectContaining({ code: 'HANDLER_FAILED', cause: boom }),
      },
    ]);
    expect(events.count('change')).toBe(1);
  });

  it('a throwing @OnChange goes to @OnError: retry redelivers the row; stop stops', async () => {
    const t = target();
    const db = await t.createDb('throwretry');
    await writeDocs(t.nano.use(db), 'a', 3);
    let thrown = 0;
    const seen: unknown[] = [];
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300, jitterMs: 10 },
      onChange: (row) => {
        if (row.id === 'a00001' && thrown++ === 0) throw new Error('transient');
      },
      onError: (err, s) => (seen.push(err), retry(s)),
    });
    await events.waitCount('change', 3);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001', 'a00002']);
    expect((seen[0] as Error).message).toBe('transient');
    expect(events.of('reconnecting')[0].reason).toBe('retry');
    await ref.stop();

    const db2 = await t.createDb('throwstop');
    await writeDocs(t.nano.use(db2), 'a', 2);
    const second = await startProbe(Probe, {
      db: t.dbTarget(db2),
      options: { heartbeat: 300 },
      onChange: () => {
        throw new Error('permanent');
      },
      onError: (err, s) => stop(`gave up: ${(err as Error).message}`, s),
    });
    expect(await second.ref.done).toBe('gave up: permanent');
  });

  it('backpressure: a slow @OnChange pauses reading; the proxy forwards only a bounded part of the feed', async () => {
    const t = target();
    const db = await t.createDb('backpressure');
    const filler = 'x'.repeat(5_000);
    for (let b = 0; b < 10; b++)
      await t.nano.use(db).bulk({
        docs: Array.from({ length: 200 }, (_, i) => ({
          _id: `d${b}-${String(i).padStart(4, '0')}`,
          filler,
        })),
      });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sent = t.proxy.bytesToClient;
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { includeDocs: true, heartbeat: 200 },
      onChange: async (row) => {
        if (row.id === 'd0-0000') await gate;
      },
    });
    await waitFor(() => t.proxy.bytesToClient - sent > 0, 'the first bytes');
    await sleep(1_000);
    const whilePaused = t.proxy.bytesToClient - sent;
    const feedBytes = 2_000 * filler.length;
    expect(whilePaused).toBeLessThan(feedBytes / 2);
    expect(events.count('change')).toBe(0);
    expect(events.count('reconnecting')).toBe(0); // waiting on the handler is not silence
    release();
    await events.waitCount('change', 2_000, 20_000);
    expect(t.proxy.bytesToClient - sent).toBeGreaterThan(feedBytes);
    expect(new Set((await ref.readState()).ids).size).toBe(2_000);
    await ref.stop();
  });
});
