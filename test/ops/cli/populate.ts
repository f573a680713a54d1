import 'reflect-metadata';
import { openBackend } from '../../../src/backend/open-backend';
import { DurableServer, Init, OnCall, OnCast } from '../../../src/decorators';
import { noreply, ok, reply } from '../../../src/returns';
import { Runtime } from '../../../src/facade/runtime';

export interface Rich {
  n: number;
  tags: Set<string>;
  byName: Map<string, bigint>;
  when: Date;
  raw: Buffer;
}

/** A server whose state has every type JSON lacks, and casts that can fail. */
@DurableServer({ name: 'inspected' })
export class Inspected {
  @Init() init(id: string) {
    return ok<Rich>(
      {
        n: 0,
        tags: new Set(['a', 'b']),
        byName: new Map([['big', 12345678901234567890n]]),
        when: new Date('2026-01-02T03:04:05.000Z'),
        raw: Buffer.from([1, 2, 3]),
      },
      ['inspected', id],
    );
  }
  @OnCast('add') add(m: { by: number }, s: Rich) {
    return noreply({ ...s, n: s.n + m.by });
  }
  @OnCast('fail') fail(m: { n: number }): never {
    throw new Error(`cannot handle ${m.n}`);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: Rich) {
    return reply(s.n, s);
  }
}

/**
 * Fills `file`: tenant app/a with servers x (2 dead letters) and y (3 queued casts, not consumed),
 * tenant app/b with server z. Returns when everything is stored; nothing keeps running.
 */
export async function populate(spec: string): Promise<void> {
  const backend = await openBackend(spec);
  const a = await backend.openTenant(['app', 'a']);
  const b = await backend.openTenant(['app', 'b']);
  const x = await Runtime.start(Inspected, 'x', { tenant: a, maxAttempts: 1 });
  await x.castMany([
    { type: 'fail', n: 1 },
    { type: 'add', by: 5 },
    { type: 'fail', n: 2 },
  ]);
  while ((await x.deadLetters()).length < 2 || (await x.queueLength()) > 0)
    await new Promise((r) => setTimeout(r, 10));
  await x.stop();
  const y = await Runtime.start(Inspected, 'y', { tenant: a, consume: false });
  await y.castMany([
    { type: 'add', by: 1 },
    { type: 'add', by: 2 },
    { type: 'add', by: 3 },
  ]);
  await y.stop();
  const z = await Runtime.start(Inspected, 'z', { tenant: b, consume: false });
  await z.stop();
  await backend.close();
}

if (require.main === module) void populate(process.argv[2]);
