import { HandlerError } from '../errors';
import { deepFreeze } from '../kernel/freeze';
import { callHandler } from '../kernel/invoke';
import { getHandlerMeta } from '../decorators/metadata';
import type { ClassDefinition } from '../registry/class-definition';
import { returnKind, type OkReturn, type StopReturn } from '../returns';
import type { ChangeRow } from './change-row';
import type { FeedCursor } from './feed-cursor';
import { StopSignal, type FollowerCore } from './follower-core';

/**
 * Hands change rows to `@OnChange`: a handler tagged with a type gets the rows whose `doc.type` is
 * that type; the untagged one gets the rest.
 */
export class RowDispatch<S> {
  private readonly hasTags: boolean;

  constructor(
    private readonly core: FollowerCore<S>,
    private readonly cursor: FeedCursor,
  ) {
    this.hasTags = hasTaggedChangeHandlers(core.def);
  }

  /**
   * Handles one row: synchronous when the handler is (no promise per row on the hot path). Throws
   * (or rejects with) the handler's HANDLER_FAILED, or StopSignal for `stop(...)` and BAD_RETURN.
   */
  dispatch(row: ChangeRow): void | Promise<void> {
    const { core } = this;
    core.idle.reset();
    const method = this.methodFor(row);
    if (method === undefined) {
      this.cursor.handled(row);
      core.life.emit({ type: 'dropped', kind: 'change', msg: row });
      return;
    }
    let result: unknown;
    try {
      result = callHandler(core.def, core.instance, 'change', method, [row, core.state]);
    } catch (err) {
      throw this.failed(err);
    }
    if (result instanceof Promise)
      return result.then(
        (settled) => this.handled(row, settled),
        (err: unknown) => Promise.reject(this.failed(err)),
      );
    this.handled(row, result);
  }

  private handled(row: ChangeRow, result: unknown): void {
    const r = result as OkReturn<S> | StopReturn<S>;
    this.core.state = deepFreeze(r.state);
    this.cursor.handled(row);
    if (this.core.life.observed) this.core.life.emit({ type: 'change', seq: row.seq, id: row.id, row });
    if (returnKind(r) === 'stop') throw new StopSignal((r as StopReturn<S>).reason);
  }

  /** A wrong return stops the follower at once; a throw goes on to `@OnError` (see ConnectionPolicy). */
  private failed(err: unknown): unknown {
    if (err instanceof HandlerError && err.code === 'BAD_RETURN') {
      this.core.life.emit({ type: 'handler-failed', kind: 'change', error: err, attempt: 1 });
      return new StopSignal(err);
    }
    return err;
  }

  private methodFor(row: ChangeRow): string | symbol | undefined {
    const table = this.core.def.tables.change;
    if (!this.hasTags) return table.match(undefined);
    const type = row.doc !== undefined && row.doc !== null ? (row.doc as { type?: unknown }).type : undefined;
    return typeof type === 'string' ? table.match(type) : table.match(row);
  }
}

function hasTaggedChangeHandlers(def: ClassDefinition): boolean {
  return getHandlerMeta(def.ctor).some((h) => h.role === 'change' && h.tag !== undefined);
}
