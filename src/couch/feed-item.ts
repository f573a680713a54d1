import { isSeq, type ChangeRow, type Seq } from './change-row';
import { FeedError } from './feed-error';

/** What one line (continuous) or one answer (longpoll) of a `_changes` feed says. */
export type FeedItem =
  | { readonly kind: 'row'; readonly row: ChangeRow }
  /** A blank line: the server's heartbeat. */
  | { readonly kind: 'heartbeat' }
  /** The end of a feed: resume after this seq. */
  | { readonly kind: 'last_seq'; readonly seq: Seq }
  /** `{"error": …, "reason": …}` in place of rows. */
  | { readonly kind: 'error'; readonly error: string; readonly reason?: string }
  /** Valid JSON that is none of the above: reported (kind `protocol`), never delivered. */
  | { readonly kind: 'invalid'; readonly error: FeedError };

export const HEARTBEAT: FeedItem = Object.freeze({ kind: 'heartbeat' });

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
};

const invalid = (what: string, value: unknown): FeedItem => ({
  kind: 'invalid',
  error: new FeedError('protocol', `the feed sent ${what}; skipped: ${show(value)}`),
});

/**
 * Classifies one parsed JSON value from a feed. A row is delivered only with a valid seq (a
 * non-empty string or a finite number) and a string id: anything else would be handed to
 * `@OnChange` as a row it cannot trust, or become the `since` of the next request.
 */
export function classify(value: unknown): FeedItem {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return invalid('a line that is not a JSON object', value);
  const v = value as Record<string, unknown>;
  if (typeof v.id === 'string' && isSeq(v.seq)) return { kind: 'row', row: v as unknown as ChangeRow };
  if (v.error !== undefined)
    return {
      kind: 'error',
      error: String(v.error),
      reason: v.reason === undefined ? undefined : String(v.reason),
    };
  if (isSeq(v.last_seq)) return { kind: 'last_seq', seq: v.last_seq };
  if (v.last_seq !== undefined && v.last_seq !== null)
    return invalid('a last_seq that is not a seq (a non-empty string or a finite number)', value);
  return invalid('a row without a valid seq (a non-empty string or a finite number) and string id', value);
}
