/**
 * The durable bank of the `npm start` demo. Its state lives in the SQLite file, not in this process:
 * any process that starts it (with the same name) works on the same accounts.
 */
import 'reflect-metadata';
import { DurableServer, Init, OnCall, OnCast, noreply, ok, reply } from '../src';

export interface BankState {
  /** How many times `npm start` has run against this data directory. */
  runs: number;
  /** Balance per account holder, in dollars. */
  accounts: Record<string, number>;
}

export type Deposit = { type: 'deposit'; who: string; amount: number };

/** The name this process prints its lines with (set by each process at start). */
export const me = { name: 'main' };

export const say = (line: string) => console.log(`   [${me.name}] ${line}`);

// `name` fixes the server's identity in storage, so renaming the class later does not lose its state.
@DurableServer({ name: 'demo-bank' })
export class Bank {
  @Init() init() {
    return ok<BankState>({ runs: 0, accounts: {} });
  }

  @OnCall('new-run') newRun(_m: unknown, _from: unknown, s: BankState) {
    const next = { ...s, runs: s.runs + 1 };
    return reply(next.runs, next);
  }

  /** A deposit as a call: the caller waits for the new balance. */
  @OnCall('deposit') depositCall(m: Deposit, _from: unknown, s: BankState) {
    const next = credit(s, m);
    return reply(next.accounts[m.who], next);
  }

  /**
   * A deposit as a cast: fire and forget. The handler itself must not print (it runs inside a
   * transaction that may be retried); printing is an action, run once after the commit.
   */
  @OnCast('deposit') depositCast(m: Deposit, s: BankState) {
    return noreply(credit(s, m), [
      (committed) => say(`handled +$${m.amount} for ${m.who} → balance $${committed.accounts[m.who]}`),
    ]);
  }

  @OnCall('balance') balance(m: { type: 'balance'; who: string }, _from: unknown, s: BankState) {
    return reply(s.accounts[m.who] ?? 0, s);
  }
}

/** State is frozen: return a new object instead of changing it. */
function credit(s: BankState, m: Deposit): BankState {
  return { ...s, accounts: { ...s.accounts, [m.who]: (s.accounts[m.who] ?? 0) + m.amount } };
}
