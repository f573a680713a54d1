interface Waiting<Q, R> {
  request: Q;
  resolve: (value: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Requests of one process gathered into shared work (one transaction, one read) instead of one each:
 * one shared run is in flight at a time; requests made meanwhile wait for it and then go together in
 * the next, in arrival order, at most `max` at once. A lone request runs alone at once, so it waits for
 * nothing. If a shared run fails, which request caused it is not known: each runs again alone,
 * concurrently, so one bad request fails only itself. (PushGroup and ReplyReads are the two uses.)
 */
export class SharedRuns<Q, R> {
  private waiting: Array<Waiting<Q, R>> = [];
  private inFlight = false;

  constructor(
    private readonly max: number,
    /** Runs the requests together: one result per request, in order; throws if the run failed. */
    private readonly together: (requests: Q[]) => Promise<R[]>,
    private readonly alone: (request: Q) => Promise<R>,
  ) {}

  add(request: Q): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      // A microtask later: requests made in the same turn (castMany loops, Promise.all) go together.
      if (!this.inFlight) {
        this.inFlight = true;
        queueMicrotask(() => void this.next());
      }
    });
  }

  private async next(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.max);
      if (batch.length === 1) await this.runAlone(batch[0]);
      else await this.runTogether(batch);
    }
    this.inFlight = false;
  }

  private runAlone(w: Waiting<Q, R>): Promise<void> {
    return this.alone(w.request).then(w.resolve, w.reject);
  }

  private async runTogether(batch: Array<Waiting<Q, R>>): Promise<void> {
    let values: R[];
    try {
      values = await this.together(batch.map((w) => w.request));
    } catch {
      await Promise.all(batch.map((w) => this.runAlone(w)));
      return;
    }
    batch.forEach((w, i) => w.resolve(values[i]));
  }
}
