import { CallTimeoutError } from '../errors';
import { describeMessage } from '../registry/dispatch-table';

interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  timer?: NodeJS.Timeout;
}

/**
 * Calls waiting for a reply from a handler in this process, each with its timeout: a reply or a
 * failure settles a call once; later ones (after a timeout) are ignored.
 */
export class PendingCalls {
  private readonly calls = new Map<number, Pending>();
  private nextId = 1;

  /** Registers a call; `send(id)` hands it to the handler. Rejects with CALL_TIMEOUT after `timeout` ms. */
  open(msg: unknown, timeout: number, send: (id: number) => void, busyHint: string): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject };
      pending.timer = setTimeout(() => {
        this.calls.delete(id);
        reject(
          new CallTimeoutError(
            'CALL_TIMEOUT',
            `call ${describeMessage(msg)} got no reply within ${timeout} ms; ${busyHint}`,
          ),
        );
      }, timeout);
      this.calls.set(id, pending);
      send(id);
    });
  }

  reply(id: number, value: unknown): void {
    this.take(id)?.resolve(value);
  }

  fail(id: number, err: unknown): void {
    this.take(id)?.reject(err);
  }

  failAll(err: () => unknown): void {
    for (const id of [...this.calls.keys()]) this.fail(id, err());
  }

  private take(id: number): Pending | undefined {
    const pending = this.calls.get(id);
    if (!pending) return undefined;
    this.calls.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }
}
