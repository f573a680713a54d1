import { getClassMeta, getHandlerMeta, type ClassMeta, type HandlerRole } from '../decorators/metadata';
import { DefinitionError } from '../errors';
import { DispatchTable } from './dispatch-table';

/** A class as the runtime sees it: its kind, its name and one dispatch table per handler role. */
export interface ClassDefinition {
  readonly ctor: new () => object;
  readonly meta: ClassMeta;
  /** The name the default identity uses: `@DurableServer({ name })` or the class name. */
  readonly name: string;
  readonly init?: string | symbol;
  /** The `@OnTerminate` method, if any. */
  readonly terminate?: string | symbol;
  readonly tables: Readonly<Record<Exclude<HandlerRole, 'init' | 'terminate'>, DispatchTable>>;
  /** The `@OnCall` / `@OnCast` handlers by method name, with their tags (for typed clients). */
  readonly messageHandlers: ReadonlyMap<string | symbol, { role: 'call' | 'cast'; tag?: string }>;
}

const cache = new WeakMap<object, ClassDefinition>();

/**
 * Builds (once per class) the dispatch tables from the decorators' metadata, and rejects every
 * mistake up front so a bad class fails at `Runtime.start`, not at its first message.
 */
export function defineClass(ctor: unknown): ClassDefinition {
  if (typeof ctor !== 'function')
    throw new DefinitionError('BAD_DEFINITION', `Runtime.start takes a class (got ${typeof ctor})`);
  const known = cache.get(ctor);
  if (known) return known;
  const meta = getClassMeta(ctor);
  if (!meta)
    throw new DefinitionError(
      'BAD_DEFINITION',
      `class ${ctor.name || '(anonymous)'} has no @DurableServer() or @ChangesFollower() decorator; add one to start it`,
    );
  const tables = {
    call: new DispatchTable(),
    cast: new DispatchTable(),
    info: new DispatchTable(),
    locked: new DispatchTable(),
    change: new DispatchTable(),
    error: new DispatchTable(),
  };
  let init: string | symbol | undefined;
  let terminate: string | symbol | undefined;
  const messageHandlers = new Map<string | symbol, { role: 'call' | 'cast'; tag?: string }>();
  const where = `class ${ctor.name}`;
  for (const h of getHandlerMeta(ctor)) {
    if (h.misuse) throw new DefinitionError('BAD_DEFINITION', `${where}: ${h.misuse}`);
    if (h.role === 'init') {
      if (init !== undefined && init !== h.method)
        throw new DefinitionError(
          'BAD_DEFINITION',
          `${where} has two @Init methods (${String(init)} and ${String(h.method)})`,
        );
      init = h.method;
      continue;
    }
    if (h.role === 'terminate') {
      if (terminate !== undefined && terminate !== h.method)
        throw new DefinitionError(
          'BAD_DEFINITION',
          `${where} has two @OnTerminate methods (${String(terminate)} and ${String(h.method)})`,
        );
      terminate = h.method;
      continue;
    }
    if (meta.kind === 'server' && (h.role === 'change' || h.role === 'error'))
      throw new DefinitionError(
        'BAD_DEFINITION',
        `${where}: @${h.decorator} belongs on a @ChangesFollower class`,
      );
    if (meta.kind === 'follower' && h.role === 'locked')
      throw new DefinitionError('BAD_DEFINITION', `${where}: @OnLocked belongs on a @DurableServer class`);
    if (!tables[h.role].add(h.tag, h.method))
      throw new DefinitionError(
        'BAD_DEFINITION',
        `${where} has two @${h.decorator} handlers for ${h.tag === undefined ? 'the fallback (no tag)' : `tag ${JSON.stringify(h.tag)}`}`,
      );
    if (h.role === 'call' || h.role === 'cast') messageHandlers.set(h.method, { role: h.role, tag: h.tag });
  }
  const def: ClassDefinition = {
    ctor: ctor as new () => object,
    meta,
    name: meta.name ?? ctor.name,
    init,
    terminate,
    tables,
    messageHandlers,
  };
  cache.set(ctor, def);
  return def;
}
