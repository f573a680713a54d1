type Method = string | symbol;
type Handlers = Record<Method, (x: unknown, y?: unknown, z?: unknown) => unknown>;

/** Calls a handler method with (a, b) — fixed arity, no arguments array on the hot path. */
export function invoke(instance: object, method: Method, a: unknown, b: unknown): unknown {
  return (instance as Handlers)[method].call(instance, a, b);
}

/** Calls a handler method with (a, b, c). */
export function invoke3(instance: object, method: Method, a: unknown, b: unknown, c: unknown): unknown {
  return (instance as Handlers)[method].call(instance, a, b, c);
}
