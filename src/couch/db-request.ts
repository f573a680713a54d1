import type { ResolvedDb } from './db-target';

/** At most this long (and twice the heartbeat) for each request of the check. */
export const TIMEOUT_MS = 10_000;

/** The server could not be asked (no connection): ask again before the next connection. */
export const UNREACHABLE = Symbol('unreachable');

/** A larger answer is neither a database's info nor a one-revision `_revs_diff`: the asker gives up. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** GETs (or POSTs `body` to) `path` of the database: its JSON answer, undefined when it has none, or
 * UNREACHABLE. */
export async function ask(db: ResolvedDb, path: string, timeoutMs: number, body?: unknown): Promise<unknown> {
  const parts: Uint8Array[] = [];
  try {
    const res = await fetch(`${db.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? db.headers : { ...db.headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // another status: the server cannot tell us (no right to ask, …); the feed reports real trouble
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      return undefined;
    }
    const reader = res.body.getReader();
    for (let size = 0; ;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_ANSWER_BYTES) {
        await reader.cancel();
        return undefined;
      }
      parts.push(value);
    }
  } catch {
    return UNREACHABLE;
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    return undefined;
  }
}
