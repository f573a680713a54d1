/** How an offer of due timers ended (see TimerOffer). */
export type OfferOutcome = 'taken' | 'declined';

/**
 * Due timers that this process's scheduler offers straight to a server's idle consumer (its queue was
 * empty as of its last transaction, and it holds the consumer lease). The consumer's next step reads
 * them — if the queue is still empty — and handles them as it would the casts they enqueue, deleting
 * them in the transaction that writes the handling, so they never go through the queue: one
 * transaction per server instead of a fire, a wake-up, a read and a handling. Whatever keeps it from
 * that (a message arrived, a lock, another consumer, a handler that fails) declines the offer, and the
 * scheduler fires those timers into the queue as ever, where attempts and dead letters apply.
 */
export class TimerOffer {
  private ended = false;

  constructor(
    /** The scheduler's now: the timers due by then are offered. */
    readonly now: number,
    private readonly settle: (outcome: OfferOutcome) => void,
  ) {}

  static make(now: number): { offer: TimerOffer; outcome: Promise<OfferOutcome> } {
    let settle!: (outcome: OfferOutcome) => void;
    const outcome = new Promise<OfferOutcome>((resolve) => (settle = resolve));
    return { offer: new TimerOffer(now, settle), outcome };
  }

  /** The transaction that deleted and handled the timers committed. */
  taken(): void {
    this.end('taken');
  }

  /** Not taken (a no-op once taken). */
  declined(): void {
    this.end('declined');
  }

  private end(outcome: OfferOutcome): void {
    if (this.ended) return;
    this.ended = true;
    this.settle(outcome);
  }
}
