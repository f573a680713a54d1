import { inspect } from 'node:util';

/**
 * Whether `s` is well-formed UTF-16 (no lone surrogate). Keys and values store text as UTF-8, where a
 * lone surrogate has no encoding and would silently become U+FFFD, so such strings are refused.
 */
export const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

/**
 * A short, safe rendering of any input for an error message: BigInt, symbols, functions and cycles
 * included (JSON.stringify throws on the first and last), long values cut.
 */
export function describeValue(value: unknown, maxLength = 120): string {
  const text = inspect(value, { depth: 2, breakLength: Infinity, maxArrayLength: 10, maxStringLength: 80 });
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}
