import type { Seq } from './change-row';
import type { ResolvedDb } from './db-target';
import type { ResolvedOptions } from './follow-options';

/** Everything one `_changes` request needs. */
export interface FeedRequest {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Builds the `_changes` request for a connection that starts after `since`. */
export function buildFeedRequest(
  db: ResolvedDb,
  options: ResolvedOptions,
  since: Seq | undefined,
): FeedRequest {
  const url = new URL(db.changesUrl);
  const q = url.searchParams;
  q.set('feed', options.feed);
  q.set('heartbeat', String(options.heartbeat));
  q.set('timeout', String(options.timeout));
  if (since !== undefined) q.set('since', String(since));
  if (options.includeDocs) q.set('include_docs', 'true');
  for (const [key, value] of options.extra) q.set(key, value);
  if (options.docIds !== undefined) {
    q.set('filter', '_doc_ids');
    return {
      url: url.toString(),
      method: 'POST',
      headers: { ...db.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ doc_ids: options.docIds }),
    };
  }
  if (options.filter !== undefined) q.set('filter', options.filter);
  return { url: url.toString(), method: 'GET', headers: db.headers };
}
