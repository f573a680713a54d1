import type { Action } from '../returns';

/** Runs actions in order after a commit: `'halt'` stops the rest; a throwing action stops the rest and is reported. */
export async function runActions<S>(
  actions: ReadonlyArray<Action<S>>,
  state: S,
  onError: (error: unknown) => void,
): Promise<void> {
  for (const action of actions) {
    try {
      if ((await action(state)) === 'halt') return;
    } catch (error) {
      onError(error);
      return;
    }
  }
}
