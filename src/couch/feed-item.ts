import type { ChangeRow, Seq } from './change-row';

/** What one line (continuous) or one answer (longpoll) of a `_changes` feed says. */
export type FeedItem =
  | { readonly kind: 'row'; readonly row: ChangeRow }
  /** A blank line: the server's heartbeat. */
  | { readonly kind: 'heartbeat' }
  /** The end of a feed: resume after this seq. */
  | { readonly kind: 'last_seq'; readonly seq: Seq }
  /** `{"error": …, "reason": …}` in place of rows. */
  | { readonly kind: 'error'; readonly error: string; readonly reason?: string }
  /** Valid JSON that is none of the above (skipped). */
  | { readonly kind: 'other'; readonly value: unknown };

export const HEARTBEAT: FeedItem = Object.freeze({ kind: 'heartbeat' });

/** Classifies one parsed JSON object from a feed. */
export function classify(value: unknown): FeedItem {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (typeof v.id === 'string' && v.seq !== undefined && v.seq !== null)
      return { kind: 'row', row: v as unknown as ChangeRow };
    if (v.error !== undefined)
      return {
        kind: 'error',
        error: String(v.error),
        reason: v.reason === undefined ? undefined : String(v.reason),
      };
    if (v.last_seq !== undefined && v.last_seq !== null) return { kind: 'last_seq', seq: v.last_seq as Seq };
  }
  return { kind: 'other', value };
}
