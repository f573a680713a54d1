import 'reflect-metadata';
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DurableServer, Init, OnCall, OnCast } from '../../../src/decorators';
import { noreply, ok, reply } from '../../../src/returns';

@DurableServer({ name: 'traced' })
export class Traced {
  @Init() init() {
    return ok(0);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
  @OnCast('add') add(m: { by: number }, n: number) {
    return noreply(n + m.by);
  }
  @OnCast('poison') poison(): never {
    throw new Error('poisoned');
  }
}

/** Registers an SDK tracer provider that keeps finished spans in memory. */
export function memoryTracing(): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  return exporter;
}

/** A span as it crosses a process boundary (JSON). */
export interface SpanRecord {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  status: number;
}

export const toRecord = (s: ReadableSpan): SpanRecord => ({
  name: s.name,
  traceId: s.spanContext().traceId,
  spanId: s.spanContext().spanId,
  parentSpanId: s.parentSpanContext?.spanId,
  attributes: { ...s.attributes },
  status: s.status.code,
});
