import { AsyncLocalStorage } from 'node:async_hooks';

/** The trace context a producer carries to the queue (W3C `traceparent`/`tracestate`), if tracing. */
export type TraceCarrier = Record<string, string>;

/** Fields the runtime adds to each queue item it pushes (older items have neither). */
export interface QueueItemExtras {
  /** Enqueue time, ms since the epoch: the inspector's "oldest queued message age". */
  at: number;
  trace?: TraceCarrier;
}

/**
 * The carrier of the `cast`/`call` span being sent, from the ref down to the queue push in its
 * transaction: an AsyncLocalStorage, entered only when telemetry is on (no cost otherwise), so it
 * does not depend on an OpenTelemetry context manager being registered.
 */
export const outgoingTrace = new AsyncLocalStorage<TraceCarrier>();

export function queueItemExtras(): QueueItemExtras {
  const trace = outgoingTrace.getStore();
  return trace ? { at: Date.now(), trace } : { at: Date.now() };
}
