import 'reflect-metadata';
import { trace } from '@opentelemetry/api';
import { MemoryBackend } from '../../../src/backend/memory/memory-backend';
import { Runtime } from '../../../src/facade/runtime';
import { memoryTracing, Traced } from './traced';

jest.setTimeout(60_000);

afterEach(async () => {
  await Runtime.stopAll();
  trace.disable();
});

test('a call handled inline (idle server, empty queue) has a handle span, the child of its call span', async () => {
  const spans = memoryTracing();
  const backend = new MemoryBackend();
  const ref = await Runtime.start(Traced, undefined, { tenant: await backend.openTenant(['i']) });
  expect(await ref.call('get')).toBe(0);
  const finished = spans.getFinishedSpans();
  const call = finished.find((s) => s.name === 'call')!;
  const handles = finished.filter((s) => s.name === 'handle');
  expect(handles).toHaveLength(1);
  const [handle] = handles;
  expect(handle.spanContext().traceId).toBe(call.spanContext().traceId);
  expect(handle.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
  expect(handle.attributes).toMatchObject({
    'dgen.server.class': 'Traced',
    'dgen.message.tag': 'get',
    'dgen.message.kind': 'call',
    'dgen.inline': true,
    'dgen.outcome': 'reply',
  });
  expect(handle.attributes['dgen.handler.ms']).toEqual(expect.any(Number));
  // the handle span lies within its call span
  const ms = (t: [number, number]) => t[0] * 1e3 + t[1] / 1e6;
  expect(ms(handle.startTime)).toBeGreaterThanOrEqual(ms(call.startTime) - 1);
  expect(ms(handle.endTime)).toBeLessThanOrEqual(ms(call.endTime) + 1);

  // a priority cast is handled outside the queue too: a handle span with no parent
  await ref.priorityCast({ type: 'add', by: 2 });
  const priority = spans
    .getFinishedSpans()
    .filter((s) => s.attributes['dgen.message.kind'] === 'priority-cast');
  expect(priority.map((s) => [s.name, s.attributes['dgen.outcome'], s.parentSpanContext])).toEqual([
    ['handle', 'noreply', undefined],
  ]);
  await backend.close();
});
