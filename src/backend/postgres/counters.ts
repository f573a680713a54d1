/**
 * Counters of this process's PostgreSQL transactions, for `npm run bench` (round trips per
 * transaction, retry rate). Plain numbers: incrementing them costs nothing measurable.
 */
export const postgresCounters = {
  /** Transactions committed (or found committed after a lost reply). */
  commits: 0,
  /** Bodies re-run after a serialization failure or deadlock. */
  conflictRetries: 0,
  /** Bodies re-run after a lost connection. */
  connectionRetries: 0,
  /** Pipelined batches sent, each one round trip (BEGIN and writes ride along with a read or COMMIT). */
  roundTrips: 0,
  /** Keys re-read by the watcher (reads its NOTIFY payloads spared it are not counted). */
  watcherReads: 0,
};

export function resetPostgresCounters(): void {
  postgresCounters.commits = 0;
  postgresCounters.conflictRetries = 0;
  postgresCounters.connectionRetries = 0;
  postgresCounters.roundTrips = 0;
  postgresCounters.watcherReads = 0;
}
