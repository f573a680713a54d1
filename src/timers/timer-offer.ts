/** How an offer of due timers ended (see TimerOffer). */
export type OfferOutcome = 'taken' | 'declined';

/** How many steps of queued messages an offer may wait out (TimerOffer.passOn). */
const MAX_PASSES = 3;

/**
 * Due timers that this process's scheduler offers straight to a server's consumer, idle (its queue was
 * empty as of its last transaction) or busy handling. The consumer's next step reads them — if the
 * queue is empty — and handles them as it would the casts they enqueue, deleting them in the
 * transaction that writes the handling, so they never go through the queue: one transaction per
 * server instead of a fire, a wake-up, a read and a handling. Messages queued first go first: a step
 * that handles queued messages passes the offer to the next, up to MAX_PASSES times. Whatever else
 * keeps it from that (a longer queue, a lock, another consumer, a handler that fails) declines the
 * offer, and the scheduler fires those timers into the queue as ever, where attempts and dead
 * letters apply.
 */
export class TimerOffer {
  /** How the offer ends: the scheduler waits on it (and so does a virtual clock's advance). */
  readonly outcome: Promise<OfferOutcome>;
  private settle!: (outcome: OfferOutcome) => void;
  private ended = false;
  private passedOn = 0;

  constructor(
    /** The scheduler's now: the timers due by then are offered. */
    readonly now: number,
  ) {
    this.outcome = new Promise<OfferOutcome>((resolve) => (this.settle = resolve));
  }

  /**
   * A step handled queued messages first: may it pass the offer to the next step? Yes a few times
   * (each a batch); then no, and the timers are fired into the queue — behind what is queued then —
   * so a queue that never empties cannot hold them back for ever.
   */
  passOn(): boolean {
    return !this.ended && ++this.passedOn <= MAX_PASSES;
  }

  /** Not taken by its step, but an offer made since covers its timers too: it ends as that one does. */
  follow(newer: TimerOffer): void {
    if (!this.ended) void newer.outcome.then((outcome) => this.end(outcome));
  }

  /** Neither taken nor declined yet. */
  get open(): boolean {
    return !this.ended;
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
