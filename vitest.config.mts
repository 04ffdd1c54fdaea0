import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts its own Azurite and fakes on free ports; two cores, so two workers.
    pool: 'forks',
    maxWorkers: 2,
  },
});
