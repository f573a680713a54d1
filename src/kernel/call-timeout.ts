import { BadArgumentError } from '../errors';

/** setTimeout's longest delay; a longer (or Infinity) timeout waits this long (~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The timeout of one call, from its `{ timeout? }` options and the ref's default: a positive number
 * of ms, or Infinity. The one check both kinds of gen_server make (BAD_ARGUMENT otherwise).
 */
export function callTimeoutOf(options: unknown, dflt: number): number {
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `call(msg, options): options must be { timeout? } (got ${String(options)})`,
    );
  const t = (options as { timeout?: unknown } | undefined)?.timeout ?? dflt;
  if (typeof t !== 'number' || !(t > 0))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `call timeout must be a positive number of ms or Infinity (got ${String(t)})`,
    );
  return Math.min(t, MAX_TIMER_MS);
}
