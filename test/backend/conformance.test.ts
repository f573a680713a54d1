/**
 * The storage contract run unchanged against every backend: memory, SQLite, and FoundationDB when
 * FDB_CLUSTER_FILE is set (otherwise reported as skipped, by name).
 */
import { backendFactories } from '../helpers/backend/factories';
import { describeContract } from './contract-suite';

for (const factory of backendFactories) {
  if (factory.skip) test.skip(`${factory.name}: ${factory.skip}`, () => undefined);
  else describeContract(factory);
}
