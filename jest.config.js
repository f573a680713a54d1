/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 60000,
  // One PostgreSQL (from npm) for the whole run, unless DGEN_TEST_POSTGRES_URL names one already.
  globalSetup: '<rootDir>/test/helpers/postgres/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/postgres/global-teardown.ts',
  // Multi-process tests spawn workers of their own; two Jest workers fit a 2-core machine.
  maxWorkers: 2,
};
