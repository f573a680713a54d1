import type { Watch } from '../backend/types';
import type { Handling, Outcome } from './handling';
import type { Skipped } from './plan-batch';
import type { ServerContext } from './server-context';

/** How a consumer step ended: it handled messages (go on), or it waits on a watch or until a time. */
export type Step = { type: 'handled' } | { type: 'wait'; watch?: Watch; retryAt?: number };

/** What a consumer transaction leaves: handled messages (and a watch if it emptied the queue), or a watch. */
export type StepResult =
  | { done: Array<Outcome | Skipped>; wait?: Watch; retryAt?: undefined }
  | { done?: undefined; wait: Watch; retryAt?: number };

/** After the commit: the handled messages' events, actions and replies; then wait or go on. */
export async function afterCommit(ctx: ServerContext, handling: Handling, r: StepResult): Promise<Step> {
  if (!r.done) return { type: 'wait', watch: r.wait, retryAt: r.retryAt };
  try {
    for (const d of r.done) {
      if ('result' in d) await handling.finish(d);
      else {
        ctx.emit({ type: 'handler-failed', kind: d.call ? 'call' : 'cast', error: d.skipped, attempt: 1 });
        if (!d.call) ctx.emit({ type: 'dead-lettered', msg: d.msg });
      }
    }
  } catch (error) {
    r.wait?.cancel();
    throw error;
  }
  return r.wait ? { type: 'wait', watch: r.wait } : { type: 'handled' };
}
