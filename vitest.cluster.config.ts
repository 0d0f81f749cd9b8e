import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm run test:cluster`: the suites that matter on a Redis Cluster (the ledger, forks at global
// concurrency 5 over several processes, merges, a short chaos run) and the scale-out test of the
// whole fleet with two replicas of every service, against the local cluster with-servers starts.
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/ledger.test.ts', 'test/fork.test.ts', 'test/fork-processes.test.ts', 'test/merge.test.ts', 'test/chaos.test.ts', 'test/doc-locks.test.ts', 'test/cluster/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
  },
});
