import type { TransactOptions } from '../types';

/** TransactOptions.deferFlush's answer for a commit about to be made (a function asked now). */
export function defersFlush(deferFlush: TransactOptions['deferFlush']): boolean {
  if (typeof deferFlush !== 'function') return deferFlush === true;
  try {
    return deferFlush() === true;
  } catch {
    return false;
  }
}
