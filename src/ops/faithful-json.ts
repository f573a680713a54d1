/**
 * A stored value as JSON without losing what JSON cannot say: types JSON lacks become one-key objects
 * tagged with `$`: `{"$map": [[k, v], …]}`, `{"$set": […]}`, `{"$date": "ISO"}`, `{"$bigint": "123"}`,
 * `{"$bytes": "base64", "type": "Buffer"}`, `{"$regexp": "/a/g"}`, `{"$undefined": true}`,
 * `{"$number": "NaN" | "Infinity" | "-Infinity" | "-0"}`. Shared references are repeated, a cycle is
 * shown as `{"$cycle": true}`.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function toFaithfulJson(value: unknown, seen: Set<object> = new Set()): Json {
  switch (typeof value) {
    case 'undefined':
      return { $undefined: true };
    case 'bigint':
      return { $bigint: value.toString() };
    case 'number':
      if (Object.is(value, -0)) return { $number: '-0' };
      return Number.isFinite(value) ? value : { $number: String(value) };
    case 'string':
    case 'boolean':
      return value;
    case 'function':
    case 'symbol':
      return { $unsupported: String(value) };
  }
  if (value === null) return null;
  const obj = value as object;
  if (value instanceof Date)
    return { $date: Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString() };
  if (value instanceof RegExp) return { $regexp: String(value) };
  if (ArrayBuffer.isView(value))
    return {
      $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'),
      type: value.constructor.name,
    };
  if (seen.has(obj)) return { $cycle: true };
  seen.add(obj);
  try {
    if (value instanceof Map)
      return { $map: [...value].map(([k, v]) => [toFaithfulJson(k, seen), toFaithfulJson(v, seen)]) };
    if (value instanceof Set) return { $set: [...value].map((v) => toFaithfulJson(v, seen)) };
    if (Array.isArray(value)) return value.map((v) => toFaithfulJson(v, seen));
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(obj)) out[k] = toFaithfulJson(v, seen);
    return out;
  } finally {
    seen.delete(obj);
  }
}
