import type { Clock } from '../kernel/clock';

/**
 * The gen_server idle timeout of a follower (ICouch's `{:noreply, state, timeout}`): armed by a
 * handler's `noreply(s, actions, { timeout })` / `reply(v, s, actions, { timeout })`, it delivers the
 * info `'timeout'` when no other message — nor change row — arrives within that many ms. Anything
 * handled meanwhile disarms it (or arms a new one with its own timeout). In memory, as the follower's
 * state is.
 */
export class IdleTimeout {
  private cancel: (() => void) | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly deliver: () => void,
  ) {}

  /** Something was handled: the wait for silence starts over (if `ms` is given) or ends. */
  reset(ms?: number): void {
    if (this.cancel) {
      this.cancel();
      this.cancel = undefined;
    }
    if (ms === undefined || ms === Infinity) return;
    const cancelled = { yes: false };
    const cancelTimer = this.clock.at(this.clock.now() + ms, () => {
      if (cancelled.yes) return;
      this.cancel = undefined;
      this.deliver();
    });
    this.cancel = () => {
      cancelled.yes = true;
      cancelTimer();
    };
  }
}
