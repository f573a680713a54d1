import { DgenError } from '../errors';

/** What every started ref offers the process-wide registry. */
export interface Stoppable {
  stop(reason?: unknown): Promise<void>;
  readonly done: Promise<unknown>;
}

const byName = new Map<string, Stoppable>();
const live = new Set<Stoppable>();

/**
 * Tracks the refs started in this process: by name for `Runtime.whereis`, and all of them for
 * `Runtime.stopAll`. A ref leaves the registry when its `done` settles.
 */
export function track(ref: Stoppable, name?: string): void {
  if (name !== undefined) {
    if (byName.has(name))
      throw new DgenError(
        'ALREADY_REGISTERED',
        `a server named ${JSON.stringify(name)} is already running in this process`,
      );
    byName.set(name, ref);
  }
  live.add(ref);
  const forget = () => {
    live.delete(ref);
    if (name !== undefined && byName.get(name) === ref) byName.delete(name);
  };
  ref.done.then(forget, forget);
}

export function whereis(name: string): Stoppable | undefined {
  return byName.get(name);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((ref) => ref.stop().catch(() => undefined)));
}
