import type { Backend } from '../backend/types';
import { listServers, type ServerSummary } from './inspect';

export interface Sample extends ServerSummary {
  /** Messages enqueued / handled per second since the previous sample (null on the first). */
  inRate: number | null;
  outRate: number | null;
}

/**
 * Samples every indexed server (or those of one tenant) and turns the queues' push/pop counters into
 * rates between two samples. Keeps two counters per server between samples.
 */
export class Sampler {
  private previous = new Map<string, { pushed: number; popped: number; at: number }>();

  constructor(
    private readonly backend: Backend,
    private readonly tenant?: readonly string[],
  ) {}

  /** Every server, a page at a time, with rates; `each` sees them in index order. */
  async sample(each: (s: Sample) => void): Promise<void> {
    const seen = new Map<string, { pushed: number; popped: number; at: number }>();
    for await (const page of listServers(this.backend, this.tenant)) {
      const now = Date.now();
      for (const s of page) {
        const id = serverId(s);
        const before = this.previous.get(id);
        const secs = before ? (now - before.at) / 1000 : 0;
        seen.set(id, { pushed: s.pushed, popped: s.popped, at: now });
        each({
          ...s,
          inRate: before && secs > 0 ? (s.pushed - before.pushed) / secs : null,
          outRate: before && secs > 0 ? (s.popped - before.popped) / secs : null,
        });
      }
    }
    this.previous = seen; // servers killed since are forgotten
  }
}

export const serverId = (s: { tenant: readonly string[]; tuid: readonly unknown[] }): string =>
  JSON.stringify([s.tenant, s.tuid]);
