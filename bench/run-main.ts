/**
 * Runs a bench script's `main` and exits: 0 once it resolved (after `report` printed what it gave), 1
 * with its error. Exiting explicitly: a script's child processes or client pools must not keep it alive.
 */
export function runMain<T>(main: () => Promise<T>, report: (result: T) => void = () => undefined): void {
  main().then(
    (result) => {
      report(result);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
