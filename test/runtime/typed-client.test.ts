/**
 * ref.client: a server's @OnCall/@OnCast methods as methods of the ref (typed from the class; the
 * type cases are in test/types/start.types.ts). Each goes through the same call/cast as the
 * message-based API.
 */
import 'reflect-metadata';
import { DurableServer, Init, OnCall, OnCast, OnInfo } from '../../src/decorators';
import { noreply, ok, reply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import { freshTenantEachTest, runtimeBackends, waitFor } from './backends';

@DurableServer({ name: 'tally' })
class Tally {
  @Init() init() {
    return ok({ n: 0, log: [] as string[] });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: { n: number; log: string[] }) {
    return reply(s.n, s);
  }
  @OnCall('describe') describe(
    m: { type: 'describe'; prefix: string },
    _f: unknown,
    s: { n: number; log: string[] },
  ) {
    return reply(`${m.prefix}${s.n}`, s);
  }
  @OnCast('add') add(m: { type: 'add'; by: number }, s: { n: number; log: string[] }) {
    return noreply({ ...s, n: s.n + m.by });
  }
  @OnCast() note(m: { text: string }, s: { n: number; log: string[] }) {
    return noreply({ ...s, log: [...s.log, m.text] });
  }
  @OnInfo('tick') tick(_m: unknown, s: { n: number; log: string[] }) {
    return noreply(s);
  }
}

describe.each(runtimeBackends)('ref.client on %s', (_name, make) => {
  const fx = freshTenantEachTest(make, 'client');

  test('calls and casts by method name, through the queue from a non-consuming process', async () => {
    await Runtime.start(Tally, undefined, { tenant: fx.tenant });
    const ref = await Runtime.start(Tally, undefined, { tenant: fx.tenant, consume: false });
    await ref.client.add({ type: 'add', by: 5 });
    await ref.client.note({ text: 'hello' }); // the untagged handler: the message as given
    await waitFor(async () => (await ref.readState()).log.length === 1);
    expect(await ref.client.get()).toBe(5); // a bare tag is sent when no message is given
    expect(await ref.client.describe({ type: 'describe', prefix: '#' }, { timeout: 4000 })).toBe('#5');
    expect(await ref.readState()).toEqual({ n: 5, log: ['hello'] });
  });

  test('what is not a call or cast handler is BAD_ARGUMENT, naming it', async () => {
    const ref = await Runtime.start(Tally, undefined, { tenant: fx.tenant });
    const client = ref.client as unknown as Record<string, () => Promise<unknown>>;
    for (const name of ['init', 'tick', 'nope'])
      expect(() => client[name]()).toThrow(
        expect.objectContaining({ code: 'BAD_ARGUMENT', message: expect.stringContaining(name) }),
      );
    // the untagged handler needs its message
    expect(() => client.note()).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });

  test('a stopped ref rejects through the client as through call', async () => {
    const ref = await Runtime.start(Tally, undefined, { tenant: fx.tenant });
    await ref.stop();
    await expect(ref.client.get()).rejects.toMatchObject({ code: 'STOPPED' });
  });
});
