import type { Tenant } from '../backend/types';
import { BadArgumentError, DgenError } from '../errors';
import type { Serializer } from '../codec/serializer';
import { defaultMaxBatch } from './batch-window';
import { isClock, systemClock, type Clock } from '../kernel/clock';
import { DEFAULT_RETENTION_MS } from './idempotency';

export type { Serializer };

export interface StartOptions {
  /** Where the server lives: `await backend.openTenant([...])`. Required. */
  tenant: Tenant;
  /** Consume messages from the durable queue in this process (default true). */
  consume?: boolean;
  /** Re-initialise the stored state even if it exists (default false). */
  reset?: boolean;
  /** Keep the state in memory and skip reading it while its stored version is unchanged (default true). */
  cache?: boolean;
  /** Register the ref in this process: `Runtime.whereis(name)`. */
  name?: string;
  /** Default timeout of `call`/`priorityCall` in ms (default 5000). */
  callTimeout?: number;
  /** Attempts before a message whose handler keeps throwing is dead-lettered (default 3). */
  maxAttempts?: number;
  /** How long a lock survives its holder without renewal, in ms (default 30 000). */
  lockLeaseMs?: number;
  /**
   * Most queued messages one consumer transaction handles, in order, writing the state once (default
   * 32, on PostgreSQL 128; 1 handles each message in a transaction of its own, as upstream dgen).
   */
  maxBatch?: number;
  /** How state values are serialized (default CBOR). */
  serializer?: Serializer;
  /** Where timers and idle timeouts take the time from (default the system clock; tests: VirtualClock). */
  clock?: Clock;
  /**
   * How long an idempotency key (`cast`/`call` option `idempotencyKey`) is remembered, with a call's
   * reply, in ms (default 24 h). Keys past it are collected, a few by each later keyed publish.
   */
  idempotencyRetentionMs?: number;
}

export type ResolvedOptions = Required<Omit<StartOptions, 'name' | 'serializer'>> &
  Pick<StartOptions, 'name' | 'serializer'>;

const positive = (name: string, v: unknown, dflt: number): number => {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v > 0))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `option ${name} must be a positive number of ms or a count (got ${String(v)})`,
    );
  return v;
};

const count = (name: string, v: unknown, dflt: number): number => {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `option ${name} must be an integer from 1 to 1000 (got ${String(v)})`,
    );
  return v;
};

const flag = (name: string, v: unknown, dflt: boolean): boolean => {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean')
    throw new BadArgumentError('BAD_ARGUMENT', `option ${name} must be true or false`);
  return v;
};

/** Every option `Runtime.start` knows for a durable server; anything else is a mistake (a typo). */
const KNOWN: ReadonlySet<string> = new Set<keyof StartOptions>([
  'tenant',
  'consume',
  'reset',
  'cache',
  'name',
  'callTimeout',
  'maxAttempts',
  'lockLeaseMs',
  'maxBatch',
  'serializer',
  'clock',
  'idempotencyRetentionMs',
]);

export function resolveOptions(opts: unknown): ResolvedOptions {
  const o = (opts ?? {}) as Partial<StartOptions>;
  if (typeof o !== 'object' || Array.isArray(o))
    throw new BadArgumentError('BAD_ARGUMENT', 'Runtime.start options must be an object');
  const unknown = Object.keys(o).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `unknown Runtime.start option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; known options: ${[...KNOWN].join(', ')}`,
    );
  const tenant = o.tenant;
  if (!tenant || typeof tenant.transact !== 'function')
    throw new DgenError(
      'TENANT_REQUIRED',
      "Runtime.start needs { tenant }: const tenant = await (await openBackend('sqlite:./data/dgen.sqlite')).openTenant(['app'])",
    );
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0))
    throw new BadArgumentError('BAD_ARGUMENT', 'option name must be a non-empty string');
  if (
    o.serializer !== undefined &&
    (typeof o.serializer.encode !== 'function' || typeof o.serializer.decode !== 'function')
  )
    throw new BadArgumentError('BAD_ARGUMENT', 'option serializer must have encode(value) and decode(bytes)');
  if (o.clock !== undefined && !isClock(o.clock))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      'option clock must have now() and at(time, fn) (a VirtualClock)',
    );
  return {
    tenant,
    consume: flag('consume', o.consume, true),
    reset: flag('reset', o.reset, false),
    cache: flag('cache', o.cache, true),
    name: o.name,
    callTimeout: positive('callTimeout', o.callTimeout, 5000),
    maxAttempts: Math.floor(positive('maxAttempts', o.maxAttempts, 3)),
    lockLeaseMs: positive('lockLeaseMs', o.lockLeaseMs, 30_000),
    maxBatch: count('maxBatch', o.maxBatch, defaultMaxBatch(tenant.backend?.kind)),
    serializer: o.serializer,
    clock: o.clock ?? systemClock,
    idempotencyRetentionMs: positive(
      'idempotencyRetentionMs',
      o.idempotencyRetentionMs,
      DEFAULT_RETENTION_MS,
    ),
  };
}
