/**
 * Type tests, compiled by `npm run typecheck` (never run): each `@ts-expect-error` line must be a
 * compile error, or the typecheck fails. What Runtime.start infers from a class (issue #11, #12).
 */
import 'reflect-metadata';
import type { Tenant } from '../../src/backend/types';
import { ChangesFollower, follow, OnChange } from '../../src/couch';
import type { FollowerRef } from '../../src/couch';
import { DurableServer, Init, OnCall, OnCast } from '../../src/decorators';
import { noreply, ok, reply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import type { ServerRef } from '../../src/runtime/server-ref';
import type { HandlerContext } from '../../src/runtime/context/handler-context';

@DurableServer({ name: 'typed-counter' })
class Counter {
  @Init() init(start: number) {
    return ok(start);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
  @OnCall('label') label(m: { type: 'label'; prefix: string }, _f: unknown, n: number) {
    return reply(`${m.prefix}${n}`, n);
  }
  @OnCast('add') add(m: { type: 'add'; by: number }, n: number) {
    return noreply(n + m.by);
  }
  // With their ctx (issue #13): still a call and a cast on the client.
  @OnCall('peek') peek(_m: unknown, _f: unknown, n: number, _ctx: HandlerContext) {
    return reply(String(n), n);
  }
  @OnCast('later') later(m: { type: 'later'; ms: number }, n: number, ctx: HandlerContext) {
    ctx.castAfter(m.ms, 'get');
    return noreply(n);
  }
}

@ChangesFollower()
class Follower {
  @Init() init(url: string) {
    return follow(url, { seen: 0 });
  }
  @OnChange() change(_c: unknown, s: { seen: number }) {
    return ok({ seen: s.seen + 1 });
  }
}

export async function typeTests(tenant: Tenant): Promise<void> {
  // A durable server needs { tenant }; its ref and state types come from the class.
  const ref = await Runtime.start(Counter, 0, { tenant });
  const asServer: ServerRef<number> = ref;
  const n: number = await ref.readState();
  // @ts-expect-error the state is a number, not a string
  const s: string = await ref.readState();

  // @ts-expect-error a durable server without a tenant
  await Runtime.start(Counter, 0, {});
  // @ts-expect-error a durable server without options at all
  await Runtime.start(Counter, 0);
  // @ts-expect-error a misspelled option
  await Runtime.start(Counter, 0, { tenant, tennant: tenant });
  // @ts-expect-error an option of the wrong type
  await Runtime.start(Counter, 0, { tenant, maxBatch: '32' });

  // A follower takes no tenant, and options are optional.
  const f = await Runtime.start(Follower, 'http://127.0.0.1:5984/db');
  const asFollower: FollowerRef<{ seen: number }> = f;
  const seen: number = (await f.readState()).seen;
  await Runtime.start(Follower, 'http://127.0.0.1:5984/db', { name: 'f' });
  // @ts-expect-error a follower given a tenant
  await Runtime.start(Follower, 'http://127.0.0.1:5984/db', { tenant });
  // @ts-expect-error a follower ref is not a durable server ref
  const wrong: ServerRef<{ seen: number }> = f;

  // ref.client: the class's handlers as typed methods.
  const got: number = await ref.client.get();
  const labelled: string = await ref.client.label({ type: 'label', prefix: '#' }, { timeout: 1000 });
  const added: void = await ref.client.add({ type: 'add', by: 2 });
  const peeked: string = await ref.client.peek();
  const later: void = await ref.client.later({ type: 'later', ms: 10 });
  // @ts-expect-error a cast with ctx takes its message, not call options
  await ref.client.later({ type: 'later', ms: 10 }, { timeout: 5 });
  // @ts-expect-error the reply of get is a number
  const notString: string = await ref.client.get();
  // @ts-expect-error add's message needs `by`
  await ref.client.add({ type: 'add' });
  // @ts-expect-error label needs its message
  await ref.client.label();
  // @ts-expect-error init is not a message handler
  await ref.client.init(0);
  // @ts-expect-error no such handler
  await ref.client.nope();
  const untyped: ServerRef<number> = ref; // a typed ref is a ServerRef
  void untyped.client.anything;

  // The state type given by hand still works for both kinds.
  const byHand = await Runtime.start<number>(Counter, 0, { tenant });
  const m: number = await byHand.readState();
  const followerByHand = await Runtime.start<{ seen: number }>(Follower, 'http://127.0.0.1:5984/db');
  void [
    asServer,
    n,
    s,
    asFollower,
    seen,
    wrong,
    m,
    followerByHand,
    got,
    labelled,
    added,
    notString,
    peeked,
    later,
  ];
}
