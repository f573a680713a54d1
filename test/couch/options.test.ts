import 'reflect-metadata';
import { retry, type FeedError } from '../../src/couch';
import { stop } from '../../src/returns';
import { describeTargets, type CouchTarget } from '../helpers/couch/targets';
import { Probe, sleep, startProbe, waitFor, writeDocs, type ProbeState } from '../helpers/couch/follower-kit';

/** The rows a database has, from nano (direct, not through the proxy). */
async function seqsOf(t: CouchTarget, db: string): Promise<Array<{ id: string; seq: string | number }>> {
  const res = await t.nano.use(db).changes();
  return res.results.map((r) => ({ id: r.id, seq: r.seq as string | number }));
}

describeTargets('follow options', (target) => {
  it('continuous (the default) sends heartbeat and timeout in the query and delivers rows live', async () => {
    const t = target();
    const db = await t.createDb('continuous');
    await writeDocs(t.nano.use(db), 'a', 3);
    const before = t.proxy.changesRequests.length;
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 250, timeout: 30_000 },
    });
    await events.waitCount('change', 3);
    await writeDocs(t.nano.use(db), 'b', 2);
    await events.waitCount('change', 5);
    await events.waitCount('heartbeat', 1);
    const req = t.proxy.changesRequests[before];
    expect(req.method).toBe('GET');
    expect(Object.fromEntries(req.url.searchParams)).toMatchObject({
      feed: 'continuous',
      heartbeat: '250',
      timeout: '30000',
    });
    expect(req.url.searchParams.has('since')).toBe(false);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001', 'a00002', 'b00000', 'b00001']);
    await ref.stop();
  });

  it('defaults heartbeat to 60000 and timeout to 7200000', async () => {
    const t = target();
    const db = await t.createDb('defaults');
    const before = t.proxy.changesRequests.length;
    const { ref } = await startProbe(Probe, { db: t.dbTarget(db) });
    await waitFor(() => t.proxy.changesRequests.length > before, 'the request');
    expect(Object.fromEntries(t.proxy.changesRequests[before].url.searchParams)).toMatchObject({
      heartbeat: '60000',
      timeout: '7200000',
    });
    await ref.stop();
  });

  it('longpoll parses each answer whole (heartbeat newlines inside it) and asks again from last_seq', async () => {
    const t = target();
    const db = await t.createDb('longpoll');
    await writeDocs(t.nano.use(db), 'a', 2);
    const before = t.proxy.changesRequests.length;
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      // a wide watchdog window (2 × heartbeat): a machine at load 20 missed one of 2 × 200 ms
      options: { feed: 'longpoll', heartbeat: 1000 },
    });
    await events.waitCount('change', 2);
    await sleep(2300); // the pending answer now carries heartbeat newlines before its first row
    await writeDocs(t.nano.use(db), 'b', 1);
    await events.waitCount('change', 3);
    await writeDocs(t.nano.use(db), 'c', 1);
    await events.waitCount('change', 4);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001', 'b00000', 'c00000']);
    const reqs = t.proxy.changesRequests.slice(before);
    expect(reqs.length).toBeGreaterThanOrEqual(3);
    expect(reqs.every((r) => r.url.searchParams.get('feed') === 'longpoll')).toBe(true);
    const seqs = await seqsOf(t, db);
    expect(reqs[1].url.searchParams.get('since')).toBe(String(seqs[1].seq));
    if (!t.isCouchDB) expect(events.count('heartbeat')).toBeGreaterThan(0);
    expect(events.of('reconnecting')).toEqual([]);
    await ref.stop();
  });

  it('since starts after the given seq', async () => {
    const t = target();
    const db = await t.createDb('since');
    await writeDocs(t.nano.use(db), 'a', 4);
    const seqs = await seqsOf(t, db);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { since: seqs[1].seq, heartbeat: 500 },
    });
    await events.waitCount('change', 2);
    await sleep(100);
    expect((await ref.readState()).ids).toEqual(['a00002', 'a00003']);
    await ref.stop();
  });

  it("since: 'now' follows only new changes", async () => {
    const t = target();
    const db = await t.createDb('since-now');
    await writeDocs(t.nano.use(db), 'old', 2);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { since: 'now', heartbeat: 500 },
    });
    await events.waitCount('connected', 1);
    await sleep(100);
    await writeDocs(t.nano.use(db), 'new', 1);
    await events.waitCount('change', 1);
    expect((await ref.readState()).ids).toEqual(['new00000']);
    await ref.stop();
  });

  it('includeDocs delivers each doc; without it rows carry none', async () => {
    const t = target();
    const db = await t.createDb('docs');
    await writeDocs(t.nano.use(db), 'a', 2, (i) => ({ type: 'thing', label: `L${i}` }));
    const withDocs = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { includeDocs: true, heartbeat: 500 },
    });
    const without = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 500 },
    });
    await withDocs.events.waitCount('change', 2);
    await without.events.waitCount('change', 2);
    expect((await withDocs.ref.readState()).docs.map((d) => d?.label)).toEqual(['L0', 'L1']);
    expect((await without.ref.readState()).docs).toEqual([undefined, undefined]);
    expect(t.proxy.changesRequests.some((r) => r.url.searchParams.get('include_docs') === 'true')).toBe(true);
    await withDocs.ref.stop();
    await without.ref.stop();
  });

  it('filter applies a design-document filter function', async () => {
    const t = target();
    const db = await t.createDb('filter');
    await t.nano
      .use<Record<string, unknown>>(db)
      .insert({ _id: '_design/app', filters: { odd: 'function (doc) { return doc.n % 2 === 1; }' } });
    await writeDocs(t.nano.use(db), 'a', 6);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { filter: 'app/odd', heartbeat: 500 },
    });
    await events.waitCount('change', 3);
    await sleep(150);
    expect((await ref.readState()).ids).toEqual(['a00001', 'a00003', 'a00005']);
    await ref.stop();
  });

  it('docIds POSTs filter=_doc_ids (overriding filter) and follows only those documents', async () => {
    const t = target();
    const db = await t.createDb('docids');
    await writeDocs(t.nano.use(db), 'a', 5);
    const before = t.proxy.changesRequests.length;
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { docIds: ['a00001', 'a00004'], filter: 'no/such-filter', heartbeat: 500 },
    });
    await events.waitCount('change', 2);
    await t.nano
      .use<Record<string, unknown>>(db)
      .insert({ _id: 'a00004', _rev: (await t.nano.use(db).get('a00004'))._rev, n: 99 });
    await t.nano.use<Record<string, unknown>>(db).insert({ _id: 'zzz', n: 1 });
    await events.waitCount('change', 3);
    await sleep(150);
    expect((await ref.readState()).ids).toEqual(['a00001', 'a00004', 'a00004']);
    const req = t.proxy.changesRequests[before];
    expect(req.method).toBe('POST');
    expect(req.url.searchParams.get('filter')).toBe('_doc_ids');
    expect(JSON.parse(req.body)).toEqual({ doc_ids: ['a00001', 'a00004'] });
    await ref.stop();
  });

  it('passes other _changes query parameters through', async () => {
    const t = target();
    const db = await t.createDb('passthrough');
    await writeDocs(t.nano.use(db), 'a', 1);
    const before = t.proxy.changesRequests.length;
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { style: 'all_docs', conflicts: true, heartbeat: 500 },
    });
    await events.waitCount('change', 1);
    expect(Object.fromEntries(t.proxy.changesRequests[before].url.searchParams)).toMatchObject({
      style: 'all_docs',
      conflicts: 'true',
    });
    await ref.stop();
  });

  it('sends basic auth (from the URL or db.auth) and custom headers on every request', async () => {
    const t = target();
    const db = await t.createDb('auth');
    await writeDocs(t.nano.use(db), 'a', 1);
    const auth = t.auth ?? { username: 'reader', password: 'p:w' };
    const before = t.proxy.changesRequests.length;
    const { ref, events } = await startProbe(Probe, {
      db: { url: t.dbUrl(db), auth, headers: { 'X-Request-Source': 'dgen-ts-test' } },
      options: { heartbeat: 300 },
    });
    await events.waitCount('change', 1);
    t.proxy.cutAll();
    await events.waitCount('connected', 2);
    const reqs = t.proxy.changesRequests.slice(before).filter((r) => r.url.pathname.includes(db));
    const basic = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    expect(reqs.length).toBeGreaterThanOrEqual(2);
    for (const r of reqs) {
      expect(r.headers.authorization).toBe(basic);
      expect(r.headers['x-request-source']).toBe('dgen-ts-test');
    }
    await ref.stop();

    const u = new URL(t.dbUrl(db));
    u.username = encodeURIComponent(auth.username);
    u.password = encodeURIComponent(auth.password);
    const inUrl = await startProbe(Probe, { db: u.toString(), options: { heartbeat: 300 } });
    await inUrl.events.waitCount('change', 1);
    expect(t.proxy.changesRequests[t.proxy.changesRequests.length - 1].headers.authorization).toBe(basic);
    await inUrl.ref.stop();
  });

  it('reassembles rows split across network chunks (7-byte pieces)', async () => {
    const t = target();
    const db = await t.createDb('fragments');
    await writeDocs(t.nano.use(db), 'ü', 20, (i) => ({ text: '€𝄞'.repeat(i) }));
    t.proxy.fragment(7);
    try {
      const { ref, events } = await startProbe(Probe, {
        db: t.dbTarget(db),
        options: { includeDocs: true, heartbeat: 2000 },
      });
      await events.waitCount('change', 20);
      const s = await ref.readState();
      expect(s.ids).toEqual(Array.from({ length: 20 }, (_, i) => `ü${String(i).padStart(5, '0')}`));
      expect(s.docs.map((d) => d?.text)).toEqual(Array.from({ length: 20 }, (_, i) => '€𝄞'.repeat(i)));
      await ref.stop();
    } finally {
      t.proxy.fragment(0);
    }
  });

  it('a last_seq row ends the feed cleanly: the next request resumes from it at once', async () => {
    const t = target();
    const db = await t.createDb('lastseq');
    await writeDocs(t.nano.use(db), 'a', 2);
    const seqs = await seqsOf(t, db);
    t.proxy.answer({
      status: 200,
      chunks: [
        `{"seq":${JSON.stringify(seqs[0].seq)},"id":"a00000","changes":[{"rev":"1-x"}]}\n\n`,
        `{"last_seq":${JSON.stringify(seqs[0].seq)},"pending":1}\n`,
      ],
    });
    const before = t.proxy.changesRequests.length;
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 500 },
    });
    await events.waitCount('change', 2);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001']);
    const reqs = t.proxy.changesRequests.slice(before);
    expect(reqs[1].url.searchParams.get('since')).toBe(String(seqs[0].seq));
    expect(events.of('reconnecting')).toEqual([]);
    await ref.stop();
  });

  it('an error row goes to @OnError as FeedError(error-row); retry continues the feed', async () => {
    const t = target();
    const db = await t.createDb('errorrow');
    await writeDocs(t.nano.use(db), 'a', 2);
    t.proxy.answer({ status: 200, chunks: ['{"error":"unknown_error","reason":"function_clause"}\n'] });
    const errors: FeedError[] = [];
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 500, jitterMs: 10 },
      onError: (err: unknown, s: ProbeState) => {
        errors.push(err as FeedError);
        return errors.length > 5 ? stop('too many', s) : retry(s);
      },
    });
    await events.waitCount('change', 2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'FEED_FAILED',
      kind: 'error-row',
      error: 'unknown_error',
      reason: 'function_clause',
    });
    await ref.stop();
  });
});
