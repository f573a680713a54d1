import { multiprocessCases } from './cases';

/**
 * The multi-process cases (cases.ts) on PostgreSQL: every process connects to the test run's server
 * (DGEN_TEST_POSTGRES_URL), each test in a schema of its own. (The watch-poll regression guard is
 * SQLite's own: skipped by name here.)
 */
if (process.env.DGEN_TEST_POSTGRES_URL) multiprocessCases('postgres');
else test.skip('multi-process cases on postgres: no DGEN_TEST_POSTGRES_URL', () => undefined);
