import { BadArgumentError } from '../errors';

/**
 * Fractional indexing: string keys that sort bytewise (plain ASCII) and that always leave room for
 * another key between any two of them, so an ordered list can be stored one key per item and an item
 * can be inserted or moved by writing only its own key.
 *
 * A key is a non-empty string of base-62 digits (`0-9A-Za-z`, in ASCII order) that does not end in
 * `0`: a key ending in the smallest digit would have no key directly below its prefix
 * (nothing fits between `V` and `V0`).
 *
 * Placement (why it is not just the midpoint). Repeated insertion at the same spot — always after
 * the same item, always before it, appending, prepending — halves the gap every time with midpoints,
 * so keys grow by one character every ~6 insertions (~1,700 characters after 10,000). Instead:
 * - appending / prepending take the next key up / down at the same length, growing by
 *   {@link RUN_GROWTH} digits (62² more places) when a length is used up;
 * - between two keys whose lengths differ by {@link RUN_GROWTH} or more — the signature of a run of
 *   insertions at one spot, where the longer key is the newest — the new key goes right next to the
 *   longer one, leaving nearly all of the gap for the next insertion;
 * - otherwise (fresh space such as {@link nFirst} gives, or insertions scattered around) the gap is
 *   split at the midpoint, growing one digit at a time; the first few insertions of a run do this
 *   until the lengths differ enough.
 * No stateless rule suits every pattern: inserting repeatedly between the two newest keys ("always in
 * the middle of the list") still costs about one character per six insertions, like midpoints do.
 * test/codec/frac-index.test.ts measures the lengths each pattern reaches.
 */

export const FRAC_DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE = 62n;
/**
 * Digits added when a run of insertions at one spot has used up the current length (62² more
 * places); also how much longer one neighbour must be than the other to count as such a run.
 */
const RUN_GROWTH = 2;

const DIGIT_VALUE: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < FRAC_DIGITS.length; i++) t[FRAC_DIGITS.charCodeAt(i)] = i;
  return t;
})();

/** Whether `key` is a well-formed fractional index key. */
export function isFracKey(key: unknown): key is string {
  if (typeof key !== 'string' || key.length === 0 || key.charCodeAt(key.length - 1) === 48 /* '0' */) {
    return false;
  }
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 128 || DIGIT_VALUE[c] < 0) return false;
  }
  return true;
}

function check(key: string | undefined, name: string): void {
  if (key !== undefined && !isFracKey(key)) {
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `fractional index ${name} ${JSON.stringify(key)} is not a key made by this module (base-62 digits, not ending in "0")`,
    );
  }
}

function checkOrder(a: string | undefined, b: string | undefined): void {
  check(a, 'lower bound');
  check(b, 'upper bound');
  if (a !== undefined && b !== undefined && !(a < b)) {
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `fractional index bounds out of order: ${JSON.stringify(a)} must sort before ${JSON.stringify(b)}`,
    );
  }
}

/** `key` right-padded with zeros to `len` digits, as an integer. */
function toInt(key: string, len: number): bigint {
  let n = 0n;
  for (let i = 0; i < len; i++) n = n * BASE + BigInt(i < key.length ? DIGIT_VALUE[key.charCodeAt(i)] : 0);
  return n;
}

function toKey(n: bigint, len: number): string {
  const out = new Array<string>(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = FRAC_DIGITS[Number(n % BASE)];
    n /= BASE;
  }
  return out.join('');
}

const endsInZero = (n: bigint): boolean => n % BASE === 0n;

/** Integer bounds of the open interval (a, b) at `len` digits; missing bounds are the ends of the space. */
function bounds(a: string | undefined, b: string | undefined, len: number): [bigint, bigint] {
  return [a === undefined ? 0n : toInt(a, len), b === undefined ? BASE ** BigInt(len) : toInt(b, len)];
}

/** The key of `len` digits nearest the middle of (a, b), if one fits. */
function midAt(a: string | undefined, b: string | undefined, len: number): string | undefined {
  const [lo, hi] = bounds(a, b, len);
  if (hi - lo < 2n) return undefined;
  let m = (lo + hi) / 2n;
  if (endsInZero(m)) {
    if (m + 1n < hi) m += 1n;
    else if (m - 1n > lo) m -= 1n;
    else return undefined;
  }
  return toKey(m, len);
}

/** The smallest key of `len` digits above `a` and below `b`, if one fits. */
function justAbove(a: string, b: string | undefined, len: number): string | undefined {
  const [lo, hi] = bounds(a, b, len);
  let c = lo + 1n;
  if (endsInZero(c)) c += 1n;
  return c < hi ? toKey(c, len) : undefined;
}

/** The largest key of `len` digits below `b` and above `a`, if one fits. */
function justBelow(a: string | undefined, b: string, len: number): string | undefined {
  const [lo, hi] = bounds(a, b, len);
  let c = hi - 1n;
  if (endsInZero(c)) c -= 1n;
  return c > lo ? toKey(c, len) : undefined;
}

/** The midpoint key of the whole space (one character). */
export function first(): string {
  return FRAC_DIGITS[31];
}

/**
 * A key strictly between `a` and `b`; `undefined` stands for the start or the end of the space.
 * Requires `a < b`.
 */
export function between(a?: string, b?: string): string {
  checkOrder(a, b);
  if (a === undefined && b === undefined) return first();
  let key: string | undefined;
  if (b === undefined) {
    // Appending: the next key up, so a run of appends walks through every slot of a length.
    const la = (a as string).length;
    key = justAbove(a as string, undefined, la);
    for (let l = la + RUN_GROWTH; key === undefined; l += RUN_GROWTH)
      key = justAbove(a as string, undefined, l);
    return key;
  }
  if (a === undefined) {
    const lb = b.length;
    key = justBelow(undefined, b, lb);
    for (let l = lb + RUN_GROWTH; key === undefined; l += RUN_GROWTH) key = justBelow(undefined, b, l);
    return key;
  }
  // Work below the common prefix: the arithmetic is the same and long keys stay cheap.
  let p = 0;
  while (p < a.length && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  return a.slice(0, p) + betweenSuffixes(a.slice(p), b.slice(p));
}

/** `between` for bounds that differ in their first digit (`a` may be empty: a prefix of `b`). */
function betweenSuffixes(a: string, b: string): string {
  let key: string | undefined;
  const len = Math.max(a.length, b.length);
  if (Math.abs(a.length - b.length) >= RUN_GROWTH) {
    // A run of insertions at one spot: the longer neighbour is the newest; sit right next to it.
    key = a.length > b.length ? justAbove(a, b, len) : justBelow(a, b, len);
    for (let l = len + RUN_GROWTH; key === undefined; l += RUN_GROWTH) key = midAt(a, b, l);
  } else {
    // Fresh or balanced space: split it, growing one digit at a time as midpoint keys do.
    key = midAt(a, b, len);
    for (let l = len + 1; key === undefined; l++) key = midAt(a, b, l);
  }
  return key;
}

/** A key that sorts before `b`. */
export function before(b: string): string {
  return between(undefined, b);
}

/** A key that sorts after `a`. */
export function after(a: string): string {
  return between(a, undefined);
}

/**
 * `n` ascending keys strictly between `a` and `b` (either may be `undefined` for an open end),
 * evenly spaced at the shortest length that fits them, so later insertions anywhere have room.
 */
export function nBetween(a: string | undefined, b: string | undefined, n: number): string[] {
  checkOrder(a, b);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new BadArgumentError('BAD_ARGUMENT', `nBetween needs a non-negative integer count, got ${n}`);
  }
  if (n === 0) return [];
  if (n === 1) return [between(a, b)];
  const count = BigInt(n);
  for (let len = Math.max(a?.length ?? 0, b?.length ?? 0, 1); ; len++) {
    const [lo, hi] = bounds(a, b, len);
    // A step of at least 2 leaves room to skip a key ending in "0" without reaching the next one.
    if (hi - lo < 2n * (count + 1n)) continue;
    const span = hi - lo;
    const keys = new Array<string>(n);
    for (let i = 1n; i <= count; i++) {
      let c = lo + (span * i) / (count + 1n);
      if (endsInZero(c)) c += 1n;
      keys[Number(i) - 1] = toKey(c, len);
    }
    return keys;
  }
}

/** `n` ascending keys spread over the whole space (for writing a list from scratch). */
export function nFirst(n: number): string[] {
  return nBetween(undefined, undefined, n);
}
