/**
 * `Object.keys` of large frozen objects, listed once. Listing the keys of an object with thousands of
 * properties is most of what a one-property update of it costs (V8 sorts a big object's keys), and the
 * runtime already lists them when it freezes a handler's new state. A frozen object's keys can never
 * change, so the list it made then serves the codec's diff as well.
 */
const listed = new WeakMap<object, readonly string[]>();

/** Objects smaller than this list their keys cheaply; remembering would only cost memory. */
export const REMEMBER_KEYS_FROM = 256;

/** Records the keys of `obj`, which the caller has just frozen and listed. */
export function rememberFrozenKeys(obj: object, keys: readonly string[]): void {
  if (keys.length >= REMEMBER_KEYS_FROM && Object.isFrozen(obj)) listed.set(obj, keys);
}

/** `Object.keys(obj)`, from the remembered list when there is one. */
export function ownKeys(obj: object): readonly string[] {
  return listed.get(obj) ?? Object.keys(obj);
}
