/**
 * The handlers of one role, by tag. A message `m` goes to the handler tagged `m` (a string message)
 * or `m.type`; otherwise to the untagged fallback, if there is one.
 */
export class DispatchTable {
  private readonly tagged = new Map<string, string | symbol>();
  private fallback?: string | symbol;

  /** Returns false when the tag (or the fallback) is already taken. */
  add(tag: string | undefined, method: string | symbol): boolean {
    if (tag === undefined) {
      if (this.fallback !== undefined) return false;
      this.fallback = method;
      return true;
    }
    if (this.tagged.has(tag)) return false;
    this.tagged.set(tag, method);
    return true;
  }

  get isEmpty(): boolean {
    return this.tagged.size === 0 && this.fallback === undefined;
  }

  match(msg: unknown): string | symbol | undefined {
    if (typeof msg === 'string') {
      const m = this.tagged.get(msg);
      if (m !== undefined) return m;
    } else if (typeof msg === 'object' && msg !== null) {
      const type = (msg as { type?: unknown }).type;
      if (typeof type === 'string') {
        const m = this.tagged.get(type);
        if (m !== undefined) return m;
      }
    }
    return this.fallback;
  }
}

/** A short description of a message for error texts. */
export function describeMessage(msg: unknown): string {
  if (typeof msg === 'string') return JSON.stringify(msg);
  if (typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string')
    return `{ type: ${JSON.stringify((msg as { type: string }).type)} }`;
  return typeof msg;
}
