import { defineConfig } from 'vitest/config';

// Browser tests (npm run test:e2e): real chromium via playwright-core, one file at a time.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
