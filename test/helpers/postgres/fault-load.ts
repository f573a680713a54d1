import type { Worker } from '../runtime/workers';
import type { TallyState } from './fault-servers';

type Kind = 'cast' | 'call';
type AckMsg = {
  type: 'acks';
  acks: [Kind, string, number, number][];
  fails: [Kind, string, number, string, number][];
};

/** What the check of the stored tallies against the acknowledgements found. */
export interface LoadVerdict {
  acked: number;
  failed: number;
  /** Acknowledged but not applied: must be none. */
  lost: string[];
  /** Applied more than once (at-least-once): counted and reported. */
  duplicates: number;
  /** Failed (outcome unknown to the producer), or in flight in a killed worker, yet applied: allowed, reported. */
  appliedUnacked: number;
  /** Acknowledged messages of one producer applied out of their sending order: must be none. */
  fifoViolations: string[];
  /** Applied messages no producer ever sent: must be none. */
  phantoms: string[];
  failCodes: Record<string, number>;
}

/**
 * Collects what the fault workers report (acknowledged and failed messages, with times) and checks
 * the servers' stored tallies against it at the end. Producer names are `WORKER/sSERVER/KIND`.
 */
export class LoadBook {
  /** `KIND:PRODUCER` → sequence numbers acknowledged. */
  private readonly acked = new Map<string, Set<number>>();
  /** `KIND:PRODUCER#i` → when it was acknowledged (to tell in which phase a lost one was sent). */
  private readonly ackedAt = new Map<string, number>();

  /** `t0`: the time the lost messages' acknowledgement times are reported relative to. */
  constructor(private readonly t0 = Date.now()) {}
  private readonly failed = new Map<string, Set<number>>();
  /** Worker name → times (ms) of its acknowledgements. */
  private readonly ackTimes = new Map<string, number[]>();
  private readonly failCodes: Record<string, number> = {};
  /** Worker name → its failures: [code, time]. */
  private readonly failTimes = new Map<string, [string, number][]>();
  /** Workers killed with kill -9: their last reports may never have arrived. */
  private readonly killed = new Set<string>();

  /** Starts recording what `worker` (named `name`) reports. */
  follow(worker: Worker, name: string): void {
    this.ackTimes.set(name, this.ackTimes.get(name) ?? []);
    this.failTimes.set(name, this.failTimes.get(name) ?? []);
    worker.child.on('message', (m: { type?: string }) => {
      if (m.type !== 'acks') return;
      const { acks, fails } = m as AckMsg;
      const times = this.ackTimes.get(name) as number[];
      for (const [kind, p, i, t] of acks) {
        this.entry(this.acked, kind, p).add(i);
        this.ackedAt.set(`${kind}:${p}#${i}`, t);
        times.push(t);
      }
      for (const [kind, p, i, code, t] of fails) {
        this.entry(this.failed, kind, p).add(i);
        this.failTimes.get(name)?.push([code, t]);
        this.failCodes[code] = (this.failCodes[code] ?? 0) + 1;
      }
    });
  }

  /** `name` was killed: what it sent but never reported is not a phantom. */
  markKilled(name: string): void {
    this.killed.add(name);
  }

  /** `producer#i` was being sent when the load stopped and never settled: its outcome is unknown. */
  markPending(message: string): void {
    const [p, i] = message.split('#');
    this.entry(this.failed, p.endsWith('/cast') ? 'cast' : 'call', p).add(Number(i));
  }

  /** Acknowledgements `name` received in [from, to). */
  acksBetween(name: string, from: number, to = Infinity): number {
    return (this.ackTimes.get(name) ?? []).filter((t) => t >= from && t < to).length;
  }

  /** How `name`'s messages failed since `from`: code → count. */
  failuresOf(name: string, from = 0): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [code, t] of this.failTimes.get(name) ?? []) if (t >= from) out[code] = (out[code] ?? 0) + 1;
    return out;
  }

  /** The time of `name`'s first acknowledgement at or after `from`, if any. */
  firstAckAfter(name: string, from: number): number | undefined {
    return (this.ackTimes.get(name) ?? []).find((t) => t >= from);
  }

  get totalAcked(): number {
    let n = 0;
    for (const s of this.acked.values()) n += s.size;
    return n;
  }

  /** Checks every server's stored tally (by server index) against the acknowledgements. */
  verify(states: TallyState[]): LoadVerdict {
    const v: LoadVerdict = {
      acked: this.totalAcked,
      failed: 0,
      lost: [],
      duplicates: 0,
      appliedUnacked: 0,
      fifoViolations: [],
      phantoms: [],
      failCodes: { ...this.failCodes },
    };
    for (const s of this.failed.values()) v.failed += s.size;
    const applied = new Map<string, number[]>();
    states.forEach((state, server) => {
      for (const [kind, log] of [
        ['cast', state.casts],
        ['call', state.calls],
      ] as const)
        for (const [p, seq] of Object.entries(log)) {
          if (!p.includes(`/s${server}/${kind}`)) v.phantoms.push(`${kind}:${p} on server ${server}`);
          applied.set(`${kind}:${p}`, seq);
        }
    });
    for (const [key, seq] of applied) {
      const acked = this.acked.get(key) ?? new Set<number>();
      const failed = this.failed.get(key) ?? new Set<number>();
      const seen = new Set<number>();
      let lastAcked = 0;
      for (const i of seq) {
        if (seen.has(i)) {
          v.duplicates++;
          continue;
        }
        seen.add(i);
        if (acked.has(i)) {
          if (i < lastAcked) v.fifoViolations.push(`${key}: ${i} applied after ${lastAcked}`);
          lastAcked = Math.max(lastAcked, i);
        } else if (failed.has(i) || this.killed.has(key.slice(key.indexOf(':') + 1).split('/')[0]))
          v.appliedUnacked++;
        else v.phantoms.push(`${key}:${i} was never reported sent`);
      }
    }
    for (const [key, acked] of this.acked) {
      const seq = new Set(applied.get(key) ?? []);
      for (const i of acked)
        if (!seq.has(i)) {
          const around = [i - 1, i + 1].map((j) => `${j} ${seq.has(j) ? 'applied' : 'not applied'}`);
          const at = (this.ackedAt.get(`${key}#${i}`) ?? NaN) - this.t0;
          v.lost.push(`${key}:${i} (acknowledged at +${at} ms; ${around.join(', ')})`);
        }
    }
    return v;
  }

  private entry(map: Map<string, Set<number>>, kind: Kind, p: string): Set<number> {
    const key = `${kind}:${p}`;
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    return set;
  }
}
