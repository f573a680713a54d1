import 'reflect-metadata';

/** What a class decorator records: which kind of server the class is. */
export interface ClassMeta {
  kind: 'server' | 'follower';
  decorator: string;
  name?: string;
  /** The version of the state's shape (`@DurableServer({ version })`); 1 when absent. */
  version?: number;
}

export type HandlerRole = 'init' | 'call' | 'cast' | 'info' | 'locked' | 'change' | 'error' | 'terminate';

/** What a method decorator records: one handler, its role and its tag (undefined = fallback). */
export interface HandlerMeta {
  role: HandlerRole;
  decorator: string;
  method: string | symbol;
  tag?: string;
  /** Set when the decorator was put on something that is not a method; reported when the class starts. */
  misuse?: string;
}

const CLASS_KEY = Symbol.for('dgen-ts:class');
const HANDLERS_KEY = Symbol.for('dgen-ts:handlers');

export function setClassMeta(target: object, meta: ClassMeta): void {
  Reflect.defineMetadata(CLASS_KEY, meta, target);
}

export function getClassMeta(target: object): ClassMeta | undefined {
  return Reflect.getOwnMetadata(CLASS_KEY, target) as ClassMeta | undefined;
}

export function addHandlerMeta(ctor: object, meta: HandlerMeta): void {
  const list = (Reflect.getOwnMetadata(HANDLERS_KEY, ctor) as HandlerMeta[] | undefined) ?? [];
  Reflect.defineMetadata(HANDLERS_KEY, [...list, meta], ctor);
}

/** Handlers declared on the class and its ancestors, ancestors first. */
export function getHandlerMeta(ctor: object): HandlerMeta[] {
  const chain: object[] = [];
  for (let c: object | null = ctor; c && c !== Function.prototype; c = Object.getPrototypeOf(c))
    chain.unshift(c);
  return chain.flatMap((c) => (Reflect.getOwnMetadata(HANDLERS_KEY, c) as HandlerMeta[] | undefined) ?? []);
}
