import type { ClassDefinition } from '../registry/class-definition';

/**
 * Calls the class's `@OnTerminate(reason, state)`, if it has one, once, as this process's part of a
 * server or follower stops. Shared by both kinds of gen_server. What it returns is ignored; what it
 * throws (or its promise rejects with) goes to `onError` and never changes the exit reason.
 */
export async function runTerminate(
  def: ClassDefinition,
  instance: object,
  reason: unknown,
  state: () => unknown,
  onError: (error: unknown) => void,
): Promise<void> {
  if (def.terminate === undefined) return;
  try {
    const fn = (instance as Record<string | symbol, (...a: unknown[]) => unknown>)[def.terminate];
    await fn.call(instance, reason, await state());
  } catch (error) {
    onError(error);
  }
}
