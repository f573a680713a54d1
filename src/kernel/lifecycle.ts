import { Subject, type Observable } from 'rxjs';
import type { ClassDefinition } from '../registry/class-definition';
import type { GenServerEvent } from './events';
import { runTerminate } from './terminate';

/**
 * The life of one gen_server process, the same for durable servers and followers: its `events$`, its
 * `done`, and the one way it ends — `@OnTerminate` (when asked), then `stopped`, then `events$`
 * completes and `done` resolves with the reason. Ending twice does nothing the second time.
 */
export class Lifecycle<E extends { readonly type: string }> {
  private readonly subject = new Subject<E | GenServerEvent>();
  private resolveDone!: (reason: unknown) => void;
  private ended = false;
  readonly done: Promise<unknown>;

  constructor() {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** A fresh view each time (idle servers keep none). */
  get events$(): Observable<E | GenServerEvent> {
    return this.subject.asObservable();
  }

  get observed(): boolean {
    return this.subject.observed;
  }

  emit(event: E | GenServerEvent): void {
    if (!this.subject.closed) this.subject.next(event);
  }

  /** Ends the process with `reason`; `terminate` gives `@OnTerminate` the state (absent: not called). */
  async end(
    reason: unknown,
    def: ClassDefinition,
    instance: object,
    terminate?: () => unknown,
  ): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (terminate)
      await runTerminate(def, instance, reason, terminate, (error) =>
        this.emit({ type: 'terminate-failed', error }),
      );
    this.emit({ type: 'stopped', reason });
    this.subject.complete();
    this.resolveDone(reason);
  }
}
