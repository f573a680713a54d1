import { rememberFrozenKeys } from '../codec/frozen-keys';

/**
 * Freezes plain objects and arrays of a state, deeply. The runtime diffs a handler's new state against
 * the one it was given, so changing the given one in place would go unnoticed; frozen, it throws.
 * Already-frozen subtrees are skipped, so a state that shares most of its parts costs little.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
    return value;
  }
  const keys = Object.keys(value);
  rememberFrozenKeys(value, keys); // the codec's diff lists the same keys: once is enough
  const obj = value as Record<string, unknown>;
  for (let i = 0; i < keys.length; i++) deepFreeze(obj[keys[i]]);
  return value;
}
