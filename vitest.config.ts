import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', 'node_modules/**'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Two cores: integration files open real sockets; two workers keep the suite quick and stable.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
