import { BadArgumentError } from '../errors';
import { handlerDecorator } from '../decorators/handler-decorators';
import { checkVersionOption } from '../decorators/durable-server';
import { setClassMeta } from '../decorators/metadata';

export interface ChangesFollowerOptions {
  /** The follower's name: the default checkpoint key. Defaults to the class name. */
  name?: string;
  /**
   * The version of the state's shape, a positive integer (default 1), as a durable server's: a
   * checkpoint stored by an older version is upgraded (`@OnUpgrade`) when the follower starts; one
   * stored by a newer version is never touched (VERSION_AHEAD).
   */
  version?: number;
}

/**
 * Marks a class as a changes follower: `@Init` returns `follow(db, state, options)`, `@OnChange`
 * handles each row, `@OnError` decides what a feed failure does; `@OnCall`/`@OnCast`/`@OnInfo` work
 * as in an in-memory gen_server. Started with `Runtime.start(Class, arg, opts)`.
 */
export function ChangesFollower(options: ChangesFollowerOptions = {}): ClassDecorator {
  if (typeof options !== 'object' || options === null)
    throw new BadArgumentError('BAD_ARGUMENT', '@ChangesFollower(options) takes an object such as { name }');
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0))
    throw new BadArgumentError('BAD_ARGUMENT', '@ChangesFollower({ name }) takes a non-empty string');
  const version = checkVersionOption('ChangesFollower', options.version);
  return (target) =>
    setClassMeta(target, { kind: 'follower', decorator: 'ChangesFollower', name: options.name, version });
}

/**
 * Handles one change row: `(row, state) => ok(state) | stop(reason, state)` (may be async).
 * With a tag, it takes the rows whose `doc.type` (with `includeDocs`) or `type` equals the tag; the
 * untagged handler takes the rest. A handler that throws stops the follower with the error as the
 * reason, unless `@OnError` answers `retry(...)`.
 */
export const OnChange = (tag?: string): MethodDecorator => handlerDecorator('change', 'OnChange', tag);

/**
 * Decides what a failure does: `(error, state) => retry(state, waitMs?) | stop(reason, state)`.
 * Receives feed failures (a FeedError with code FEED_FAILED: an HTTP status other than 200 and 400,
 * a refused connection, an error row) and errors thrown by `@OnChange`. Without it, a feed failure
 * retries after 60 s and a throwing `@OnChange` stops the follower.
 */
export const OnError = (): MethodDecorator => handlerDecorator('error', 'OnError');
