import type { Subscription } from 'rxjs';
import { defineClass } from '../../../src/registry/class-definition';
import { startFollower } from '../../../src/couch/start-follower';
import {
  ChangesFollower,
  OnChange,
  OnError,
  follow,
  retry,
  type ChangeRow,
  type DbTarget,
  type FollowOptions,
  type FollowerEvent,
  type FollowerRef,
  type FollowerStartOptions,
  type Seq,
} from '../../../src/couch';
import { Init, OnCall } from '../../../src/decorators';
import { ok, reply } from '../../../src/returns';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until true; fails with `what` after `ms`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Starts a follower class (as Runtime.start will) and records its events from the first one. */
export async function startRecorded<S = unknown>(
  Class: new () => object,
  arg: unknown,
  opts: FollowerStartOptions = {},
): Promise<{ ref: FollowerRef<S>; events: EventLog }> {
  const ref = await startFollower<S>(defineClass(Class), arg, opts);
  return { ref, events: new EventLog(ref) };
}

/** Every event a follower emitted, with helpers to wait for some. */
export class EventLog {
  readonly all: FollowerEvent[] = [];
  private readonly sub: Subscription;

  constructor(ref: FollowerRef<unknown>) {
    this.sub = ref.events$.subscribe((e) => this.all.push(e));
  }

  of<T extends FollowerEvent['type']>(type: T): Extract<FollowerEvent, { type: T }>[] {
    return this.all.filter((e): e is Extract<FollowerEvent, { type: T }> => e.type === type);
  }

  count(type: FollowerEvent['type']): number {
    return this.of(type).length;
  }

  /** Waits until at least `n` events of `type` were seen. */
  async waitCount(type: FollowerEvent['type'], n: number, ms = 10_000): Promise<void> {
    await waitFor(() => this.count(type) >= n, `${n} '${type}' event(s) (saw ${this.count(type)})`, ms);
  }

  stop(): void {
    this.sub.unsubscribe();
  }
}

/** Documents with ids `${prefix}0000…`, written one by one (nano). */
export async function writeDocs(
  db: { insert(doc: object): Promise<unknown> },
  prefix: string,
  n: number,
  extra: (i: number) => object = () => ({}),
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const _id = `${prefix}${String(i).padStart(5, '0')}`;
    await db.insert({ _id, n: i, ...extra(i) });
    ids.push(_id);
  }
  return ids;
}

// ---- a configurable follower for the tests ------------------------------------------------------

export interface ProbeState {
  ids: string[];
  seqs: Seq[];
  /** Rows with their doc, when includeDocs. */
  docs: Array<Record<string, unknown> | undefined>;
  errors: number;
}

export interface ProbeArg {
  db: DbTarget;
  options?: FollowOptions;
  /** What @OnError answers (Probe only); default retry(s). */
  onError?: (err: unknown, s: ProbeState) => unknown;
  /** Called in @OnChange before it returns; may delay, throw or return a value to use instead. */
  onChange?: (row: ChangeRow, s: ProbeState) => unknown;
}

/** Records every row; no @OnError (feed failures retry after 60 s, a throwing @OnChange stops it). */
@ChangesFollower()
export class BareProbe {
  protected arg!: ProbeArg;

  @Init() init(arg: ProbeArg) {
    this.arg = arg;
    return follow(arg.db, { ids: [], seqs: [], docs: [], errors: 0 } as ProbeState, arg.options);
  }

  @OnChange() async change(row: ChangeRow, s: ProbeState) {
    if (this.arg.onChange) {
      let out = this.arg.onChange(row, s);
      if (out && typeof (out as Promise<unknown>).then === 'function') out = await out;
      if (out !== undefined) return out;
    }
    return ok({ ...s, ids: [...s.ids, row.id], seqs: [...s.seqs, row.seq], docs: [...s.docs, row.doc] });
  }

  @OnCall('state') state(_m: unknown, _f: unknown, s: ProbeState) {
    return reply(s, s);
  }
}

/** BareProbe plus @OnError (default: retry(s) at once, with jitter). */
@ChangesFollower()
export class Probe extends BareProbe {
  @OnError() error(err: unknown, s: ProbeState) {
    const next = { ...s, errors: s.errors + 1 };
    return this.arg.onError ? this.arg.onError(err, next) : retry(next);
  }
}

/** startRecorded for Probe/BareProbe, with the argument typed (so its callbacks are too). */
export function startProbe(
  Class: typeof BareProbe,
  arg: ProbeArg,
  opts: FollowerStartOptions = {},
): Promise<{ ref: FollowerRef<ProbeState>; events: EventLog }> {
  return startRecorded<ProbeState>(Class, arg, opts);
}
