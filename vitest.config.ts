import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code they test; integration tests in test/ use the real servers that
// scripts/with-servers.ts starts (npm test), each file with its own database and queue prefix.
export default defineConfig({
  test: {
    include: ['shared/**/*.test.ts', 'config/**/*.test.ts', 'services/**/*.test.ts', 'scripts/**/*.test.ts', 'test/**/*.test.ts'],
    // Tests of a Redis Cluster run on one (npm run test:cluster, vitest.cluster.config.ts).
    exclude: ['**/node_modules/**', 'test/cluster/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
