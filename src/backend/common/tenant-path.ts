import * as tuple from 'fdb-tuple';
import { describeValue, isWellFormed } from '../../text';
import { BadArgumentError } from '../../errors';

/**
 * A tenant path: a non-empty array of non-empty, well-formed strings. Keys store text as UTF-8, where a
 * lone surrogate would become U+FFFD, so ['\uD800'] and ['\uFFFD'] would silently be one tenant.
 */
export function checkTenantPath(path: unknown): readonly string[] {
  if (!Array.isArray(path) || path.length === 0 || !path.every((p) => typeof p === 'string' && p.length > 0))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `a tenant path is a non-empty array of non-empty strings, e.g. ['app', 'counters'] (got ${describeValue(path)})`,
    );
  const bad = (path as string[]).findIndex((p) => !isWellFormed(p));
  if (bad >= 0)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `tenant path element ${bad} holds a lone UTF-16 surrogate, which keys cannot store (got ${describeValue(path)})`,
    );
  return Object.freeze([...(path as string[])]);
}

/**
 * The key prefix of a tenant on backends without a directory layer: the path packed as one nested
 * tuple, so ['a'] and ['a', 'b'] never share keys, while `subtreeRange` still covers a tenant and
 * every tenant below it.
 */
export function tenantPrefix(path: readonly string[]): Buffer {
  return tuple.pack([[...path]]);
}

export function subtreeRange(path: readonly string[]): { start: Buffer; end: Buffer } {
  const open = tenantPrefix(path).subarray(0, -1); // drop the nested tuple's terminator
  const end = Buffer.from(open);
  end[end.length - 1]++;
  return { start: open, end };
}
