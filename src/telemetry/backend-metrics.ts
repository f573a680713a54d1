import type * as OtelApi from '@opentelemetry/api';
import { INSTRUMENTATION, otel } from './otel';

let counter: { provider: OtelApi.MeterProvider; value: OtelApi.Counter } | undefined;

/**
 * Called by a backend's transaction loop each time an attempt fails with a retryable error (a
 * conflict, or FoundationDB's retryable codes): `dgen.transaction.conflicts`, by backend kind and code.
 */
export function countConflict(backend: string, code: string): void {
  const a = otel();
  if (!a) return;
  const provider = a.metrics.getMeterProvider();
  if (counter?.provider !== provider)
    counter = {
      provider,
      value: provider.getMeter(INSTRUMENTATION).createCounter('dgen.transaction.conflicts', {
        description:
          'Transaction attempts that failed with a retryable conflict (and were retried or gave up)',
      }),
    };
  counter.value.add(1, { 'dgen.backend': backend, 'dgen.error.code': code });
}
