/**
 * Keeps Node's event loop alive while a process consumes some server's queue. A consumer between
 * messages waits on a backend watch, which is only a promise: without this, a script that does
 * nothing but consume would exit as soon as its queue is empty. One ref'd timer serves every consumer
 * of the process; it goes away when the last one stops (`ref.stop()`, `Runtime.stopAll()`, the
 * backend closing).
 */
let holders = 0;
let timer: NodeJS.Timeout | undefined;

/** Holds the process open until the returned release function is called (idempotent). */
export function holdProcessOpen(): () => void {
  if (holders++ === 0) timer = setInterval(() => undefined, 2 ** 31 - 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}
