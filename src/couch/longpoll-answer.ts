import { FeedError } from './feed-error';
import { classify, type FeedItem } from './feed-item';

/**
 * The items of one whole longpoll answer (`{ results: [...], last_seq }`), or the FeedError it
 * amounts to: `protocol` when it is not JSON or has no results array, `error-row` for CouchDB's
 * `{ error, reason }`. Bad rows inside `results` become `invalid` items (reported, not delivered).
 */
export function longpollItems(body: Buffer): FeedItem[] | FeedError {
  const text = body.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return new FeedError(
      'protocol',
      `the longpoll answer is not JSON: ${JSON.stringify(text.slice(0, 200))}`,
      {
        cause: err,
      },
    );
  }
  const head = classify(value);
  if (head.kind === 'error')
    return new FeedError(
      'error-row',
      `the feed reported ${head.error}${head.reason ? `: ${head.reason}` : ''}`,
      {
        error: head.error,
        reason: head.reason,
      },
    );
  const b = value as { results?: unknown; last_seq?: unknown };
  if (typeof value !== 'object' || value === null || !Array.isArray(b.results))
    return new FeedError(
      'protocol',
      `the longpoll answer has no results array: ${JSON.stringify(text.slice(0, 200))}`,
    );
  const items: FeedItem[] = b.results.map(classify);
  if (b.last_seq !== undefined && b.last_seq !== null) {
    const end = classify({ last_seq: b.last_seq });
    items.push(end);
  }
  return items;
}
